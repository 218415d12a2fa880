// The read/write split: which statements are provably read-only (readonly.cc), the health and
// replay lag of every server of a database (replicas.cc: a checker on worker 0), and which
// server a transaction goes to. docs/architecture.md "Replicas" has the rule.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "pg/pg.h"

namespace ficus {
class JsonWriter;
namespace observe {
class MetricWriter;
}
}  // namespace ficus

namespace ficus::pg::internal {

struct Pool;

// What a client's statements (one simple Query string, or one extended-protocol batch up to
// its Sync) need from a server.
enum class Access : uint8_t {
  kWrite,  // may write, lock, set session state, or leaves a read-write transaction open
  kRead,   // only reads, and leaves no transaction open
  kReadOnlyTransaction,  // opens (and leaves open) a transaction the client declared READ ONLY
};

// What one statement does to the read/write decision.
enum class StatementKind : uint8_t {
  kNeutral,        // empty, SAVEPOINT, SET LOCAL, SET TRANSACTION ISOLATION ...
  kRead,           // provably read-only (SELECT without locking or unknown functions, SHOW ...)
  kWrite,          // anything else
  kBegin,          // BEGIN / START TRANSACTION, read-write (the default)
  kBeginReadOnly,  // BEGIN ... READ ONLY
  kSetReadOnly,    // SET TRANSACTION READ ONLY
  kEnd,            // COMMIT / END / ROLLBACK / ABORT (not ROLLBACK TO, not AND CHAIN)
  kEndChain,       // COMMIT AND CHAIN: a new transaction like the last
};

// Whether a built-in function (its name in lower case) is known never to write
// (read_functions.cc).
bool IsReadOnlyBuiltin(std::string_view lowercase_name);

// The kind of each statement of `sql` (split at top-level semicolons), in order, to `out`
// (cleared first).
void ClassifyStatements(std::string_view sql, std::vector<StatementKind>* out);
// The kind of a Parse's statement (one statement; several: kWrite).
StatementKind KindOfOne(std::string_view sql);

// Follows a batch statement by statement: the transaction it opens (READ ONLY or not), and
// whether every statement outside a READ ONLY transaction is provably read-only.
class AccessClassifier {
 public:
  void Add(StatementKind kind);
  void AddSql(std::string_view sql);  // every statement of a simple Query's text
  Access Result() const;

 private:
  bool write_ = false;
  bool in_tx_ = false, tx_read_only_ = false;
};

// The health of one server of a database, written by the checker (worker 0's loop), read by
// every worker (relaxed atomics; last_error under mu).
struct Backend {
  std::string database;  // ficus's name of the database
  std::string server;    // host:port
  bool primary = false;
  std::atomic<bool> checked{false};      // a check has completed (up is meaningful)
  std::atomic<bool> up{false};           // the last check (or connect) succeeded
  std::atomic<bool> in_recovery{false};  // a standby (a replica must be one)
  std::atomic<int64_t> lag_ms{-1};       // replay lag estimate; -1: unknown
  // Steady-clock ms: every commit acknowledged before it has been replayed here (replicas).
  std::atomic<int64_t> caught_up_ms{0};
  std::atomic<uint64_t> reads{0}, writes{0}, checks{0}, checks_failed{0};
  // On the primary's backend: reads of its database that went to the primary, and why.
  std::atomic<uint64_t> fallback_down{0}, fallback_lag{0}, fallback_ryw{0};
  mutable std::mutex mu;
  std::string last_error;  // guarded by mu
  void MarkDown(std::string_view why);
  std::string LastError() const;
};

// Steady-clock milliseconds, the clock every thread of the pg module compares.
int64_t SteadyMs();

// A replica of `primary`'s database for a read: up, a standby, within max_replica_lag, and,
// when `last_write_ms` > 0 and read_your_writes is on, caught up with that write. The least
// busy one (ties rotate with `*turn`); null when none fits (counted on the primary's backend
// by reason).
Pool* PickReplica(Pool& primary, int64_t last_write_ms, uint32_t* turn);

// On worker 0's loop while the service runs (counted in w.running): checks every primary and
// replica each health_check_interval, each server on its own (health_check.cc), until
// w.stopping.
struct WorkerState;
net::Task<void> CheckServers(Service::Impl& impl, WorkerState& w);

// Exports (stats.cc calls them): ficus_pg_server_* families and the "servers" array of GET /pg.
void CollectServers(const Service::Impl& impl, observe::MetricWriter& w);
void WriteServersJson(const Service::Impl& impl, JsonWriter& j);

// A WAL position "X/Y" as text; false when malformed.
bool ParseLsn(std::string_view text, uint64_t* lsn);
// Positions in a WAL page's header (the first 24 or 40 bytes of an 8 KiB page) are the page's
// start: the primary's insert position points past a header a replica's replay end never does.
uint64_t NormalizeLsn(uint64_t lsn);

// The primary's WAL insert positions over time (a run of equal positions is one entry), and
// where a replica that has replayed up to `replay` stands against them:
//  - caught_up_ms: the last sample time whose position the replica has reached; every commit
//    acknowledged before it is on the replica (read-your-writes compares with it: exact);
//  - lag_ms: how old the replica's data is, interpolating between the two samples around
//    `replay` (0 when it has the latest sample's position; -1 with no history).
struct LsnSample {
  int64_t first_ms = 0, last_ms = 0;
  uint64_t lsn = 0;
};
struct ReplayState {
  int64_t caught_up_ms = 0;
  int64_t lag_ms = -1;
};
ReplayState ReplayPosition(const std::deque<LsnSample>& history, uint64_t replay, int64_t now_ms);

}  // namespace ficus::pg::internal
