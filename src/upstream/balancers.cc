#include "upstream/internal/balancers.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "base/base.h"

namespace ficus::upstream {

namespace {

// Odd multipliers: the fractional parts of the golden ratio and of sqrt(3) (nothing up our
// sleeve). Each multiply spreads low bits upwards; each xor-shift folds high bits back down.
constexpr uint64_t kMulA = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kMulB = 0xBB67AE8584CAA73Bull;

constexpr uint64_t Mix(uint64_t x) {
  x ^= x >> 32;
  x *= kMulA;
  x ^= x >> 29;
  x *= kMulB;
  x ^= x >> 32;
  return x;
}

// A small PRNG (a counter through Mix): fast, good enough for picking candidates.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(Mix(seed + kMulB)) {}
  uint64_t Next() {
    state_ += kMulA;
    return Mix(state_);
  }
  // Uniform in [0, n) by the multiply-high method (no division, bias < n / 2^64).
  size_t Below(size_t n) {
    return static_cast<size_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

bool Allowed(const PickContext& ctx, size_t i) {
  return !ctx.excluded.Contains(i) && (ctx.available.empty() || ctx.available.Contains(i));
}

bool NoMasks(const PickContext& ctx) { return ctx.excluded.empty() && ctx.available.empty(); }

bool AnyAllowed(const PickContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (Allowed(ctx, i)) return true;
  return false;
}

// ---- round_robin ----------------------------------------------------------------------------

// Smooth weighted round robin (nginx): each pick adds every endpoint's weight to its credit,
// takes the endpoint with most credit and charges it the total. Over sum(weights) picks each
// endpoint is chosen `weight` times, interleaved. Masked endpoints take no part in that pick
// (they neither gain credit nor count in the total), so the others keep their proportions.
class RoundRobin final : public Balancer {
 public:
  explicit RoundRobin(std::vector<uint32_t> weights)
      : Balancer(std::move(weights)), credit_(size(), 0) {
    uniform_ =
        std::all_of(weights_.begin(), weights_.end(), [&](uint32_t w) { return w == weights_[0]; });
  }

  size_t Pick(const PickContext& ctx) override {
    const size_t n = size();
    if (n == 0) return kNoEndpoint;
    if (uniform_) {  // a plain cursor, skipping masked endpoints
      for (size_t k = 0; k < n; ++k) {
        size_t i = next_;
        next_ = (next_ + 1 == n) ? 0 : next_ + 1;
        if (Allowed(ctx, i)) return i;
      }
      return kNoEndpoint;
    }
    const bool all = NoMasks(ctx);
    size_t best = kNoEndpoint;
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!all && !Allowed(ctx, i)) continue;
      credit_[i] += weights_[i];
      total += weights_[i];
      if (best == kNoEndpoint || credit_[i] > credit_[best]) best = i;
    }
    if (best != kNoEndpoint) credit_[best] -= total;
    return best;
  }

 private:
  std::vector<int64_t> credit_;
  size_t next_ = 0;
  bool uniform_ = true;
};

// ---- power of two choices -------------------------------------------------------------------

// Why P2C: comparing two random endpoints gets almost all the benefit of scanning for the best
// one (the maximum load drops exponentially, Mitzenmacher 2001) in O(1), and because each
// worker sees only its own requests, always taking the global "best" would make all workers
// herd onto the same endpoint; the random pair keeps that from happening.
//
// Candidates are drawn in proportion to weight, so with no load (all costs tied) traffic
// follows the weights exactly; the comparison then corrects for load.
class P2CBase : public Balancer {
 protected:
  P2CBase(std::vector<uint32_t> weights, uint64_t seed)
      : Balancer(std::move(weights)), active_(size(), 0), random_(seed) {
    uniform_ =
        std::all_of(weights_.begin(), weights_.end(), [&](uint32_t w) { return w == weights_[0]; });
    uint64_t sum = 0;
    for (uint32_t w : weights_) cumulative_.push_back(sum += w);
  }

  // Subclasses: is a strictly cheaper than b right now?
  virtual bool Cheaper(size_t a, size_t b) = 0;

