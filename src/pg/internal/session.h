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
  net::Task<bool> Attach(bool start_pump);  // a server for the next transaction (or session)
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
};

}  // namespace ficus::pg::internal
