// The telemetry thread: ticks (rollups), drains (events, error samples), and the queues the
// other threads feed it through.
#include "telemetry/telemetry.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "base/log.h"

namespace ficus::telemetry {

CacheCounters CacheCounters::Since(const CacheCounters& before) const {
  // One counter below its earlier value: a new store; every counter started again at zero.
  const bool restarted = hits < before.hits || misses < before.misses || stale < before.stale ||
                         stale_errors < before.stale_errors || revalidated < before.revalidated ||
                         coalesced < before.coalesced || bypassed < before.bypassed;
  if (restarted) return *this;
  return {hits - before.hits,
          misses - before.misses,
          stale - before.stale,
          stale_errors - before.stale_errors,
          revalidated - before.revalidated,
          coalesced - before.coalesced,
          bypassed - before.bypassed};
}

void CacheCounters::Add(const CacheCounters& o) {
  hits += o.hits;
  misses += o.misses;
  stale += o.stale;
  stale_errors += o.stale_errors;
  revalidated += o.revalidated;
  coalesced += o.coalesced;
  bypassed += o.bypassed;
}

// ---------------------------------------------------------------------------------------------
// ErrorSampler: single-producer single-consumer rings of fixed slots.

struct ErrorSampler::Ring {
  struct Slot {
    int64_t ts_ms;
    int status;
    uint16_t route_len, id_len, req_len, resp_len;
    char route[kRouteBytes];
    char id[kIdBytes];
    char req[kHeadBytes];
    char resp[kHeadBytes];
  };
  std::array<Slot, kSlots> slots;
  alignas(64) std::atomic<uint64_t> head{0};  // next slot the producer writes
  alignas(64) std::atomic<uint64_t> tail{0};  // next slot the consumer reads
  alignas(64) std::atomic<uint64_t> dropped{0};
};

ErrorSampler::ErrorSampler(int workers) {
  for (int i = 0; i < workers; ++i) rings_.push_back(std::make_unique<Ring>());
}

ErrorSampler::~ErrorSampler() = default;

namespace {
uint16_t CopyCut(char* dst, size_t cap, std::string_view src) {
  const size_t n = std::min(cap, src.size());
  std::memcpy(dst, src.data(), n);
  return static_cast<uint16_t>(n);
}
}  // namespace

bool ErrorSampler::Push(int worker, int64_t ts_ms, std::string_view route, int status,
                        std::string_view request_id, std::string_view request_head,
                        std::string_view response_head) {
  Ring& r = *rings_[worker];
  const uint64_t head = r.head.load(std::memory_order_relaxed);
  if (head - r.tail.load(std::memory_order_acquire) >= kSlots) {
    r.dropped.store(r.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return false;
  }
  Ring::Slot& s = r.slots[head % kSlots];
  s.ts_ms = ts_ms;
  s.status = status;
  s.route_len = CopyCut(s.route, kRouteBytes, route);
  s.id_len = CopyCut(s.id, kIdBytes, request_id);
  s.req_len = CopyCut(s.req, kHeadBytes, request_head);
  s.resp_len = CopyCut(s.resp, kHeadBytes, response_head);
  r.head.store(head + 1, std::memory_order_release);
  return true;
}

std::vector<ErrorSample> ErrorSampler::Drain() {
  std::lock_guard lock(drain_mu_);
  std::vector<ErrorSample> out;
  for (auto& ring : rings_) {
    Ring& r = *ring;
    uint64_t tail = r.tail.load(std::memory_order_relaxed);
    const uint64_t head = r.head.load(std::memory_order_acquire);
    for (; tail != head; ++tail) {
      const Ring::Slot& s = r.slots[tail % kSlots];
      ErrorSample e;
      e.ts_ms = s.ts_ms;
      e.status = s.status;
      e.route.assign(s.route, s.route_len);
      e.request_id.assign(s.id, s.id_len);
      e.request_head = RedactHead({s.req, s.req_len});
      e.response_head = RedactHead({s.resp, s.resp_len});
      out.push_back(std::move(e));
    }
    r.tail.store(tail, std::memory_order_release);
  }
  std::sort(out.begin(), out.end(),
            [](const ErrorSample& a, const ErrorSample& b) { return a.ts_ms < b.ts_ms; });
  return out;
}

uint64_t ErrorSampler::dropped() const {
  uint64_t n = 0;
  for (const auto& r : rings_) n += r->dropped.load(std::memory_order_relaxed);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Events: a bounded multi-producer queue (Vyukov's), so any thread can record without a lock.

struct Telemetry::EventQueue {
  static constexpr size_t kSize = 1024;  // a power of two
  struct Cell {
    std::atomic<size_t> seq;
    Event event;
  };
  std::array<Cell, kSize> cells;
  alignas(64) std::atomic<size_t> enqueue_pos{0};
  alignas(64) std::atomic<size_t> dequeue_pos{0};

  EventQueue() {
    for (size_t i = 0; i < kSize; ++i) cells[i].seq.store(i, std::memory_order_relaxed);
  }

  bool Push(Event&& e) {
    size_t pos = enqueue_pos.load(std::memory_order_relaxed);
    for (;;) {
      Cell& c = cells[pos & (kSize - 1)];
      const size_t seq = c.seq.load(std::memory_order_acquire);
      const intptr_t dif = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (dif == 0) {
        if (enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.event = std::move(e);
          c.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = enqueue_pos.load(std::memory_order_relaxed);
      }
    }
  }

  // Single consumer (callers serialize).
  bool Pop(Event* out) {
    const size_t pos = dequeue_pos.load(std::memory_order_relaxed);
    Cell& c = cells[pos & (kSize - 1)];
    const size_t seq = c.seq.load(std::memory_order_acquire);
    if (static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos + 1) < 0) return false;  // empty
    dequeue_pos.store(pos + 1, std::memory_order_relaxed);
    *out = std::move(c.event);
    c.seq.store(pos + kSize, std::memory_order_release);
    return true;
  }
};

// ---------------------------------------------------------------------------------------------
// Telemetry

namespace {
int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t AlignDown(int64_t t, int64_t step) {
  int64_t r = t % step;
  if (r < 0) r += step;
  return t - r;
}

uint64_t Delta(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

// now - before for one series (counters; the client sketch of `now` as is).
Rollup DeltaOf(const SeriesTotals& now, const SeriesTotals* before) {
  Rollup r;
  r.kind = now.kind;
  r.name = now.name;
  r.requests = Delta(now.requests, before ? before->requests : 0);
  r.errors = Delta(now.errors, before ? before->errors : 0);
  r.bytes_in = Delta(now.bytes_in, before ? before->bytes_in : 0);
  r.bytes_out = Delta(now.bytes_out, before ? before->bytes_out : 0);
  for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
    r.latency.buckets[i] = Delta(now.latency.buckets[i], before ? before->latency.buckets[i] : 0);
  }
  r.clients = now.clients;
  return r;
}

bool IsQuiet(const Rollup& r) {
  return r.requests == 0 && r.errors == 0 && r.bytes_in == 0 && r.bytes_out == 0 &&
         r.latency.Empty() && r.clients.Empty();
}

using SeriesKey = std::pair<int, std::string>;
}  // namespace

Telemetry::Telemetry(TelemetryOptions options, Source source, Clock clock)
    : options_(std::move(options)),
      source_(std::move(source)),
      clock_(clock ? std::move(clock) : Clock(SystemNowMs)),
      store_(std::make_unique<Store>(options_.store)),
      sampler_(options_.workers),
      events_(std::make_unique<EventQueue>()) {
  started_ms_ = clock_();
}

Telemetry::~Telemetry() { Stop(); }

void Telemetry::Start() {
  std::lock_guard lock(run_mu_);
  if (thread_.joinable() || stop_) return;
  Tick();  // the baseline, so that the first interval has deltas
  thread_ = std::thread([this] { Run(); });
}

void Telemetry::Stop() {
  {
    std::lock_guard lock(run_mu_);
    if (stop_) return;
    stop_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    // The interval so far and anything still queued.
    try {
      Tick();
      Drain();
    } catch (const std::exception& e) {
      log::error("telemetry: final write failed: {}", e.what());
    }
  }
}

void Telemetry::Run() {
  // Wakes on the system clock's interval boundaries (plus a little, so that the interval just
  // ended is complete) and every drain interval in between.
  int64_t next_tick = AlignDown(SystemNowMs(), options_.interval_ms) + options_.interval_ms + 5;
  std::unique_lock lock(run_mu_);
  while (!stop_) {
    const int64_t now = SystemNowMs();
    const int64_t wait =
        std::max<int64_t>(1, std::min<int64_t>(options_.drain_interval_ms, next_tick - now));
    run_cv_.wait_for(lock, std::chrono::milliseconds(wait));
    if (stop_) break;
    lock.unlock();
    try {
      Drain();
      if (SystemNowMs() >= next_tick) {
        Tick();
        next_tick = AlignDown(SystemNowMs(), options_.interval_ms) + options_.interval_ms + 5;
      }
    } catch (const std::exception& e) {
      // The disk is full, the file was removed...: keep the gateway running, say so, retry.
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      log::error("telemetry: {}", e.what());
    }
    lock.lock();
  }
}

void Telemetry::Tick() {
  std::lock_guard lock(tick_mu_);
  TickLocked(clock_());
}

void Telemetry::TickLocked(int64_t now) {
  std::vector<SeriesTotals> current = source_(/*take_clients=*/true);
  if (!have_baseline_) {
    // Counters before the first tick belong to no interval we can place; the registry starts
    // at zero with the process, so this only drops what came before telemetry started.
    have_baseline_ = true;
    last_tick_ms_ = now;
    previous_ = std::move(current);
    TickQueues(now, /*baseline=*/true);
    return;
  }
  std::map<SeriesKey, const SeriesTotals*> before;
  for (const SeriesTotals& s : previous_) before[{static_cast<int>(s.kind), s.name}] = &s;
  // The interval these deltas belong to: the one holding the middle of [last tick, now]. With
  // ticks just after each boundary that is the interval that just ended; a tick in the middle
  // of an interval (the last one at shutdown) adds to that interval's row.
  const int64_t res = static_cast<int64_t>(Resolution::k10s);
  const int64_t ts = AlignDown(last_tick_ms_ + (now - last_tick_ms_) / 2, res);
  std::vector<Rollup> rows;
  std::vector<std::string> names;
  std::vector<ClientKeyCount> keys;     // per minute: the report sums them over its period
  std::vector<RepeatCount> repeats;     // per minute, like the keys
  std::vector<CacheCount> caches;       // per minute, like the keys
  std::vector<ClientKeyCount> limited;  // per minute, like the keys
  for (const SeriesTotals& s : current) {
    for (const auto& [key, count] : s.keys)
      keys.push_back({AlignDown(ts, static_cast<int64_t>(Resolution::k1m)), s.name, key, count});
    for (const auto& [key, count] : s.limited)
      limited.push_back({AlignDown(ts, static_cast<int64_t>(Resolution::k1m)), s.name, key, count});
    if (s.kind == SeriesKind::kRoute && s.repeat_sampled != 0) {
      repeats.push_back({AlignDown(ts, static_cast<int64_t>(Resolution::k1m)), s.name,
                         s.repeat_sampled, s.repeat_repeated, s.repeat_changed});
    }
    // Cache counters are cumulative, like the route's: the minute gets the difference.
    if (s.kind == SeriesKind::kRoute && s.cache) {
      auto it = before.find({static_cast<int>(s.kind), s.name});
      const SeriesTotals* prev = it == before.end() ? nullptr : it->second;
      const CacheCounters delta = prev && prev->cache ? s.cache->Since(*prev->cache) : *s.cache;
      if (!delta.Empty()) {
        caches.push_back({AlignDown(ts, static_cast<int64_t>(Resolution::k1m)), s.name, delta});
      }
    }
  }
  for (const SeriesTotals& s : current) {
    auto it = before.find({static_cast<int>(s.kind), s.name});
    Rollup r = DeltaOf(s, it == before.end() ? nullptr : it->second);
    if (IsQuiet(r)) continue;
    r.ts_ms = ts;
    rows.push_back(std::move(r));
  }
  previous_ = std::move(current);
  last_tick_ms_ = now;
  if (!rows.empty()) {
    // Add to a row this interval may already have (several ticks in one interval).
    for (SeriesKind kind : {SeriesKind::kRoute, SeriesKind::kCluster, SeriesKind::kEndpoint,
                            SeriesKind::kSynthetic}) {
      for (Rollup& old : store_->QueryRollups(Resolution::k10s, kind, {}, ts, ts + 1)) {
        for (Rollup& r : rows) {
          if (r.kind == kind && r.name == old.name) r.Merge(old);
        }
      }
    }
    store_->WriteRollups(Resolution::k10s, rows);
    // The minute's rows, recomputed from its 10 s rows: always complete, and right after a
    // restart too.
    const int64_t minute = AlignDown(ts, static_cast<int64_t>(Resolution::k1m));
    std::vector<Rollup> minute_rows;
    for (SeriesKind kind : {SeriesKind::kRoute, SeriesKind::kCluster, SeriesKind::kEndpoint,
                            SeriesKind::kSynthetic}) {
      for (Rollup& r : store_->Totals(Resolution::k10s, kind, {}, minute, minute + 60'000)) {
        minute_rows.push_back(std::move(r));
      }
    }
    store_->WriteRollups(Resolution::k1m, minute_rows);
  }
  store_->WriteClientKeys(keys);
  if (!repeats.empty()) store_->WriteRepeats(repeats);
  store_->WriteCacheCounts(caches);
  store_->WriteLimitedKeys(limited);
  TickQueues(ts, /*baseline=*/false);
  store_->Prune(now);
}

void Telemetry::Drain() {
  std::vector<ErrorSample> samples = sampler_.Drain();
  store_->AppendErrorSamples(samples);
  std::lock_guard lock(drain_mu_);
  Event e;
  while (events_->Pop(&e)) store_->AppendEvent(e);
}

void Telemetry::RecordEvent(Event e) {
  if (e.ts_ms == 0) e.ts_ms = clock_();
  if (!events_->Push(std::move(e))) events_dropped_.fetch_add(1, std::memory_order_relaxed);
}

int64_t Telemetry::last_tick_ms() const {
  std::lock_guard lock(tick_mu_);
  return last_tick_ms_;
}

std::vector<WindowStats> Telemetry::Window(SeriesKind kind, int64_t window_ms) {
  const int64_t now = clock_();
  const int64_t from = AlignDown(now - window_ms, static_cast<int64_t>(Resolution::k10s));
  std::map<std::string, WindowStats> out;
  std::map<std::string, Hll> clients;
  bool older_data = false;
  for (const Rollup& r : store_->QueryRollups(Resolution::k10s, kind, {}, from, now + 1)) {
    WindowStats& w = out[r.name];
    w.requests += r.requests;
    w.errors += r.errors;
    w.bytes_in += r.bytes_in;
    w.bytes_out += r.bytes_out;
    w.latency.Merge(r.latency);
    clients[r.name].Merge(r.clients);
    older_data = older_data || r.ts_ms < started_ms_;
  }
  {
    // What the live counters added since the last tick.
    std::lock_guard lock(tick_mu_);
    std::map<SeriesKey, const SeriesTotals*> before;
    for (const SeriesTotals& s : previous_) before[{static_cast<int>(s.kind), s.name}] = &s;
    for (const SeriesTotals& s : source_(/*take_clients=*/false)) {
      if (s.kind != kind) continue;
      auto it = before.find({static_cast<int>(s.kind), s.name});
      Rollup d = DeltaOf(s, it == before.end() ? nullptr : it->second);
      WindowStats& w = out[s.name];
      w.requests += d.requests;
      w.errors += d.errors;
      w.bytes_in += d.bytes_in;
      w.bytes_out += d.bytes_out;
      w.latency.Merge(d.latency);
      clients[s.name].Merge(d.clients);
    }
  }
  const int64_t covered = now - (older_data ? from : std::max(from, started_ms_));
  std::vector<WindowStats> result;
  for (auto& [name, w] : out) {
    w.kind = kind;
    w.name = name;
    w.window_ms = window_ms;
    w.covered_s = std::max<int64_t>(covered, 1) / 1000.0;
    w.clients = clients[name].Estimate();
    result.push_back(std::move(w));
  }
  return result;
}

}  // namespace ficus::telemetry
