// The PostgreSQL proxy's moving parts, shared by its files: pools (pool.cc), server connections
// (server_conn.cc), client sessions (client.cc, login.cc, relay.cc), statistics (stats.cc) and
// the service that ties them to the workers (service.cc).
//
// Threads: a Pool is shared by every worker (atomics, and a mutex over its wait queue, taken
// only on the slow path: waiting, handing over); everything else belongs to one worker.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pg/internal/auth.h"
#include "pg/internal/replicas.h"
#include "pg/pg.h"
#include "tls/tls.h"

namespace ficus::pg::internal {

struct WorkerState;
struct Pool;
class TraceJoin;  // trace_join.h
class Explainer;  // explain.h

// Reads whole protocol frames from a socket into a growing buffer (bounded by the caller's
// maximum), compacting as frames are consumed.
class FrameBuffer {
 public:
  // Complete frame at the front, if any (typed message). kError: the stream is unusable.
  Frame Peek(uint32_t max_size, bool frontend) const {
    return ScanMessageFrame(View(), max_size, frontend);
  }
  std::string_view View() const { return std::string_view(buf_).substr(start_, end_ - start_); }
  void Consume(size_t n) { start_ += n; }
  // Reads more (at least one byte), through `tls` when it is active: 0 = EOF or error.
  net::Task<size_t> Fill(net::Socket& s, tls::Stream& tls, size_t want);
  bool empty() const { return start_ == end_; }

