// One client connection of the PostgreSQL proxy (client.cc: login and the client-to-server
// direction; relay.cc: the server-to-client direction and what the responses tell).
#pragma once

#include <coroutine>
#include <unordered_map>

#include "pg/internal/service.h"

namespace ficus::pg::internal {

class ClientSession : public net::TimeoutList::Entry {
 public:
  ClientSession(Service::Impl& impl, WorkerState& w, int fd);
  ~ClientSession() override;
  net::Task<void> Run();
  void OnTimeout() override { sock_.Cancel(); }  // the login deadline

 private:
  // --- login (client.cc) ---
  net::Task<bool> Login();
  net::Task<bool> Authenticate(const ScramVerifier& v);
  // One complete frame from the client (typed, or a startup packet); empty on EOF/error, after
  // answering a malformed one with an ErrorResponse.
  net::Task<std::string_view> ReadClientFrame(bool startup);
  net::Task<void> SendError(const char* sqlstate, std::string_view message);
  // --- the client-to-server direction (client.cc) ---
  // A server for the next transaction (or session) from `target`'s pool; a replica that cannot
  // be reached is marked down and another server is tried. On failure the client gets a FATAL
  // error, except when `unit_error` and no server could be reached (08006): then the error is
  // left in unit_error_ for FailUnit and the client stays.
  net::Task<bool> Attach(bool start_pump, Pool* target, bool unit_error = false);
  // The unit of work starting with `m` fails with unit_error_ (an ERROR, as the server answers a
  // failed statement): a Query gets ReadyForQuery at once, an extended-protocol batch when its
  // Sync comes (the messages up to it are dropped).
  net::Task<bool> FailUnit(std::string_view m);
  // The read/write split (client.cc): the pool the next transaction goes to, from the client's
  // buffered messages; what they need (up to the batch's Sync, or one Query).
  Pool* Route();
  Access ClassifyBuffered() const;
  bool OnReplica() const { return server_ && server_->pool->is_replica; }
  // Whether `m` starts a new unit of work (a Query, or the first message after a Sync).
  bool StartsUnit(std::string_view m) const;
  // Until the pump has taken another step (or ended).
  struct PumpStep {
    ClientSession* s;
    bool await_ready() const { return !s->pump_running_; }
    void await_suspend(std::coroutine_handle<> h) { s->pump_waiter_ = h; }
    void await_resume() const {}
  };
  // Appends `msg` (a complete client message) to out_ as the server must see it; false: the
  // client gets an error and the connection ends.
  bool Translate(std::string_view msg);
  bool EnsurePrepared(std::string_view client_name);
  void Pin(const char* reason);
  // --- the server-to-client direction (relay.cc) ---
  net::Task<void> Pump();
  // Handles one server message: whether it goes to the client.
  bool OnServerMessage(std::string_view m);
  bool CanDetach() const;
  void Detach(bool clean);
  net::Task<void> Finish();  // at the end: the server back (reset) or closed

  Service::Impl& impl_;
  WorkerState& w_;
  net::Socket sock_;
  tls::Stream tls_;  // active after an SSLRequest answered 'S' and its handshake
  FrameBuffer in_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<Pool> pool_;
  std::vector<std::pair<std::string, std::string>> params_;  // the client's startup parameters
  std::string database_, user_;
  bool transaction_mode_ = true;
  uint32_t max_message_ = 1u << 24;
  std::shared_ptr<CancelTarget> cancel_;
  uint64_t cancel_id_ = 0;

  std::unique_ptr<ServerConn> server_;
  std::string out_;         // to the server
  std::string client_out_;  // to the client (from the pump)
  std::deque<Pending> pending_;
  int outstanding_ = 0;      // Sync / Query / FunctionCall sent, ReadyForQuery not yet back
  bool since_sync_ = false;  // extended-protocol messages sent after the last Sync
  bool used_ = false;        // the attached server got a message (not idle just because it is new)
  char status_ = 'I';
  const char* pinned_ = nullptr;  // why the client keeps its server (transaction mode)
  bool pump_running_ = false;
  bool closing_ = false;
  bool broken_ = false;  // the server connection is unusable (protocol error, I/O error)
  std::coroutine_handle<> pump_waiter_;

  std::unordered_map<std::string, Statement> statements_;  // named, by the client's name
  std::unordered_map<std::string, uint64_t> portals_;      // portal -> fingerprint
  uint64_t next_statement_ = 0;  // numbers server-side names: never reused in a session
  uint64_t unnamed_fp_ = 0;
  std::string unnamed_trace_;
  std::string last_trace_;
  // The read/write split.
  StatementKind unnamed_kind_ = StatementKind::kWrite;
  bool route_write_ = false;   // the attached server was chosen for a write
  bool routed_ = false;        // Route chose the next Attach's pool (counted once attached)
  int64_t last_write_ms_ = 0;  // when this client's last write transaction ended (SteadyMs)
  uint32_t turn_ = 0;          // rotates between equally loaded replicas
  std::string unit_error_;     // why the last Attach(unit_error) found no server
  bool skip_to_sync_ = false;  // a failed extended-protocol batch: drop messages up to Sync
};

}  // namespace ficus::pg::internal