 public:
  size_t Pick(const PickContext& ctx) override {
    const size_t n = size();
    if (n == 0) return kNoEndpoint;
    if (n == 1) return Allowed(ctx, 0) ? 0 : kNoEndpoint;
    const bool all = NoMasks(ctx);
    // A few draws find allowed candidates unless most endpoints are masked; then scan.
    size_t a = kNoEndpoint;
    for (int k = 0; k < 4 && a == kNoEndpoint; ++k) {
      size_t i = Draw();
      if (all || Allowed(ctx, i)) a = i;
    }
    if (a == kNoEndpoint) return Scan(ctx);
    size_t b = kNoEndpoint;
    for (int k = 0; k < 4 && b == kNoEndpoint; ++k) {
      size_t i = DrawOther(a);
      if (i != a && (all || Allowed(ctx, i))) b = i;
    }
    // Masks left the draws without a second candidate (with 3 endpoints and one masked, 1 pick
    // in 16): take the next allowed one from a random point. Returning `a` unchecked sent a
    // hung endpoint every 32nd request in that case, each waiting out its per-try timeout.
    if (b == kNoEndpoint && !all) b = OtherAllowed(ctx, a);
    if (b == kNoEndpoint) return a;  // heavy weight skew: one candidate is fine
    return Cheaper(b, a) ? b : a;    // ties go to the first draw, keeping weight proportions
  }

  void OnStart(size_t endpoint) override { ++active_[endpoint]; }
  void OnEnd(size_t endpoint, uint64_t, bool) override {
    if (active_[endpoint] > 0) --active_[endpoint];
  }

 protected:
  size_t Draw() {
    if (uniform_) return random_.Below(size());
    uint64_t r = random_.Below(cumulative_.back());
    return static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), r) -
                               cumulative_.begin());
  }
  // A second candidate: distinct from `a` by construction when weights are equal; with
  // weights, a weighted draw that the caller retries when it lands on `a`.
  size_t DrawOther(size_t a) {
    if (!uniform_) return Draw();
    size_t i = random_.Below(size() - 1);
    return i >= a ? i + 1 : i;
  }
  // An allowed endpoint other than `a`, the first from a random starting point (rare path).
  size_t OtherAllowed(const PickContext& ctx, size_t a) {
    const size_t n = size();
    const size_t start = random_.Below(n);
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (start + k) % n;
      if (i != a && Allowed(ctx, i)) return i;
    }
    return kNoEndpoint;
  }
  // The cheapest allowed endpoint, from a random starting point (rare path).
  size_t Scan(const PickContext& ctx) {
    const size_t n = size();
    size_t start = random_.Below(n), best = kNoEndpoint;
    for (size_t k = 0; k < n; ++k) {
      size_t i = (start + k) % n;
      if (Allowed(ctx, i) && (best == kNoEndpoint || Cheaper(i, best))) best = i;
    }
    return best;
  }

  std::vector<uint32_t> active_;
  Random random_;

 private:
  std::vector<uint64_t> cumulative_;  // prefix sums of weights
  bool uniform_ = true;
};

// Envoy's least request: fewer active requests per unit of weight wins, so in steady state
// active requests are proportional to weight.
class LeastRequest final : public P2CBase {
 public:
  LeastRequest(std::vector<uint32_t> weights, uint64_t seed) : P2CBase(std::move(weights), seed) {}

 private:
  bool Cheaper(size_t a, size_t b) override {
    // active[a] / w[a] < active[b] / w[b], cross-multiplied.
    return uint64_t{active_[a]} * weights_[b] < uint64_t{active_[b]} * weights_[a];
  }
};

