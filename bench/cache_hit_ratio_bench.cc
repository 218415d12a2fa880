// The cache store's admission/eviction (S3-FIFO, cache/internal/store.h) against LRU at equal
// memory: hit ratio on Zipf traces (alpha 0.8 and 1.0, 100k keys of 1 KiB bodies) and on a Zipf
// trace with scans mixed in (one-hit wonders, the pattern S3-FIFO is built for), at stores of
// 1 %, 5 % and 20 % of the working set. The figures are counters (hit_ratio, lru_hit_ratio);
// the time is only the cost of replaying the trace. Nothing here is asserted.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <list>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/internal/store.h"

namespace {

using ficus::cache::Object;
using ficus::cache::Store;

constexpr size_t kKeys = 100'000;
constexpr size_t kRequests = 1'000'000;
constexpr size_t kBody = 1024;

// Zipf(alpha) over kKeys ranks by inverse CDF; scan_every > 0 inserts a run of 50 never-seen
// keys every scan_every requests.
std::vector<uint32_t> Trace(double alpha, size_t scan_every) {
  std::vector<double> cdf(kKeys);
  double sum = 0;
  for (size_t i = 0; i < kKeys; ++i)
    cdf[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), alpha);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<uint32_t> out;
  out.reserve(kRequests);
  uint32_t fresh = kKeys;
  while (out.size() < kRequests) {
    if (scan_every && out.size() % scan_every == 0) {
      for (int i = 0; i < 50; ++i) out.push_back(fresh++);
    }
    out.push_back(
        static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin()));
  }
  return out;
}

const std::shared_ptr<const std::string>& Body() {
  static const auto body = std::make_shared<const std::string>(kBody, 'x');
  return body;
}

Object* Make(const std::string& key) {
  auto* o = new Object;
  o->key = key;
  o->body = Body();
  return o;
}

// A byte-bounded LRU charging what the store charges.
class Lru {
 public:
  explicit Lru(uint64_t bytes) : cap_(bytes) {}
  bool Get(const std::string& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    order_.splice(order_.begin(), order_, it->second);
    return true;
  }
  void Put(const std::string& key, size_t charge) {
    order_.push_front({key, charge});
    map_[key] = order_.begin();
    used_ += charge;
    while (used_ > cap_) {
      used_ -= order_.back().second;
      map_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  uint64_t cap_;
  uint64_t used_ = 0;
  std::list<std::pair<std::string, size_t>> order_;
  std::unordered_map<std::string, std::list<std::pair<std::string, size_t>>::iterator> map_;
};

void HitRatio(benchmark::State& state, double alpha, size_t scan_every) {
  const std::vector<uint32_t> trace = Trace(alpha, scan_every);
  Object* probe = Make("http://h/k00000");
  const size_t charge = probe->Charge();
  probe->Unref();
  const uint64_t bytes = kKeys * charge * static_cast<uint64_t>(state.range(0)) / 100;
  uint32_t max_key = 0;
  for (uint32_t k : trace) max_key = std::max(max_key, k);
  std::vector<std::string> keys;
  for (uint32_t k = 0; k <= max_key; ++k) keys.push_back("http://h/k" + std::to_string(k));
  std::vector<ficus::http::Header> none;
  double s3_ratio = 0, lru_ratio = 0;
  for (auto _ : state) {
    Store store(bytes, bytes);
    Lru lru(bytes);
    size_t s3_hits = 0, lru_hits = 0;
    for (uint32_t k : trace) {
      const std::string& key = keys[k];
      if (Object* o = store.Lookup(key, none, nullptr)) {
        ++s3_hits;
        o->Unref();
      } else {
        store.Insert(Make(key));
      }
      if (lru.Get(key)) {
        ++lru_hits;
      } else {
        lru.Put(key, charge);
      }
    }
    s3_ratio = static_cast<double>(s3_hits) / static_cast<double>(trace.size());
    lru_ratio = static_cast<double>(lru_hits) / static_cast<double>(trace.size());
  }
  state.counters["hit_ratio"] = s3_ratio;
  state.counters["lru_hit_ratio"] = lru_ratio;
}

void BM_Zipf08(benchmark::State& s) { HitRatio(s, 0.8, 0); }
void BM_Zipf10(benchmark::State& s) { HitRatio(s, 1.0, 0); }
void BM_Zipf10WithScans(benchmark::State& s) { HitRatio(s, 1.0, 100); }
BENCHMARK(BM_Zipf08)->Arg(1)->Arg(5)->Arg(20)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Zipf10)->Arg(1)->Arg(5)->Arg(20)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Zipf10WithScans)
    ->Arg(1)
    ->Arg(5)
    ->Arg(20)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
