#include "observe/observe.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "base/base.h"

namespace ficus::observe {

// ---------------------------------------------------------------------------------------------
// Histogram

uint64_t Histogram::UpperBoundMicros(int i) {
  FICUS_DCHECK(i >= 0 && i < kBuckets);
  if (i >= kBuckets - 1) return std::numeric_limits<uint64_t>::max();
  int k = i / kPerDecade;
  int j = i % kPerDecade;
  return internal::kTwiceMantissa[j] * internal::kPow10[k] / 2;
}

double Histogram::UpperBoundSeconds(int i) {
  FICUS_DCHECK(i >= 0 && i < kBuckets);
  if (i >= kBuckets - 1) return std::numeric_limits<double>::infinity();
  int k = i / kPerDecade;
  int j = i % kPerDecade;
  // One rounding step only: an integer numerator divided by a power of ten.
  return static_cast<double>(internal::kTwiceMantissa[j] * internal::kPow10[k]) / 2e6;
}

uint64_t Histogram::Count() const {
  uint64_t n = 0;
  for (const Counter& b : buckets_) n += b.Get();
  return n;
}

uint64_t HistogramTotals::Count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

void HistogramTotals::Add(const Histogram& h) {
  for (int i = 0; i < Histogram::kBuckets; ++i) buckets[i] += h.Bucket(i);
  sum_micros += h.SumMicros();
}

// ---------------------------------------------------------------------------------------------
// Registry

TrafficStats::TrafficStats(std::string n, std::string c, int workers)
    : name(std::move(n)), cluster(std::move(c)), cells(new TrafficCell[workers]()) {}

ClusterStats::ClusterStats(std::string n, int workers)
    : name(n), cells(new ClusterCell[workers]()), traffic(std::move(n), "", workers) {}

Registry::Registry(int workers) : workers_(workers) {
  FICUS_CHECK(workers >= 1 && workers <= kMaxWorkers);
}

Registry::~Registry() = default;

RouteStats* Registry::Route(std::string_view name) {
  std::lock_guard lock(mu_);
  for (RouteStats& r : routes_) {
    if (r.name == name) return &r;
  }
  routes_.emplace_back(std::string(name), std::string(), workers_);  // deque: never moves
  return &routes_.back();
}

ClusterStats* Registry::Cluster(std::string_view name) {
  std::lock_guard lock(mu_);
  for (ClusterStats& c : clusters_) {
    if (c.name == name) return &c;
  }
  clusters_.emplace_back(std::string(name), workers_);
  return &clusters_.back();
}

TrafficStats* Registry::Endpoint(std::string_view cluster, std::string_view address) {
  std::lock_guard lock(mu_);
  for (TrafficStats& e : endpoints_) {
    if (e.cluster == cluster && e.name == address) return &e;
  }
  endpoints_.emplace_back(std::string(address), std::string(cluster), workers_);
  return &endpoints_.back();
}

void Registry::SetRouteLatencyBounds(std::vector<uint64_t> micros) {
  // Only bucket edges can be counted exactly (the config reader accepts no other threshold).
  std::erase_if(micros, [](uint64_t m) { return !latency_buckets::IsEdgeMicros(m); });
  std::sort(micros.begin(), micros.end());
  micros.erase(std::unique(micros.begin(), micros.end()), micros.end());
  std::lock_guard lock(mu_);
  route_latency_bounds_ = std::move(micros);
}

void Registry::SetConfigured(std::span<const RouteStats* const> routes,
                             std::span<const ClusterStats* const> clusters,
                             std::span<const TrafficStats* const> endpoints) {
  auto listed = [](const auto* s, const auto& list) {
    return std::find(list.begin(), list.end(), s) != list.end();
  };
  std::lock_guard lock(mu_);
  for (RouteStats& r : routes_) r.configured = listed(&r, routes);
  for (ClusterStats& c : clusters_) c.traffic.configured = listed(&c, clusters);
  for (TrafficStats& e : endpoints_) e.configured = listed(&e, endpoints);
}

void Registry::AddCollector(std::function<void(MetricWriter&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

namespace {

TrafficTotals Merge(const TrafficStats& s, int workers) {
  TrafficTotals t;
  t.name = s.name;
  t.cluster = s.cluster;
  std::vector<std::pair<int, uint64_t>> codes;
  for (int w = 0; w < workers; ++w) {
    const TrafficCell& c = s.cells[w];
    t.requests += c.requests.Get();
    t.in_flight += c.in_flight.Get();
    for (int k = 0; k < 5; ++k) t.responses[k] += c.responses[k].Get();
    c.codes.ForEach([&](int code, uint64_t n) {
      for (auto& [have, count] : codes) {
        if (have == code) {
          count += n;
          return;
        }
      }
      codes.emplace_back(code, n);
    });
    t.request_bytes += c.request_bytes.Get();
    t.response_bytes += c.response_bytes.Get();
    t.duration.Add(c.duration);
    t.upstream_connect.Add(c.upstream_connect);
    t.upstream_first_byte.Add(c.upstream_first_byte);
  }
  std::sort(codes.begin(), codes.end());
  t.codes = std::move(codes);
  return t;
}

}  // namespace

MetricsSnapshot Registry::Collect() const {
  MetricsSnapshot snap;
  const int n = workers_;
  for (int w = 0; w < n; ++w) {
    const ServerCell& c = server_[w];
    ServerTotals& s = snap.server;
    s.active_connections += c.active_connections.Get();
    s.connections_accepted += c.connections_accepted.Get();
    s.connections_rejected += c.connections_rejected.Get();
    s.requests += c.requests.Get();
    for (int k = 0; k < 5; ++k) s.responses[k] += c.responses[k].Get();
    s.parse_errors += c.parse_errors.Get();
    s.head_timeouts += c.head_timeouts.Get();
    s.no_route += c.no_route.Get();
  }
  std::lock_guard lock(mu_);
  for (const RouteStats& r : routes_) {
    if (r.configured) snap.routes.push_back(Merge(r, n));
  }
  for (const ClusterStats& cs : clusters_) {
    if (!cs.traffic.configured) continue;
    ClusterTotals t;
    t.traffic = Merge(cs.traffic, n);
    for (int w = 0; w < n; ++w) {
      const ClusterCell& c = cs.cells[w];
      t.upstream_requests += c.requests.Get();
      for (int k = 0; k < 5; ++k) t.upstream_responses[k] += c.responses[k].Get();
      t.connect_failures += c.connect_failures.Get();
      t.timeouts += c.timeouts.Get();
      t.connections_opened += c.connections_opened.Get();
      t.connections_reused += c.connections_reused.Get();
      t.idle_connections += c.idle_connections.Get();
    }
    snap.clusters.push_back(std::move(t));
  }
  for (const TrafficStats& e : endpoints_) {
    if (e.configured) snap.endpoints.push_back(Merge(e, n));
  }
  return snap;
}

void Registry::ForEachRoute(const std::function<void(RouteStats&)>& f) {
  std::lock_guard lock(mu_);
  for (RouteStats& r : routes_) f(r);
}

void Registry::ForEachCluster(const std::function<void(ClusterStats&)>& f) {
  std::lock_guard lock(mu_);
  for (ClusterStats& c : clusters_) f(c);
}

void Registry::ForEachEndpoint(const std::function<void(TrafficStats&)>& f) {
  std::lock_guard lock(mu_);
  for (TrafficStats& e : endpoints_) f(e);
}

uint64_t KeySketch::HashClientKey(std::string_view key) { return HashClient(key); }

namespace {
// 16 hex digits -> *out; false on anything else.
bool ParseHex64(std::string_view hex, uint64_t* out) {
  uint64_t v = 0;
  for (char c : hex) {
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return hex.size() == 16;
}
}  // namespace

bool SyntheticKey::Set(std::string_view hex, int64_t until_ns) {
  uint64_t hi = 0, lo = 0;
  if (hex.size() != 32 || !ParseHex64(hex.substr(0, 16), &hi) || !ParseHex64(hex.substr(16), &lo))
    return false;
  until_ns_.store(0, std::memory_order_release);  // no match while the halves change
  hi_.store(hi, std::memory_order_relaxed);
  lo_.store(lo, std::memory_order_relaxed);
  until_ns_.store(until_ns, std::memory_order_release);
  return true;
}

bool SyntheticKey::Matches(std::string_view value, int64_t now_ns) const {
  if (now_ns >= until_ns_.load(std::memory_order_acquire)) return false;
  uint64_t hi = 0, lo = 0;
  const bool parsed = value.size() == 32 && ParseHex64(value.substr(0, 16), &hi) &&
                      ParseHex64(value.substr(16), &lo);
  const uint64_t diff =
      (hi ^ hi_.load(std::memory_order_relaxed)) | (lo ^ lo_.load(std::memory_order_relaxed));
  return parsed && diff == 0;
}

namespace {
constexpr uint64_t kBodyMul = 0x9fb21c651e98df25ull;
// The splitmix64 finalizer: spreads every input bit over the whole word.
inline uint64_t Finalize64(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

inline uint64_t MixWord(uint64_t acc, uint64_t word) {
  acc ^= word * kBodyMul;
  acc = std::rotl(acc, 29);
  return acc * 0xbf58476d1ce4e5b9ull;
}
}  // namespace

void BodyHasher::Update(const char* data, size_t n) {
  const uint64_t before = length_;
  length_ += n;
  if (before >= kMaxBytes) return;  // past the cap only the length counts
  n = static_cast<size_t>(std::min<uint64_t>(n, kMaxBytes - before));
  if (carry_bytes_ != 0 && n != 0) {  // complete the partial word from the previous piece
    const size_t take = std::min<size_t>(8 - carry_bytes_, n);
    uint64_t w = 0;
    std::memcpy(&w, data, take);
    carry_ |= w << (8 * carry_bytes_);
    carry_bytes_ += static_cast<uint32_t>(take);
    data += take;
    n -= take;
    if (carry_bytes_ < 8) return;
    acc_ = MixWord(acc_, carry_);
    carry_ = 0;
    carry_bytes_ = 0;
  }
  for (; n >= 8; data += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, data, 8);
    acc_ = MixWord(acc_, w);
  }
  if (n != 0) {
    carry_ = 0;
    std::memcpy(&carry_, data, n);
    carry_bytes_ = static_cast<uint32_t>(n);
  }
}

uint64_t BodyHasher::Finish() const {
  uint64_t h = acc_;
  // The partial word with its byte count, so "ab" and "ab\0" differ; then the whole length.
  if (carry_bytes_ != 0) h = MixWord(h, carry_ ^ (uint64_t{carry_bytes_} << 56));
  return Finalize64(MixWord(h, length_));
}

uint64_t HashClient(std::string_view key) {
  // FNV-1a, then the splitmix64 finalizer: FNV alone leaves the high bits (the sketch's
  // register index) poorly mixed for short, similar strings such as IP addresses.
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return Finalize64(h);
}

}  // namespace ficus::observe
