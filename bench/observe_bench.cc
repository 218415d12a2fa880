// Micro-benchmarks for ficus::observe: Histogram::BucketFor (on every recorded request) against
// the obvious alternatives, and a scrape (RenderPrometheus) with a realistic number of series.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "observe/observe.h"

namespace {

using ficus::observe::Histogram;

// Durations as a proxy sees them: log-uniform from 1 µs to ~100 s, so branches on the decade
// are not predictable. 4096 values, looped over (L1-resident).
const std::vector<uint64_t>& Inputs() {
  static const std::vector<uint64_t> v = [] {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> exp10(0, 8);
    std::vector<uint64_t> out(4096);
    for (uint64_t& x : out) x = static_cast<uint64_t>(std::pow(10.0, exp10(rng)));
    return out;
  }();
  return v;
}

// All 91 inclusive integer bounds, padded to 128 for a branchless binary search.
const std::array<uint64_t, 128>& PaddedBounds() {
  static const std::array<uint64_t, 128> t = [] {
    std::array<uint64_t, 128> a;
    a.fill(UINT64_MAX);
    for (int i = 0; i < Histogram::kBuckets; ++i) a[i] = Histogram::UpperBoundMicros(i);
    return a;
  }();
  return t;
}

int BinarySearchBucketFor(uint64_t micros) {
  const auto& t = PaddedBounds();
  int i = 0;
  for (int step = 64; step > 0; step >>= 1) i += (t[i + step - 1] < micros) ? step : 0;
  return i;
}

int Log10BucketFor(uint64_t micros) {
  // Reference for "the obvious way": decade from log10 of a double, then a scan of the decade.
  if (micros <= 1) return 0;
  if (micros > 1'000'000'000) return Histogram::kBuckets - 1;
  int k = static_cast<int>(std::floor(std::log10(static_cast<double>(micros - 1))));
  int i = k * Histogram::kPerDecade;
  while (micros > Histogram::UpperBoundMicros(i)) ++i;
  return i;
}

// The harness alone (load an input, keep the result): subtract it from the others.
void BM_Baseline(benchmark::State& state) {
  const auto& in = Inputs();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(in[i++ & 4095]);
  }
}
BENCHMARK(BM_Baseline);

void BM_BucketFor(benchmark::State& state) {
  const auto& in = Inputs();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Histogram::BucketFor(in[i++ & 4095]));
  }
}
BENCHMARK(BM_BucketFor);

void BM_BucketForBinarySearch(benchmark::State& state) {
  const auto& in = Inputs();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(BinarySearchBucketFor(in[i++ & 4095]));
  }
}
BENCHMARK(BM_BucketForBinarySearch);

void BM_BucketForLog10(benchmark::State& state) {
  const auto& in = Inputs();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Log10BucketFor(in[i++ & 4095]));
  }
}
BENCHMARK(BM_BucketForLog10);

void BM_HistogramRecord(benchmark::State& state) {
  const auto& in = Inputs();
  Histogram h;
  size_t i = 0;
  for (auto _ : state) h.Record(in[i++ & 4095]);
  benchmark::DoNotOptimize(h.Count());
}
BENCHMARK(BM_HistogramRecord);

// The per-request cost of the client sketch in Session::Record: one register raise for the
// connection's client hash (computed once per connection). `range(0)` distinct clients: 1 (a
// keep-alive connection, the register is already up) to 4096 (every request a new client).
void BM_ClientSketchAdd(benchmark::State& state) {
  auto sketch = std::make_unique<ficus::observe::ClientSketch>();
  std::vector<uint64_t> hashes(static_cast<size_t>(state.range(0)));
  for (size_t i = 0; i < hashes.size(); ++i) {
    hashes[i] = ficus::observe::HashClient("10.1." + std::to_string(i / 256) + "." +
                                           std::to_string(i % 256));
  }
  size_t i = 0;
  for (auto _ : state) {
    sketch->Add(hashes[i]);
    i = i + 1 == hashes.size() ? 0 : i + 1;
  }
}
BENCHMARK(BM_ClientSketchAdd)->Arg(1)->Arg(4096);

void BM_HashClient(benchmark::State& state) {
  const std::string addr = "203.0.113.77";
  for (auto _ : state) benchmark::DoNotOptimize(ficus::observe::HashClient(addr));
}
BENCHMARK(BM_HashClient);

// A scrape: 50 routes and 10 clusters over 4 workers, every histogram populated.
void BM_RenderPrometheus(benchmark::State& state) {
  ficus::observe::Registry reg(4);
  for (int r = 0; r < 50; ++r) {
    auto* route = reg.Route(std::string("route_").append(std::to_string(r)));
    for (int w = 0; w < 4; ++w) {
      for (uint64_t us : Inputs()) route->Cell(w).duration.Record(us);
      route->Cell(w).requests.Add(4096);
    }
  }
  for (int c = 0; c < 10; ++c)
    reg.Cluster(std::string("cluster_").append(std::to_string(c)))->Cell(0).requests.Add();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string s = reg.RenderPrometheus();
    bytes = s.size();
    benchmark::DoNotOptimize(s);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderPrometheus);

}  // namespace