// Peak-EWMA (Finagle, Linkerd): cost = latency estimate x (active + 1).
//  - EWMA with a time constant rather than a per-sample factor, so the memory is the same
//    whether an endpoint sees 10 or 10,000 requests a second.
//  - Peak: a sample above the estimate replaces it at once. An endpoint that turns slow is
//    avoided on its first slow answer instead of after many; recovery is gradual.
//  - (active + 1) counts requests whose latency is not known yet: a stalled endpoint piles
//    up active requests and gets more expensive before any of them completes.
//  - While no samples arrive the estimate decays towards zero, so an endpoint that was slow
//    once is probed again later instead of being starved forever.
//  - An endpoint with no sample yet costs 0 while idle (try it) and a large penalty while it
//    has a request outstanding (wait for its first answer before sending it more).
class PeakEwma final : public P2CBase {
 public:
  PeakEwma(std::vector<uint32_t> weights, const BalancerOptions& o)
      : P2CBase(std::move(weights), o.seed),
        stats_(size()),
        tau_us_(static_cast<double>(std::max<int64_t>(o.ewma_tau_us, 1))),
        failure_penalty_us_(o.failure_penalty_us),
        clock_us_(o.clock_us) {}

  void Forget(size_t endpoint) override { stats_[endpoint] = Stats{}; }

  void OnEnd(size_t endpoint, uint64_t latency_us, bool ok) override {
    P2CBase::OnEnd(endpoint, latency_us, ok);
    double sample =
        static_cast<double>(ok ? latency_us : std::max(latency_us, failure_penalty_us_));
    int64_t now = Now();
    Stats& s = stats_[endpoint];
    if (!s.sampled || sample > s.ewma_us) {
      s.ewma_us = sample;
      s.sampled = true;
    } else {
      double decay =
          std::exp(-static_cast<double>(std::max<int64_t>(now - s.last_us, 0)) / tau_us_);
      s.ewma_us = sample + (s.ewma_us - sample) * decay;
    }
    s.last_us = now;
  }

 private:
  struct Stats {
    double ewma_us = 0;
    int64_t last_us = 0;
    bool sampled = false;
  };
  static constexpr double kUnknownPenalty = 1e15;  // ~31 years in us: after everything else

  int64_t Now() const { return clock_us_ ? clock_us_() : MonotonicNanos() / 1000; }

  // Both candidates' estimates decay by exp(-idle / tau) from their last sample; the ratio of
  // the two decays is exp((last_a - last_b) / tau), so the comparison needs neither the clock
  // nor a second exp: a pick costs one exp and no clock read.
  bool Cheaper(size_t a, size_t b) override {
    const Stats& x = stats_[a];
    const Stats& y = stats_[b];
    if (!x.sampled || !y.sampled) return Unsampled(a) < Unsampled(b);
    const double ca = x.ewma_us * (active_[a] + 1), cb = y.ewma_us * (active_[b] + 1);
    const double exponent =
        std::clamp(static_cast<double>(x.last_us - y.last_us) / tau_us_, -700.0, 700.0);
    return ca * std::exp(exponent) < cb;
  }
  // With an unsampled candidate: that one costs 0 idle, else a penalty beyond any real cost;
  // a sampled one costs its undecayed estimate (it only matters that it is finite).
  double Unsampled(size_t i) const {
    const Stats& s = stats_[i];
    if (s.sampled) return s.ewma_us * (active_[i] + 1);
    return active_[i] == 0 ? 0.0 : kUnknownPenalty * active_[i];
  }

  std::vector<Stats> stats_;
  double tau_us_;
  uint64_t failure_penalty_us_;
  int64_t (*clock_us_)();
};

// ---- consistent hashing ---------------------------------------------------------------------

// Both hashing balancers place endpoints by the hash of their id, never by index, so a
// cluster that loses an endpoint keeps every other endpoint's keys where they were.
// A masked endpoint's keys go to the next allowed endpoint along the ring/table (different
// keys spread over different neighbours); other keys do not move at all.
class HashBalancer : public Balancer {
 protected:
  HashBalancer(std::vector<uint32_t> weights, uint64_t seed)
      : Balancer(std::move(weights)), random_(seed) {}
  uint64_t KeyOf(const PickContext& ctx) { return ctx.hash != 0 ? ctx.hash : random_.Next(); }
  Random random_;
};

