// Balancer::Pick cost per algorithm for clusters of 4, 16 and 64 equal-weight endpoints
// (upstream/internal/balancers.h). Hash-based balancers get a different precomputed key each
// pick (HashKey itself is measured separately); P2C balancers see a few requests in flight.
// A "masked" variant passes an `excluded` set with one endpoint, as a retry does.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "upstream/internal/balancers.h"

namespace {

using namespace ficus::upstream;

std::vector<EndpointSpec> Equal(int64_t n) {
  std::vector<EndpointSpec> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back({std::string("10.0.").append(std::to_string(i)).append(".1:8080"), 1});
  return out;
}

std::vector<uint64_t> Keys() {
  std::vector<uint64_t> keys(4096);
  for (size_t i = 0; i < keys.size(); ++i)
    keys[i] = HashKey(std::string("session-").append(std::to_string(i)));
  return keys;
}

void Pick(benchmark::State& state, const char* name, bool masked) {
  const int64_t n = state.range(0);
  auto b = MakeBalancer(name, Equal(n));
  for (int64_t i = 0; i < n; i += 3) b->OnStart(static_cast<size_t>(i));  // some load
  for (int64_t i = 0; i < n; ++i) {                                       // some latency
    b->OnStart(static_cast<size_t>(i));
    b->OnEnd(static_cast<size_t>(i), 1000 + 10 * static_cast<uint64_t>(i), true);
  }
  const std::vector<uint64_t> keys = Keys();
  EndpointSet tried;
  if (masked) tried.Insert(1);
  PickContext ctx;
  ctx.excluded = tried.mask();
  size_t k = 0;
  for (auto _ : state) {
    ctx.hash = keys[k++ & 4095];
    benchmark::DoNotOptimize(b->Pick(ctx));
  }
}

void RoundRobin(benchmark::State& s) { Pick(s, "round_robin", false); }
void LeastRequest(benchmark::State& s) { Pick(s, "least_request", false); }
void P2cEwma(benchmark::State& s) { Pick(s, "p2c_ewma", false); }
void RingHash(benchmark::State& s) { Pick(s, "ring_hash", false); }
void Maglev(benchmark::State& s) { Pick(s, "maglev", false); }
void RoundRobinMasked(benchmark::State& s) { Pick(s, "round_robin", true); }
void LeastRequestMasked(benchmark::State& s) { Pick(s, "least_request", true); }
void P2cEwmaMasked(benchmark::State& s) { Pick(s, "p2c_ewma", true); }
void RingHashMasked(benchmark::State& s) { Pick(s, "ring_hash", true); }
void MaglevMasked(benchmark::State& s) { Pick(s, "maglev", true); }

BENCHMARK(RoundRobin)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(LeastRequest)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(P2cEwma)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(RingHash)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(Maglev)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(RoundRobinMasked)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(LeastRequestMasked)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(P2cEwmaMasked)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(RingHashMasked)->Arg(4)->Arg(16)->Arg(64);
BENCHMARK(MaglevMasked)->Arg(4)->Arg(16)->Arg(64);

// The key hash on typical key sizes (a client IP, a session cookie, a long header value).
void HashKeyCost(benchmark::State& state) {
  std::string key(static_cast<size_t>(state.range(0)), 'k');
  for (auto _ : state) {
    benchmark::DoNotOptimize(key.data());
    benchmark::DoNotOptimize(HashKey(key));
  }
}
BENCHMARK(HashKeyCost)->Arg(12)->Arg(32)->Arg(128);

// Building the tables (reload cost).
void Build(benchmark::State& state, const char* name) {
  auto eps = Equal(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(MakeBalancer(name, eps));
}
void BuildRingHash(benchmark::State& s) { Build(s, "ring_hash"); }
void BuildMaglev(benchmark::State& s) { Build(s, "maglev"); }
BENCHMARK(BuildRingHash)->Arg(16)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BuildMaglev)->Arg(16)->Arg(64)->Unit(benchmark::kMicrosecond);

}  // namespace
