// ficus::pg — the PostgreSQL wire-protocol proxy: listeners of kind postgres, pools of server
// connections per (database, user) in session or transaction mode, SCRAM-SHA-256 both ways,
// cancel routing, and per-query-fingerprint statistics. Runs on the workers' event loops (net/),
// never on the HTTP phase runner. docs/architecture.md "The PostgreSQL proxy" has the design.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "net/net.h"
#include "observe/observe.h"

namespace ficus::telemetry {
class Store;
}

namespace ficus::pg {

// --- the wire protocol (protocol.cc): strict and bounded; errors are values ---

// What a malformed or refused message gets: an ErrorResponse with this SQLSTATE, then close.
struct ProtocolError {
  const char* sqlstate = nullptr;  // null: no error
  std::string message;
  explicit operator bool() const { return sqlstate != nullptr; }
};

inline constexpr uint32_t kProtocol3 = 196608;  // 3.0
inline constexpr uint32_t kSslRequestCode = 80877103;
inline constexpr uint32_t kGssEncRequestCode = 80877104;
inline constexpr uint32_t kCancelRequestCode = 80877102;
inline constexpr uint32_t kMaxStartupPacket = 10000;  // as the server's MAX_STARTUP_PACKET_LENGTH

// The first packet of a connection (no type byte): StartupMessage, SSLRequest, GSSENCRequest
// or CancelRequest.
struct StartupPacket {
  enum class Kind : uint8_t { kStartup, kSsl, kGssEnc, kCancel } kind = Kind::kStartup;
  std::vector<std::pair<std::string, std::string>> params;  // StartupMessage, in order
  uint32_t cancel_pid = 0, cancel_key = 0;                  // CancelRequest
  const std::string* Get(std::string_view name) const;
};

// How much of `buf` the next frame takes. kNeedMore: not all of it is there yet (`size` is the
// whole frame's size once the header is, 0 before); kError: `error` says why.
struct Frame {
  enum class Status : uint8_t { kNeedMore, kComplete, kError } status = Status::kNeedMore;
  char type = 0;      // typed messages; 0 for a startup packet
  uint32_t size = 0;  // the whole frame, header included
  ProtocolError error;
};
Frame ScanStartupFrame(std::string_view buf);
// A typed message: one type byte, an int32 length (itself included, >= 4), the body.
// `max_size` bounds the whole frame. `frontend`: the types a client may send (else a server's).
Frame ScanMessageFrame(std::string_view buf, uint32_t max_size, bool frontend);
// REQUIRES: `packet` is one complete frame from ScanStartupFrame.
ProtocolError ParseStartupPacket(std::string_view packet, StartupPacket* out);

// The parts of frontend messages the proxy reads (views into the message; body without the
// 5-byte header). Each Parse* checks the whole layout: every string terminated, counts and
// lengths within the body, nothing left over.
struct ParseMessage {
  std::string_view statement, query;
  uint16_t param_types = 0;
};
struct BindMessage {
  std::string_view portal, statement;
  uint16_t params = 0;
};
struct TargetMessage {  // Describe and Close: 'S' statement or 'P' portal
  char what = 0;
  std::string_view name;
};
ProtocolError ParseParse(std::string_view body, ParseMessage* out);
ProtocolError ParseBind(std::string_view body, BindMessage* out);
ProtocolError ParseTarget(std::string_view body, TargetMessage* out);
ProtocolError ParseQuery(std::string_view body, std::string_view* sql);
ProtocolError ParseExecute(std::string_view body, std::string_view* portal);
// Checks one complete frontend message of any type (the proxy's front door).
ProtocolError CheckFrontendMessage(char type, std::string_view body);

// Backend message builders (append to `out`).
void AppendErrorResponse(std::string& out, const char* severity, const char* sqlstate,
                         std::string_view message);
void AppendMessage(std::string& out, char type, std::string_view body);
void AppendReadyForQuery(std::string& out, char status);
void AppendParameterStatus(std::string& out, std::string_view name, std::string_view value);
void AppendInt32(std::string& out, uint32_t v);
void AppendInt16(std::string& out, uint16_t v);
uint32_t ReadInt32(const char* p);
uint16_t ReadInt16(const char* p);

// --- query fingerprints (fingerprint.cc) ---

// The normalised text of a query, as pg_stat_statements groups them: comments dropped,
// literals and parameters ($n) become '?', IN (?, ?, ...) lists collapse to IN (?), runs of
// white space become one space, keywords and unquoted identifiers lower-cased.
std::string Normalize(std::string_view sql);
uint64_t Fingerprint(std::string_view normalized);
// The trace id of a sqlcommenter-style comment (`traceparent='00-<32 hex>-<16 hex>-<2 hex>'`,
// also URL-encoded quotes) anywhere in the SQL; empty when there is none or it is malformed.
std::string_view TraceIdOf(std::string_view sql);
// The session state a statement sets that would leak to the next client of its server
// connection in transaction mode (SET, SET ROLE, advisory locks, temp tables, LISTEN, WITH
// HOLD cursors, PREPARE...): a short reason ("set", "listen"...), or null when none.
const char* SessionStateOf(std::string_view sql);

// --- the service ---

// The process's PostgreSQL proxy. Created once (main thread) when any listener is of kind
// postgres; each worker's loop then runs its part. Thread safety: StartWorker/StopWorker on
// the worker's own thread; Reconfigure and Render from any thread.
class Service {
 public:
  Service(std::shared_ptr<const config::Config> config, int workers);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // On worker `id`'s thread: opens its SO_REUSEPORT sockets for the postgres listeners and
  // starts accepting. Throws std::system_error when a bind fails.
  void StartWorker(int id, net::Loop& loop);
  // On worker `id`'s thread: stop accepting, close every client and server connection.
  void StopWorker(int id);
  // True once every worker's accept loops, sessions and housekeeping have ended (any thread).
  bool Stopped() const;
  // A new config (reload): new logins see the new databases and users; pools of databases whose
  // primary or size changed drain as their connections come back.
  void Reconfigure(std::shared_ptr<const config::Config> config);
  // Pause: clients keep their connections, but no new transaction (or session) gets a server
  // until Resume; in-flight ones finish. For maintenance of the database.
  void Pause();
  void Resume();
  bool paused() const;
  // Prometheus families ficus_pg_* (observe::Registry::AddCollector).
  void Collect(observe::MetricWriter& w) const;
  // GET /pg: pools and the query fingerprints as JSON.
  std::string StatusJson() const;
  // The HTTP side of the query-to-route join: the tracer's log of traced exchanges (a query
  // whose sqlcommenter traceparent has the exchange's trace id belongs to its route).
  void AttachRoutes(std::shared_ptr<observe::RouteTraceLog> log);
  // Each minute's database rows (queries, pools, routes, N+1) go to `store` from then on; it
  // must outlive this service.
  void AttachTelemetry(telemetry::Store* store);
  // EXPLAIN (ANALYZE when `analyze`: SELECTs only) of the sampled query of a fingerprint (hex,
  // as GET /pg lists it) with its sampled parameters, on a server connection of its pool, in a
  // read-only transaction with a 10 s statement timeout. Blocks the calling thread (never a
  // worker's) until the plan or an error: status 200, or 400 (refused), 404 (no sample), 502
  // (the server's error), 503/504 (no connection, no answer).
  // With the plan: the indexes it lacks (index advice from EXPLAIN (FORMAT JSON), see
  // docs/architecture.md "Index advice"), each with its CREATE INDEX statement.
  struct IndexAdvice {
    std::string table;
    std::vector<std::string> columns;
    std::string statement, reason;
  };
  struct ExplainResult {
    int status = 200;
    std::string error;
    std::vector<std::string> plan;
    std::vector<IndexAdvice> indexes;
  };
  ExplainResult Explain(std::string_view fingerprint, bool analyze) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// True when the config has a listener of kind postgres.
bool Enabled(const config::Config& config);

}  // namespace ficus::pg