// Ketama-style ring: each endpoint owns `weight`-proportional virtual nodes at pseudo-random
// points; a key belongs to the first point at or after its hash (wrapping). Lookup is a
// binary search over a flat array of points.
class RingHash final : public HashBalancer {
 public:
  RingHash(const std::vector<EndpointSpec>& eps, std::vector<uint32_t> weights,
           const BalancerOptions& o)
      : HashBalancer(std::move(weights), o.seed) {
    const size_t n = eps.size();
    if (n == 0) return;
    // At least min_ring_size points, and at least 256 per endpoint of average weight: the
    // spread of a share shrinks as 1/sqrt(points), and with a per-endpoint floor the other
    // endpoints keep the same points when one is removed.
    const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
    const double ring = std::max<double>(static_cast<double>(o.min_ring_size), 256.0 * n);
    std::vector<std::pair<uint64_t, uint32_t>> points;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t base = HashKey(eps[i].id);
      const size_t vnodes = static_cast<size_t>(std::ceil(ring * weights_[i] / total));
      for (size_t v = 0; v < vnodes; ++v)
        points.emplace_back(Mix(base + Mix(v + 1)), static_cast<uint32_t>(i));
    }
    std::sort(points.begin(), points.end());
    for (const auto& [h, e] : points) {
      hashes_.push_back(h);
      owners_.push_back(e);
    }
  }

  size_t Pick(const PickContext& ctx) override {
    if (hashes_.empty()) return kNoEndpoint;
    const uint64_t key = KeyOf(ctx);
    size_t pos = static_cast<size_t>(std::lower_bound(hashes_.begin(), hashes_.end(), key) -
                                     hashes_.begin());
    if (pos == hashes_.size()) pos = 0;
    if (NoMasks(ctx)) return owners_[pos];
    if (!AnyAllowed(ctx, size())) return kNoEndpoint;
    for (;;) {  // terminates: some allowed endpoint owns a point
      if (Allowed(ctx, owners_[pos])) return owners_[pos];
      if (++pos == hashes_.size()) pos = 0;
    }
  }

 private:
  std::vector<uint64_t> hashes_;  // sorted ring points
  std::vector<uint32_t> owners_;  // endpoint of each point
};

// Maglev (Eisenbud et al., NSDI 2016): each endpoint walks its own permutation of the table
// (offset + j * skip mod a prime) and claims the first free slot, in turns, until the table is
// full. Lookups are one array index; every endpoint gets an almost equal number of slots
// and removing one endpoint moves little more than its own keys. Weights: in each round an
// endpoint takes a turn only while its slots are behind weight / max weight * round (as in
// Envoy), so its share of slots is proportional to its weight.
class Maglev final : public HashBalancer {
 public:
  static constexpr uint32_t kTableSize = 65537;  // prime, so every skip generates the table

  Maglev(const std::vector<EndpointSpec>& eps, std::vector<uint32_t> weights,
         const BalancerOptions& o)
      : HashBalancer(std::move(weights), o.seed) {
    const size_t n = eps.size();
    if (n == 0) return;
    std::vector<uint64_t> offset(n), skip(n), next(n, 0);
    std::vector<double> filled(n, 0);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t h = HashKey(eps[i].id);
      offset[i] = h % kTableSize;
      skip[i] = Mix(h ^ kMulB) % (kTableSize - 1) + 1;
    }
    const double max_weight = *std::max_element(weights_.begin(), weights_.end());
    table_.assign(kTableSize, UINT32_MAX);
    size_t placed = 0;
    for (uint64_t round = 1; placed < kTableSize; ++round) {
      for (size_t i = 0; i < n && placed < kTableSize; ++i) {
        if (filled[i] >= weights_[i] / max_weight * static_cast<double>(round)) continue;
        uint64_t c;
        do {
          c = (offset[i] + next[i] * skip[i]) % kTableSize;
          ++next[i];
        } while (table_[c] != UINT32_MAX);
        table_[c] = static_cast<uint32_t>(i);
        filled[i] += 1;
        ++placed;
      }
    }
  }

  size_t Pick(const PickContext& ctx) override {
    if (table_.empty()) return kNoEndpoint;
    size_t pos = static_cast<size_t>(KeyOf(ctx) % kTableSize);
    if (NoMasks(ctx)) return table_[pos];
    if (!AnyAllowed(ctx, size())) return kNoEndpoint;
    for (;;) {  // terminates: every endpoint owns slots
      if (Allowed(ctx, table_[pos])) return table_[pos];
      if (++pos == kTableSize) pos = 0;
    }
  }

 private:
  std::vector<uint32_t> table_;
};

