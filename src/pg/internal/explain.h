// EXPLAIN on demand: one sampled query per fingerprint with its real parameters (kept in memory
// only, bounded, never exported: GET /pg and the slow-query samples show normalised text), and
// the run of `EXPLAIN` for it on a server connection of the query's pool, in a read-only
// transaction with a statement timeout (`EXPLAIN ANALYZE` only when asked, and only for SELECT).
//
// Threads: a worker samples into its own table (read without a lock by its owner; written under
// the table's mutex, taken only when a fingerprint's sample is missing or older than
// kRefreshMs); Explain runs on any thread (the admin's), posts the run to worker 0's loop and
// waits for its result.
#pragma once

#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pg/internal/plan_advice.h"
#include "pg/internal/service.h"

namespace ficus::pg::internal {

struct ParamSample {
  std::string database, user;
  std::string sql;    // the query as the client sent it (simple protocol: literals included)
  std::string parse;  // extended protocol: the Parse body after its statement name
  std::string bind;   // extended protocol: the Bind body after its portal and statement names
  bool extended = false;
  bool awaiting_bind = false;  // extended: the Parse is in, its first Bind not yet
  int64_t at_ms = 0;
};

class Explainer {
 public:
  static constexpr size_t kMaxSamples = 256;      // fingerprints per worker
  static constexpr size_t kMaxBytes = 16 * 1024;  // longer queries or parameters: not sampled
  static constexpr int64_t kRefreshMs = 10'000;   // a fingerprint's sample is renewed this often
  static constexpr int64_t kStatementTimeoutMs = 10'000;

  explicit Explainer(int workers) : tables_(static_cast<size_t>(workers)) {}

  // On worker `w`'s thread, `now_ms` its loop's clock. A simple Query; a Parse (`body`: the whole
  // Parse body); a Bind (`body`: the whole Bind body) of a statement of fingerprint `fp`.
  void OnQuery(int w, uint64_t fp, std::string_view sql, const std::string& database,
               const std::string& user, int64_t now_ms);
  void OnParse(int w, uint64_t fp, std::string_view body, const std::string& database,
               const std::string& user, int64_t now_ms);
  void OnBind(int w, uint64_t fp, std::string_view body);

  // The sample of `fp` (the newest of any worker); false when there is none.
  bool Find(uint64_t fp, ParamSample* out) const;

  struct Plan {
    bool ok = false;
    int status = 200;   // for the admin API: 404 no sample, 400 refused, 502 the server said no
    std::string error;  // when !ok
    std::vector<std::string> lines;  // the plan, one line per row
    std::string json;                // the same plan (without ANALYZE) as EXPLAIN (FORMAT JSON)
    PlanAdvice advice;               // indexes it lacks (Advise)
  };
  // Runs EXPLAIN (ANALYZE when `analyze`) for fingerprint `fp`'s sample. Blocks the calling
  // thread (never a worker) for up to `timeout_ms`.
  // The plan comes with its index advice.
  Plan Explain(Service::Impl& impl, uint64_t fp, bool analyze, int64_t timeout_ms) const;
  // The same without waiting (any thread, worker 0's included): the future is ready once
  // worker 0 has the plan or an error. Plan::advice is left to Advise.
  std::future<Plan> Start(Service::Impl& impl, uint64_t fp, bool analyze) const;
  static void Advise(Plan& plan);

 private:
  struct Table {
    mutable std::mutex mu;  // guards samples (writes by the owner, reads by Find)
    std::unordered_map<uint64_t, ParamSample> samples;
  };
  // The slot to (re)fill for `fp`, or null when its sample is fresh or the table is full.
  ParamSample* Slot(Table& t, uint64_t fp, int64_t now_ms);
  std::vector<Table> tables_;
};

// The messages that run the EXPLAIN of `s` (for tests): a read-only transaction with a statement
// timeout, the EXPLAIN (extended protocol when the sample is), the same EXPLAIN without ANALYZE
// in FORMAT JSON (index advice reads it), ROLLBACK. Empty and *error set
// when it must not run (several statements; ANALYZE of anything but a SELECT).
std::string ExplainMessages(const ParamSample& s, bool analyze, std::string* error);

}  // namespace ficus::pg::internal