 private:
  std::string buf_;
  size_t start_ = 0, end_ = 0;
};

// One connection to a PostgreSQL server, authenticated, owned by one worker at a time.
struct ServerConn {
  net::Socket sock;
  tls::Stream tls;  // active when the server accepted TLS (its session moves with the conn)
  FrameBuffer in;
  net::Task<net::ErrorCode> Write(std::string_view bytes) { return tls.WriteAll(sock, bytes); }
  Pool* pool = nullptr;
  uint32_t backend_pid = 0, backend_key = 0;
  std::vector<std::pair<std::string, std::string>> params;  // its ParameterStatus values
  std::vector<std::string> prepared;  // statement names prepared on it (transaction mode)
  int64_t idle_since_ms = 0;
  const std::string* Param(std::string_view name) const;
  void SetParam(std::string_view name, std::string_view value);
};

// A client waiting for a server connection of a pool.
struct Waiter : net::TimeoutList::Entry {
  explicit Waiter(net::Loop& loop) : wake(loop) {}
  void OnTimeout() override;
  net::Wakeup wake;
  Pool* pool = nullptr;
  int worker = 0;
  int64_t since_ms = 0;  // when it started waiting (its loop's coarse clock)
  enum class Result : uint8_t { kWaiting, kConn, kSlot, kTimeout } result = Result::kWaiting;
  std::unique_ptr<ServerConn> conn;  // kConn: handed over by the client that gave it back
  int moved_fd = -1;  // from another worker: its descriptor, to adopt on this worker's loop
};

// Server connections for one (database, user) on one server (the primary, or a replica),
// bounded across all workers.
struct Pool {
  // `server`: the replica's, or null for the primary.
  Pool(const config::PgDatabase& db, const config::PgUser& user, int workers,
       const config::PgServer* server, std::shared_ptr<Backend> backend);
  std::string name;  // "database/user" (a replica's: "database/user@host:port")
  config::PgDatabase db;
  std::string user, server_password;
  net::Address address;
  std::shared_ptr<Backend> backend;             // the server's health (shared by its pools)
  std::vector<std::shared_ptr<Pool>> replicas;  // the primary's pool: one per replica
  bool is_replica = false;
  uint32_t server_index = 0;  // 0: the primary; i + 1: the primary pool's replicas[i]
  std::atomic<int> open{0};   // connected or connecting, every worker
  std::atomic<int> waiting{0};
  std::atomic<bool> retired{false};  // a reload changed its database: drain, never reuse
  std::mutex mu;                     // guards waiters and params
  std::deque<Waiter*> waiters;
  std::vector<std::pair<std::string, std::string>> params;  // from its first server connection
  // TLS to its server (tls_setup.cc): the name verify-full checks and SNI sends (the DNS name
  // as written, else the IP), and the context of db.sslmode, renewed on reload (guarded by mu).
  std::string peer_name;
  std::shared_ptr<const tls::Context> tls;
  std::string tls_error;  // why there is no context although sslmode wants one
  struct alignas(64) PerWorker {
    std::vector<std::unique_ptr<ServerConn>> idle;
  };
  std::vector<PerWorker> workers;  // [worker]: only that worker touches its entry
  // Metrics.
  std::atomic<int64_t> clients{0}, servers_active{0}, servers_idle{0};
  std::atomic<uint64_t> waits{0}, wait_timeouts{0}, wait_full{0}, wait_micros{0}, transactions{0},
      server_connects{0}, connect_failures{0}, pinned{0};
};

// Per-client named statements (transaction mode re-prepares them on whichever server).
struct Statement {
  std::string parse;        // the client's Parse message, body only
  std::string server_name;  // the name on servers
  uint64_t fingerprint = 0;
  StatementKind kind = StatementKind::kWrite;  // for the read/write split (with replicas)
};

// What a response from the server closes, in order (responses come in request order).
struct Pending {
  enum class Kind : uint8_t { kParse, kExecute, kQuery, kSync };
  explicit Pending(Kind k) : kind(k) {}
  Kind kind;
  bool injected = false;  // a Parse the proxy sent itself: its ParseComplete is not relayed
  bool error = false;
  uint64_t fingerprint = 0;
  int64_t start_us = 0;
  uint64_t rows = 0;
  std::string name;   // kParse: the server-side statement name
  std::string trace;  // the sqlcommenter trace id, if any
};

// Per-fingerprint statistics of one worker.
struct QueryStats {
  std::string text;  // normalised
  uint64_t calls = 0, errors = 0, rows = 0, total_us = 0;
  observe::Histogram latency;
};
struct SlowQuery {
  int64_t at_ms = 0;  // wall clock
  uint64_t micros = 0;
  std::string database, user, text, trace;
};

struct WorkerState {
  int id = 0;
  net::Loop* loop = nullptr;
  net::TimeoutList timeouts;
  std::vector<net::Socket> listeners;
  std::vector<net::Socket*> clients;  // open client sockets (StopWorker cancels them)
  bool stopping = false;
  std::atomic<int> running{0};  // accept loops, housekeeping and sessions still running
  std::mutex stats_mu;          // guards queries and slow (the admin thread reads them)
  std::unordered_map<uint64_t, std::unique_ptr<QueryStats>> queries;
  std::deque<SlowQuery> slow;
  uint64_t dropped_fingerprints = 0;
  // On this worker's thread. Learn gives a fingerprint its text (once); RecordQuery counts one
  // completed query (Pending::fingerprint set by Learn before).
  void Learn(uint64_t fingerprint, const std::string& normalized);
  void RecordQuery(const Pending& p, uint64_t micros, std::string_view db, std::string_view user,
                   Service::Impl& impl);
};

struct CancelTarget {
  std::vector<net::Address> servers;  // the primary, then the replicas (fixed at login)
  std::atomic<uint32_t> server{0};    // which one `key` belongs to
  std::atomic<uint64_t> key{0};       // backend pid << 32 | secret of the attached server; 0: none
};

// Process-wide counters.
struct Stats {
  std::atomic<uint64_t> clients_accepted{0}, login_failures{0}, protocol_errors{0}, cancels{0},
      cancels_forwarded{0};
  std::atomic<uint64_t> tls_clients{0}, tls_handshake_failures{0};  // TLS from clients
  std::atomic<int64_t> clients_active{0};
  std::mutex pinned_mu;
  std::map<std::string, uint64_t> pinned;  // reason -> clients pinned to their server
};

}  // namespace ficus::pg::internal

namespace ficus::pg {

struct Service::Impl {
  Impl(std::shared_ptr<const config::Config> config, int workers);
  std::shared_ptr<const config::Config> Config() const;
  // The pool of (database, user), created on first use. Null when either is unknown.
  std::shared_ptr<internal::Pool> FindPool(const std::string& db, const std::string& user,
                                           std::string* sqlstate, std::string* error);
  // The user's SCRAM verifier (made when the user first appears or its password changes).
  std::shared_ptr<const internal::ScramVerifier> Verifier(const std::string& user);
  void UpdateVerifiers();  // REQUIRES: mu held
  void AddPinned(const char* reason);

