// The join of queries to HTTP routes by trace id, and the database's minute rows for the
// telemetry store. See internal/trace_join.h for the threads.
#include "pg/internal/trace_join.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "base/log.h"
#include "pg/internal/plan_capture.h"

namespace ficus::pg::internal {

namespace {

constexpr size_t kRingSlots = 8192;  // per worker: 40 k traced queries/s at a 200 ms tick
constexpr size_t kMaxPending = 20000;
constexpr size_t kMaxRecent = 200;
constexpr size_t kMaxCounts = 64;  // distinct fingerprints tracked per trace
constexpr size_t kMaxRoutes = 1000;
constexpr size_t kMaxRepeatsPerRoute = 100;

int Hexit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

size_t QprBucket(uint64_t queries) {
  const auto& b = telemetry::kQueriesPerRequest;
  for (size_t i = 0; i < b.size(); ++i)
    if (queries <= b[i]) return i;
  return b.size();
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TraceJoin::TraceJoin(Service::Impl& impl, int workers)
    : impl_(impl), queries_(workers, kRingSlots), plans_(std::make_unique<PlanCapture>(impl)) {}

TraceJoin::~TraceJoin() { Stop(); }

bool TraceJoin::ParseKey(const char* hex, Key* out) {
  uint64_t v[2] = {0, 0};
  for (int i = 0; i < 32; ++i) {
    const int d = Hexit(hex[i]);
    if (d < 0) return false;
    v[i / 16] = v[i / 16] << 4 | static_cast<uint64_t>(d);
  }
  out->hi = v[0];
  out->lo = v[1];
  return true;
}

void TraceJoin::KeyHex(const Key& k, char* out) {
  std::snprintf(out, 33, "%016llx%016llx", static_cast<unsigned long long>(k.hi),
                static_cast<unsigned long long>(k.lo));
}

void TraceJoin::AttachRoutes(std::shared_ptr<observe::RouteTraceLog> log) {
  std::lock_guard lock(mu_);
  if (routes_log_) routes_log_->wanted.store(false, std::memory_order_relaxed);
  routes_log_ = std::move(log);
  if (routes_log_) routes_log_->wanted.store(true, std::memory_order_relaxed);
}

void TraceJoin::AttachStore(telemetry::Store* store) {
  std::lock_guard lock(mu_);
  store_ = store;
}

void TraceJoin::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void TraceJoin::Stop() {
  {
    std::lock_guard lock(run_mu_);
    stop_ = true;
  }
  run_cv_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  Tick(WallMs());
  FlushMinute(minute_ms_ >= 0 ? minute_ms_ : WallMs() / 60'000 * 60'000);
  AttachRoutes(nullptr);
}

void TraceJoin::Run() {
  std::unique_lock lock(run_mu_);
  while (!stop_) {
    run_cv_.wait_for(lock, std::chrono::milliseconds(kTickMs));
    if (stop_) break;
    lock.unlock();
    try {
      Tick(WallMs());
    } catch (const std::exception& e) {  // the store (SQLite): logged, the join goes on
      log::error("pg: trace join: {}", e.what());
    }
    lock.lock();
  }
}

void TraceJoin::DrainQueries(int64_t now_ms) {
  for (int w = 0; w < queries_.workers(); ++w) {
    queries_.Drain(w, [&](const TraceQuery& q) {
      Key k;
      if (!ParseKey(q.trace, &k)) {
        unparsable_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      auto [it, inserted] = pending_.try_emplace(k);
      Trace& t = it->second;
      if (inserted) {
        t.first_ms = now_ms;
        pending_order_.emplace_back(k, now_ms);
      }
      ++t.queries;
      t.micros += q.micros;
      for (auto& [fp, n] : t.counts) {
        if (fp == q.fingerprint) {
          ++n;
          return;
        }
      }
      if (t.counts.size() < kMaxCounts) t.counts.emplace_back(q.fingerprint, 1);
    });
  }
}

void TraceJoin::Remember(const Key& k, const Trace& t, std::string route, uint64_t request_us) {
  Joined j{k, std::move(route), t.queries, t.micros, request_us, 0, 0};
  for (const auto& [fp, n] : t.counts) {
    if (n > j.top) {
      j.top = n;
      j.top_fp = fp;
    }
  }
  recent_.push_back(std::move(j));
  if (recent_.size() > kMaxRecent) recent_.pop_front();
}

void TraceJoin::Join(const observe::RouteTrace& h) {
  Key k;
  if (h.route == nullptr || !ParseKey(h.trace_id, &k)) return;
  auto it = pending_.find(k);
  const std::string& route = *h.route;
  RouteAgg* aggs[2] = {nullptr, nullptr};
  auto find = [&](std::map<std::string, RouteAgg>& m, bool create) -> RouteAgg* {
    auto r = m.find(route);
    if (r != m.end()) return &r->second;
    if (!create || m.size() >= kMaxRoutes) return nullptr;
    return &m[route];
  };
  // A route is listed from its first request with a query on: its requests without one count
  // from then on (they are what makes "queries per request" a distribution).
  const bool with = it != pending_.end();
  aggs[0] = find(routes_, with);
  aggs[1] = find(minute_routes_, with || aggs[0] != nullptr);
  if (!with) {
    for (RouteAgg* a : aggs) {
      if (a == nullptr) continue;
      ++a->requests;
      a->request_us += h.duration_us;
      ++a->qpr[0];
    }
    return;
  }
  const Trace& t = it->second;
  for (RouteAgg* a : aggs) {
    if (a == nullptr) continue;
    ++a->requests;
    ++a->with_queries;
    a->queries += t.queries;
    a->db_us += t.micros;
    a->request_us += h.duration_us;
    ++a->qpr[QprBucket(t.queries)];
    for (const auto& [fp, n] : t.counts) {
      if (n < kNPlusOne) continue;
      auto r = a->repeats.find(fp);
      if (r == a->repeats.end()) {
        if (a->repeats.size() >= kMaxRepeatsPerRoute) continue;
        r = a->repeats.emplace(fp, Repeat{}).first;
      }
      ++r->second.requests;
      r->second.repeats += n;
      r->second.max_repeats = std::max<uint64_t>(r->second.max_repeats, n);
    }
  }
  ++joined_;
  Remember(k, t, route, h.duration_us);
  pending_.erase(it);  // its entry in pending_order_ goes when it reaches the front
}

void TraceJoin::Tick(int64_t now_ms) {
  int64_t ended = -1;
  telemetry::Store* store = nullptr;
  {
    std::lock_guard lock(mu_);
    DrainQueries(now_ms);
    // Exchanges drained last round: their queries, which completed before the response did,
    // are in the table by now.
    for (const observe::RouteTrace& h : held_) Join(h);
    held_.clear();
    if (routes_log_) {
      for (int w = 0; w < routes_log_->rings.workers(); ++w)
        routes_log_->rings.Drain(w, [&](const observe::RouteTrace& h) { held_.push_back(h); });
    }
    // Traces no exchange claimed, oldest first (and the table bounded).
    while (!pending_order_.empty()) {
      const auto& [k, at] = pending_order_.front();
      auto it = pending_.find(k);
      if (it != pending_.end() && it->second.first_ms != at) it = pending_.end();  // a newer one
      // (The order list keeps joined traces until they reach its front: bounded too.)
      const bool old = now_ms - at >= kUnjoinedMs || pending_.size() > kMaxPending ||
                       pending_order_.size() > 4 * kMaxPending;
      if (it != pending_.end() && !old) break;
      if (it != pending_.end()) {
        ++(now_ms - at >= kUnjoinedMs ? unjoined_ : evicted_);
        Remember(k, it->second, {}, 0);
        pending_.erase(it);
      }
      pending_order_.pop_front();
    }
    // Pool peaks for the minute rows.
    {
      std::lock_guard impl_lock(impl_.mu);
      for (const auto& [name, p] : impl_.pools) {
        PoolMark& m = pool_peaks_[name];
        m.peak_waiting = std::max<int64_t>(m.peak_waiting, p->waiting.load());
        m.peak_open = std::max<int64_t>(m.peak_open, p->open.load());
      }
    }
    servers_.Sample(impl_);
    store = store_;
    const int64_t minute = now_ms / 60'000 * 60'000;
    if (minute_ms_ < 0) minute_ms_ = minute;
    if (minute != minute_ms_) {
      ended = minute_ms_;
      minute_ms_ = minute;
    }
  }
  if (ended >= 0) plans_->OnMinute(FlushMinute(ended), now_ms);
  plans_->Poll(store, now_ms);
}

telemetry::DbRollup TraceJoin::FlushMinute(int64_t ts_ms) {
  telemetry::DbRollup rows;
  const auto merged = MergeQueries(impl_);
  std::vector<std::pair<std::string, std::shared_ptr<Pool>>> pools;
  {
    std::lock_guard impl_lock(impl_.mu);
    for (const auto& [name, p] : impl_.pools) pools.emplace_back(name, p);
  }
  std::lock_guard lock(mu_);
  for (const auto& [fp, m] : merged) {
    MergedQuery& last = flushed_queries_[fp];
    if (m.calls <= last.calls) continue;
    telemetry::DbQuery q;
    q.ts_ms = ts_ms;
    q.fingerprint = fp;
    q.text = m.text;
    q.calls = m.calls - last.calls;
    q.errors = m.errors - std::min(m.errors, last.errors);
    q.rows = m.rows - std::min(m.rows, last.rows);
    q.total_us = m.total_us - std::min(m.total_us, last.total_us);
    for (int i = 0; i < observe::Histogram::kBuckets; ++i)
      q.latency.buckets[i] =
          m.latency.buckets[i] - std::min(m.latency.buckets[i], last.latency.buckets[i]);
    rows.queries.push_back(std::move(q));
    last = m;
  }
  // The minute's 100 heaviest fingerprints by time: the report's "slowest" and "most time".
  std::sort(rows.queries.begin(), rows.queries.end(),
            [](const auto& a, const auto& b) { return a.total_us > b.total_us; });
  if (rows.queries.size() > 100) rows.queries.resize(100);
  for (const auto& [name, p] : pools) {
    PoolMark& last = flushed_pools_[name];
    PoolMark& peak = pool_peaks_[name];
    telemetry::DbPool r;
    r.ts_ms = ts_ms;
    r.pool = name;
    r.pool_size = p->db.pool_size;
    auto delta = [](uint64_t now, uint64_t& before) {
      const uint64_t d = now - std::min(now, before);
      before = now;
      return d;
    };
    r.waits = delta(p->waits.load(), last.waits);
    r.wait_timeouts = delta(p->wait_timeouts.load(), last.wait_timeouts);
    r.wait_rejected = delta(p->wait_full.load(), last.wait_rejected);
    r.wait_us = delta(p->wait_micros.load(), last.wait_us);
    r.peak_waiting = peak.peak_waiting;
    r.peak_open = peak.peak_open;
    peak = PoolMark{};
    if (r.waits || r.wait_timeouts || r.wait_rejected || r.peak_open) rows.pools.push_back(r);
  }
  for (auto& [name, a] : minute_routes_) {
    if (a.requests == 0) continue;
    telemetry::DbRoute r;
    r.ts_ms = ts_ms;
    r.route = name;
    r.requests = a.requests;
    r.with_queries = a.with_queries;
    r.queries = a.queries;
    r.db_us = a.db_us;
    r.request_us = a.request_us;
    r.queries_per_request = a.qpr;
    rows.routes.push_back(r);
    for (const auto& [fp, rep] : a.repeats) {
      telemetry::DbRepeat x;
      x.ts_ms = ts_ms;
      x.route = name;
      x.fingerprint = fp;
      for (const auto& [mfp, m] : merged)
        if (mfp == fp) x.text = m.text;
      x.requests = rep.requests;
      x.repeats = rep.repeats;
      x.max_repeats = rep.max_repeats;
      rows.repeats.push_back(std::move(x));
    }
  }
  minute_routes_.clear();
  servers_.Flush(ts_ms, &rows.servers);
  if (store_ != nullptr) store_->WriteDb(rows);
  return rows;
}

void TraceJoin::Collect(observe::MetricWriter& w) {
  std::lock_guard lock(mu_);
  w.Family("ficus_pg_trace_join_total", "counter",
           "Query traces (sqlcommenter trace ids) joined to the HTTP exchange of the same trace "
           "id, and those no exchange claimed within 60 s.");
  w.Sample("ficus_pg_trace_join_total", {{"result", "joined"}}, joined_);
  w.Sample("ficus_pg_trace_join_total", {{"result", "unjoined"}}, unjoined_);
  w.Sample("ficus_pg_trace_join_total", {{"result", "evicted"}}, evicted_);
  w.Sample("ficus_pg_trace_join_total", {{"result", "dropped"}}, queries_.dropped());
  w.Family("ficus_pg_route_requests_total", "counter",
           "Traced HTTP requests of routes that query the database (joined by trace id).");
  for (const auto& [r, a] : routes_)
    w.Sample("ficus_pg_route_requests_total", {{"route", r}}, a.requests);
  w.Family("ficus_pg_route_queries_total", "counter", "Queries those requests caused.");
  for (const auto& [r, a] : routes_)
    w.Sample("ficus_pg_route_queries_total", {{"route", r}}, a.queries);
  w.Family("ficus_pg_route_db_seconds_total", "counter",
           "Database time of those requests (its rate over the request seconds' rate is the "
           "route's database share).");
  for (const auto& [r, a] : routes_)
    w.DoubleSample("ficus_pg_route_db_seconds_total", {{"route", r}},
                   static_cast<double>(a.db_us) / 1e6);
  w.Family("ficus_pg_route_request_seconds_total", "counter", "Time answering those requests.");
  for (const auto& [r, a] : routes_)
    w.DoubleSample("ficus_pg_route_request_seconds_total", {{"route", r}},
                   static_cast<double>(a.request_us) / 1e6);
  w.Family("ficus_pg_route_queries_per_request", "histogram", "Queries per HTTP request.");
  for (const auto& [r, a] : routes_) {
    uint64_t cum = 0;
    const auto& b = telemetry::kQueriesPerRequest;
    for (size_t i = 0; i < b.size(); ++i) {
      cum += a.qpr[i];
      const std::string le = std::to_string(b[i]);
      w.Sample("ficus_pg_route_queries_per_request_bucket", {{"route", r}, {"le", le}}, cum);
    }
    w.Sample("ficus_pg_route_queries_per_request_bucket", {{"route", r}, {"le", "+Inf"}},
             a.requests);
    w.Sample("ficus_pg_route_queries_per_request_sum", {{"route", r}}, a.queries);
    w.Sample("ficus_pg_route_queries_per_request_count", {{"route", r}}, a.requests);
  }
  w.Family("ficus_pg_route_n_plus_one_total", "counter",
           "Requests of the route that ran one fingerprint at least 5 times (N+1).");
  for (const auto& [r, a] : routes_)
    for (const auto& [fp, rep] : a.repeats)
      w.Sample("ficus_pg_route_n_plus_one_total", {{"route", r}, {"fingerprint", Hex(fp)}},
               rep.requests);
}

void TraceJoin::WriteJson(JsonWriter& j) {
  std::lock_guard lock(mu_);
  DrainQueries(WallMs());  // the newest queries too
  char hex[33];
  // Recent traces (joined or given up on), then those still waiting for their exchange.
  j.Key("traces").BeginArray();
  auto trace = [&](const Key& k, uint64_t queries, uint64_t micros, uint32_t top, uint64_t top_fp) {
    KeyHex(k, hex);
    j.Key("trace_id").String(std::string_view(hex, 32));
    j.Key("queries").Uint(queries);
    j.Key("db_ms").Number(static_cast<double>(micros) / 1000, 3);
    j.Key("max_repeats").Uint(top);
    j.Key("repeated_fingerprint").String(Hex(top_fp));
  };
  for (const Joined& t : recent_) {
    j.BeginObject();
    trace(t.key, t.queries, t.micros, t.top, t.top_fp);
    if (!t.route.empty()) {
      j.Key("route").String(t.route);
      j.Key("request_ms").Number(static_cast<double>(t.request_us) / 1000, 3);
    }
    j.EndObject();
  }
  for (const auto& [k, t] : pending_) {
    uint32_t top = 0;
    uint64_t top_fp = 0;
    for (const auto& [fp, n] : t.counts) {
      if (n > top) {
        top = n;
        top_fp = fp;
      }
    }
    j.BeginObject();
    trace(k, t.queries, t.micros, top, top_fp);
    j.EndObject();
  }
  j.EndArray();
  // Per route (since start): queries per request, the database's share, N+1 fingerprints.
  j.Key("routes").BeginArray();
  for (const auto& [r, a] : routes_) {
    j.BeginObject();
    j.Key("route").String(r);
    j.Key("requests").Uint(a.requests);
    j.Key("requests_with_queries").Uint(a.with_queries);
    j.Key("queries").Uint(a.queries);
    j.Key("queries_per_request")
        .Number(a.requests ? static_cast<double>(a.queries) / static_cast<double>(a.requests) : 0,
                2);
    j.Key("queries_per_request_buckets").BeginArray();
    const auto& b = telemetry::kQueriesPerRequest;
    for (size_t i = 0; i <= b.size(); ++i) {
      j.BeginObject();
      if (i < b.size()) {
        j.Key("le").Uint(b[i]);
      } else {
        j.Key("le").String("+Inf");
      }
      j.Key("requests").Uint(a.qpr[i]);
      j.EndObject();
    }
    j.EndArray();
    j.Key("db_ms").Number(static_cast<double>(a.db_us) / 1000, 3);
    j.Key("request_ms").Number(static_cast<double>(a.request_us) / 1000, 3);
    j.Key("db_share")
        .Number(a.request_us ? static_cast<double>(a.db_us) / static_cast<double>(a.request_us) : 0,
                3);
    j.EndObject();
  }
  j.EndArray();
  std::unordered_map<uint64_t, std::string> texts;
  for (auto& [fp, m] : MergeQueries(impl_)) texts.emplace(fp, std::move(m.text));
  j.Key("n_plus_one").BeginArray();
  for (const auto& [r, a] : routes_) {
    for (const auto& [fp, rep] : a.repeats) {
      j.BeginObject();
      j.Key("route").String(r);
      j.Key("fingerprint").String(Hex(fp));
      j.Key("query").String(texts[fp]);
      j.Key("requests").Uint(rep.requests);
      j.Key("of_requests").Uint(a.requests);
      j.Key("repeats").Uint(rep.repeats);
      j.Key("max_repeats").Uint(rep.max_repeats);
      j.EndObject();
    }
  }
  j.EndArray();
}

}  // namespace ficus::pg::internal