std::string Hex16(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = kDigits[v & 15];
  return s;
}

bool ParseHex16(std::string_view s, uint64_t& out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}

}  // namespace

uint64_t HashKey(std::string_view key) {
  uint64_t h = Mix(key.size() ^ kMulB);
  const char* p = key.data();
  size_t left = key.size();
  for (; left >= 8; p += 8, left -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = Mix(h ^ w) + kMulA;
  }
  if (left > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, left);
    h = Mix(h ^ w) + kMulA;
  }
  h = Mix(h);
  return h != 0 ? h : kMulA;
}

void EndpointSet::Insert(size_t i) {
  if (i / 64 >= words_.size()) words_.resize(i / 64 + 1, 0);
  words_[i / 64] |= uint64_t{1} << (i & 63);
}

void EndpointSet::Erase(size_t i) {
  if (i / 64 < words_.size()) words_[i / 64] &= ~(uint64_t{1} << (i & 63));
}

void EndpointSet::Clear() { std::fill(words_.begin(), words_.end(), 0); }

void EndpointSet::Fill(size_t endpoints) {
  words_.assign((endpoints + 63) / 64, ~uint64_t{0});
  if (endpoints % 64 != 0) words_.back() = (uint64_t{1} << (endpoints % 64)) - 1;
}

bool IsBalancerName(std::string_view name) {
  return std::find(std::begin(kBalancerNames), std::end(kBalancerNames), name) !=
         std::end(kBalancerNames);
}

std::unique_ptr<Balancer> MakeBalancer(std::string_view name, std::vector<EndpointSpec> endpoints,
                                       const BalancerOptions& options) {
  std::vector<uint32_t> weights;
  for (const auto& e : endpoints) weights.push_back(std::max<uint32_t>(e.weight, 1));
  if (name == "round_robin") return std::make_unique<RoundRobin>(std::move(weights));
  if (name == "least_request")
    return std::make_unique<LeastRequest>(std::move(weights), options.seed);
  if (name == "p2c_ewma") return std::make_unique<PeakEwma>(std::move(weights), options);
  if (name == "ring_hash")
    return std::make_unique<RingHash>(endpoints, std::move(weights), options);
  if (name == "maglev") return std::make_unique<Maglev>(endpoints, std::move(weights), options);
  return nullptr;
}

std::string AffinityCookieValue(std::string_view endpoint_id) {
  return Hex16(HashKey(endpoint_id));
}

std::string AffinityCookieValue(const net::Address& address) {
  return AffinityCookieValue(address.ToString());
}

AffinityIndex::AffinityIndex(std::span<const std::string> endpoint_ids) {
  std::vector<uint64_t> h;
  for (const auto& id : endpoint_ids) h.push_back(HashKey(id));
  Build(std::move(h));
}

AffinityIndex::AffinityIndex(std::span<const net::Address> addresses) {
  std::vector<uint64_t> h;
  for (const auto& a : addresses) h.push_back(HashKey(a.ToString()));
  Build(std::move(h));
}

void AffinityIndex::Build(std::vector<uint64_t> hashes) {
  for (size_t i = 0; i < hashes.size(); ++i)
    sorted_.emplace_back(hashes[i], static_cast<uint32_t>(i));
  // Stable: should two ids ever collide, the first endpoint wins, the same in every worker.
  std::stable_sort(sorted_.begin(), sorted_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

size_t AffinityIndex::Find(std::string_view cookie_value) const {
  uint64_t h;
  if (!ParseHex16(cookie_value, h)) return kNoEndpoint;
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), h,
                             [](const auto& e, uint64_t v) { return e.first < v; });
  return it != sorted_.end() && it->first == h ? it->second : kNoEndpoint;
}

}  // namespace ficus::upstream