  mutable std::mutex mu;  // guards config, pools, verifiers, cancels
  std::shared_ptr<const config::Config> config;
  std::map<std::string, std::shared_ptr<internal::Pool>> pools;
  std::vector<std::shared_ptr<internal::Pool>> retired;  // until their connections close
  // Health of each server, by "database|host:port" (pools and the checker share them).
  std::map<std::string, std::shared_ptr<internal::Backend>> backends;
  std::shared_ptr<internal::Backend> BackendFor(const std::string& db, const std::string& server,
                                                bool primary);  // REQUIRES: mu held
  // By user: the password it was made from, and the verifier.
  std::map<std::string, std::pair<std::string, std::shared_ptr<const internal::ScramVerifier>>>
      verifiers;
  std::unordered_map<uint64_t, std::shared_ptr<internal::CancelTarget>> cancels;
  std::vector<std::unique_ptr<internal::WorkerState>> workers;
  std::atomic<bool> paused{false};
  internal::Stats stats;
  // Queries joined to HTTP routes by trace id; the database's minute rows (trace_join.cc).
  std::unique_ptr<internal::TraceJoin> join;
  // A sampled query per fingerprint with its parameters, for EXPLAIN on demand (explain.cc).
  std::unique_ptr<internal::Explainer> explain;
  // TLS (tls_setup.cc): the listeners' server context (null: SSLRequest answered 'N'), and each
  // database's client context by name (sslmode disable: none). Guarded by mu.
  std::shared_ptr<const tls::Context> client_tls;
  std::map<std::string, std::shared_ptr<const tls::Context>> server_tls;
  std::map<std::string, std::string> server_tls_errors;
};

}  // namespace ficus::pg

namespace ficus::pg::internal {

// pool.cc
struct Acquired {
  std::unique_ptr<ServerConn> conn;
  const char* sqlstate = nullptr;  // on failure
  std::string error;
};
net::Task<Acquired> Acquire(Service::Impl& impl, WorkerState& w, Pool& pool,
                            const std::vector<std::pair<std::string, std::string>>& client_params);
// Returns a server connection: `clean` ones (idle, no transaction) go to a waiter or the idle
// list; others are closed.
void Release(WorkerState& w, std::unique_ptr<ServerConn> conn, bool clean);
void SweepIdle(WorkerState& w, Service::Impl& impl, int64_t now_ms);

// server_conn.cc
net::Task<std::unique_ptr<ServerConn>> ConnectServer(
    WorkerState& w, Pool& pool, const std::vector<std::pair<std::string, std::string>>& params,
    std::string* error, int64_t timeout_ms);
// Runs one simple query to completion, discarding its results; false on an error or a broken
// connection (the connection must then be closed).
net::Task<bool> RunQuietly(ServerConn& s, std::string_view sql, uint32_t max_message);
// Runs one simple query that returns a row: its text values (nullopt: NULL). False (with
// `error`) on an error, no row, or a broken connection (then close it).
net::Task<bool> RunQueryRow(ServerConn& s, std::string_view sql, uint32_t max_message,
                            std::vector<std::optional<std::string>>* row, std::string* error);

// tls_setup.cc: loads the TLS contexts of `config` (startup, reload; off the workers) and gives
// every pool its database's. A file that fails to load keeps the context loaded before (logged).
void LoadTls(Service::Impl& impl, const config::Config& config);
// Gives `pool` its database's TLS context: every pool that connects to a server needs it (the
// clients' pools, the health checker's). AttachTlsLocked: impl.mu already held.
void AttachTls(Service::Impl& impl, Pool& pool);
void AttachTlsLocked(Service::Impl& impl, Pool& pool);
// Opens TLS on a server connection just connected, as pool.db.sslmode says (SSLRequest, then
// the handshake; plain text when the mode allows it). `allow_retry`: sslmode allow's second
// attempt, after the server refused plain text: TLS this time. False: *error says why.
net::Task<bool> StartServerTls(ServerConn& c, Pool& pool, bool allow_retry, std::string* error);

// client.cc
net::Task<void> ServeClient(Service::Impl& impl, WorkerState& w, int fd);
net::Task<void> ForwardCancel(Service::Impl& impl, WorkerState& w, uint32_t pid, uint32_t key);

int64_t NowMicros();

// net::Spawn's handler for the module's coroutines: logs what one threw (service.cc).
void LogIfThrew(std::exception_ptr e);

}  // namespace ficus::pg::internal
