#include "upstream/internal/balancers.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "upstream/upstream.h"

namespace ficus::upstream {
namespace {

std::vector<EndpointSpec> Endpoints(std::vector<uint32_t> weights) {
  std::vector<EndpointSpec> out;
  for (size_t i = 0; i < weights.size(); ++i)
    out.push_back(
        {std::string("10.0.0.").append(std::to_string(i + 1)).append(":8080"), weights[i]});
  return out;
}

std::vector<EndpointSpec> Equal(size_t n) { return Endpoints(std::vector<uint32_t>(n, 1)); }

std::string Key(size_t i) { return std::string("user-").append(std::to_string(i)); }

PickContext WithHash(uint64_t h) {
  PickContext ctx;
  ctx.hash = h;
  return ctx;
}

// Recorded once: a change here remaps every hashed key and invalidates every affinity cookie.
constexpr uint64_t kPinnedHash = 17163709366070670933ull;
constexpr std::string_view kPinnedCookie = "ee31bebb30aff655";

// ---- HashKey ----------------------------------------------------------------------------------

TEST(HashKeyTest, DeterministicNonZeroAndSpread) {
  EXPECT_EQ(HashKey("abc"), HashKey(std::string("abc")));
  EXPECT_NE(HashKey(""), 0u);
  EXPECT_NE(HashKey("abc"), HashKey("abd"));
  EXPECT_NE(HashKey("12345678"), HashKey(std::string_view("12345678\0", 9)));  // length counts
  EXPECT_NE(HashKey("abc"), HashKey(std::string_view("abc\0", 4)));
  std::set<uint64_t> seen;
  std::array<int, 64> ones{};
  const int kKeys = 20000;
  for (int i = 0; i < kKeys; ++i) {
    uint64_t h = HashKey(Key(static_cast<size_t>(i)));
    seen.insert(h);
    for (int b = 0; b < 64; ++b) ones[static_cast<size_t>(b)] += (h >> b) & 1;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kKeys));
  for (int b = 0; b < 64; ++b) {  // every output bit is set about half the time
    EXPECT_GT(ones[static_cast<size_t>(b)], kKeys * 0.47) << "bit " << b;
    EXPECT_LT(ones[static_cast<size_t>(b)], kKeys * 0.53) << "bit " << b;
  }
}

TEST(HashKeyTest, PinnedValues) {
  // Cookies and hash placements outlive processes: this function must never change silently.
  EXPECT_EQ(HashKey("10.0.0.1:8080"), kPinnedHash);
}

// ---- factory, round robin ---------------------------------------------------------------------

TEST(BalancerFactoryTest, NamesAndEmptyClusters) {
  for (auto name : kBalancerNames) {
    EXPECT_TRUE(IsBalancerName(name));
    auto b = MakeBalancer(name, {});
    ASSERT_NE(b, nullptr) << name;
    EXPECT_EQ(b->Pick({}), kNoEndpoint) << name;
    auto one = MakeBalancer(name, Equal(1));
    EXPECT_EQ(one->Pick({}), 0u) << name;
  }
  EXPECT_FALSE(IsBalancerName("random"));
  EXPECT_EQ(MakeBalancer("random", Equal(2)), nullptr);
}

TEST(RoundRobinBalancerTest, SameSmoothSequenceAsWeightedRoundRobin) {
  for (std::vector<uint32_t> w : {std::vector<uint32_t>{5, 1, 1}, {1, 1, 1}, {3, 2, 7, 1}}) {
    WeightedRoundRobin reference(w);
    auto b = MakeBalancer("round_robin", Endpoints(w));
    for (int i = 0; i < 100; ++i) ASSERT_EQ(b->Pick({}), reference.Pick()) << i;
  }
}

TEST(RoundRobinBalancerTest, MaskedEndpointsLeaveOthersInProportion) {
  auto b = MakeBalancer("round_robin", Endpoints({5, 1, 1, 3}));
  EndpointSet excluded;
  excluded.Insert(0);
  PickContext ctx;
  ctx.excluded = excluded.mask();
  std::map<size_t, int> counts;
  for (int i = 0; i < 500; ++i) ++counts[b->Pick(ctx)];
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1], 100);
  EXPECT_EQ(counts[2], 100);
  EXPECT_EQ(counts[3], 300);
}

// ---- least_request ----------------------------------------------------------------------------

TEST(LeastRequestTest, PrefersFewerActiveRequests) {
  auto b = MakeBalancer("least_request", Equal(2));
  b->OnStart(0);
  b->OnStart(0);
  b->OnStart(1);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(b->Pick({}), 1u);  // 2 pickers: always both compared
  b->OnEnd(0, 100, true);
  b->OnEnd(0, 100, true);  // now 0 has none, 1 has one
  for (int i = 0; i < 200; ++i) ASSERT_EQ(b->Pick({}), 0u);

  // Of 4, the busy endpoint loses every comparison it takes part in.
  auto four = MakeBalancer("least_request", Equal(4));
  for (int i = 0; i < 5; ++i) four->OnStart(2);
  std::map<size_t, int> counts;
  for (int i = 0; i < 4000; ++i) ++counts[four->Pick({})];
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[0], 1100);
  EXPECT_GT(counts[1], 1100);
  EXPECT_GT(counts[3], 1100);
}

TEST(LeastRequestTest, AMaskedEndpointNeverLeavesTheBusyOneUncompared) {
  // 0 is masked (its connect failed), 2 is stuck with requests (hung): every pick compares 1
  // with 2 and takes 1. Before, 1 pick in 32 went to whichever endpoint was drawn first when
  // the draws for a second candidate all landed on the masked one.
  for (const char* name : {"least_request", "p2c_ewma"}) {
    auto b = MakeBalancer(name, Equal(3));
    for (size_t e : {1, 2}) {  // both sampled, at the same latency
      b->OnStart(e);
      b->OnEnd(e, 1000, true);
    }
    for (int i = 0; i < 20; ++i) b->OnStart(2);
    EndpointSet available;
    available.Fill(3);
    available.Erase(0);
    PickContext ctx;
    ctx.available = available.mask();
    int busy = 0;
    for (int i = 0; i < 10000; ++i) busy += b->Pick(ctx) == 2 ? 1 : 0;
    EXPECT_EQ(busy, 0) << name;
  }
}

TEST(LeastRequestTest, WeightsBiasTheChoice) {
  // Idle: traffic follows the weights.
  auto idle = MakeBalancer("least_request", Endpoints({3, 1}));
  int zero = 0;
  const int kPicks = 20000;
  for (int i = 0; i < kPicks; ++i) zero += idle->Pick({}) == 0;
  EXPECT_NEAR(zero / double{kPicks}, 0.75, 0.02);

  // Loaded: active 2 vs 1. Equal weights pick the less busy one; weight 3 vs 1 makes 2/3 < 1/1.
  for (auto [w0, expected] : {std::pair<uint32_t, size_t>{1, 1}, {3, 0}}) {
    auto b = MakeBalancer("least_request", Endpoints({w0, 1}));
    b->OnStart(0);
    b->OnStart(0);
    b->OnStart(1);
    int hits = 0;
    for (int i = 0; i < 1000; ++i) hits += b->Pick({}) == expected;
    EXPECT_GE(hits, 990) << "weight " << w0;
  }
}

// ---- p2c_ewma ---------------------------------------------------------------------------------

int64_t g_now_us = 0;
int64_t SimClock() { return g_now_us; }

// A closed-loop simulation: `concurrency` requests always in flight, endpoint latencies fixed
// (endpoint 3 is 10x slower). Returns the share of requests sent to the slow endpoint.
double SlowShare(const std::string& algorithm, int concurrency) {
  g_now_us = 1'000'000;
  BalancerOptions o;
  o.clock_us = &SimClock;
  o.seed = 7;
  auto b = MakeBalancer(algorithm, Equal(4), o);
  const uint64_t latency[] = {1000, 1000, 1000, 10'000};
  using Event = std::pair<int64_t, size_t>;  // (completion time, endpoint)
  std::priority_queue<Event, std::vector<Event>, std::greater<>> inflight;
  int slow = 0;
  const int kRequests = 40000;
  auto send = [&] {
    size_t e = b->Pick({});
    b->OnStart(e);
    slow += e == 3;
    inflight.emplace(g_now_us + static_cast<int64_t>(latency[e]), e);
  };
  for (int i = 0; i < concurrency; ++i) send();
  for (int sent = concurrency; sent < kRequests; ++sent) {
    auto [done, e] = inflight.top();
    inflight.pop();
    g_now_us = done;
    b->OnEnd(e, latency[e], true);
    send();
  }
  return slow / double{kRequests};
}

TEST(PeakEwmaTest, AvoidsASlowEndpoint) {
  for (int concurrency : {1, 8, 32}) {
    double rr = SlowShare("round_robin", concurrency);
    double ewma = SlowShare("p2c_ewma", concurrency);
    EXPECT_NEAR(rr, 0.25, 0.001) << concurrency;
    EXPECT_LT(ewma, 0.10) << concurrency;
    EXPECT_GT(ewma, 0.0) << concurrency;  // still probed
  }
}

TEST(PeakEwmaTest, OneSlowAnswerIsAvoidedAtOnceAndForgottenLater) {
  g_now_us = 0;
  BalancerOptions o;
  o.clock_us = &SimClock;
  auto b = MakeBalancer("p2c_ewma", Equal(2), o);
  for (int i = 0; i < 50; ++i) {  // 0 settles at 1 ms, 1 at 2 ms
    for (size_t e : {0u, 1u}) {
      b->OnStart(e);
      g_now_us += 1000;
      b->OnEnd(e, 1000 * (e + 1), true);
    }
  }
  for (int i = 0; i < 100; ++i) ASSERT_EQ(b->Pick({}), 0u);
  b->OnStart(0);
  g_now_us += 50'000;
  b->OnEnd(0, 50'000, true);  // one 50 ms answer: a plain 10 s EWMA would barely move (~1.25
                              // ms), the peak estimate jumps to 50 ms
  for (int i = 0; i < 100; ++i) ASSERT_EQ(b->Pick({}), 1u);
  // A failure that came back fast counts as slow too.
  b->OnStart(1);
  b->OnEnd(1, 10, false);
  EXPECT_EQ(b->Pick({}), 0u);
  // Without news, estimates decay and old verdicts expire: both are tried again.
  g_now_us += 120'000'000;
  std::set<size_t> seen;
  for (int i = 0; i < 100; ++i) {
    size_t e = b->Pick({});
    seen.insert(e);
    b->OnStart(e);
    g_now_us += 1000;
    b->OnEnd(e, 1000, true);
  }
  EXPECT_EQ(seen.size(), 2u);
}

TEST(PeakEwmaTest, UnsampledEndpointIsTriedButNotFlooded) {
  g_now_us = 0;
  BalancerOptions o;
  o.clock_us = &SimClock;
  auto b = MakeBalancer("p2c_ewma", Equal(2), o);
  b->OnStart(0);
  g_now_us += 1000;
  b->OnEnd(0, 1000, true);
  EXPECT_EQ(b->Pick({}), 1u);  // never sampled and idle: free
  b->OnStart(1);               // its first request is outstanding
  EXPECT_EQ(b->Pick({}), 0u);  // wait for its answer before sending more
}

// ---- consistent hashing -----------------------------------------------------------------------

constexpr size_t kKeys = 100'000;

std::vector<size_t> MapKeys(Balancer& b) {
  std::vector<size_t> out(kKeys);
  for (size_t i = 0; i < kKeys; ++i) out[i] = b.Pick(WithHash(HashKey(Key(i))));
  return out;
}

class HashBalancerTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HashBalancerTest, SameKeySameEndpoint) {
  auto a = MakeBalancer(GetParam(), Equal(7), {.seed = 1});
  auto b = MakeBalancer(GetParam(), Equal(7), {.seed = 99});  // another worker
  for (size_t i = 0; i < 1000; ++i) {
    auto ctx = WithHash(HashKey(Key(i)));
    size_t e = a->Pick(ctx);
    EXPECT_EQ(a->Pick(ctx), e);
    EXPECT_EQ(b->Pick(ctx), e);
  }
}

TEST_P(HashBalancerTest, SpreadsKeysByWeight) {
  for (std::vector<uint32_t> w :
       {std::vector<uint32_t>(5, 1), std::vector<uint32_t>(10, 1), {1, 2, 3, 4}, {10, 1, 1}}) {
    auto b = MakeBalancer(GetParam(), Endpoints(w));
    std::vector<int> counts(w.size());
    for (size_t e : MapKeys(*b)) ++counts[e];
    double total = 0;
    for (uint32_t x : w) total += x;
    for (size_t e = 0; e < w.size(); ++e) {
      double fair = kKeys * w[e] / total;
      EXPECT_GT(counts[e], fair * 0.8) << "endpoint " << e << " of " << w.size();
      EXPECT_LT(counts[e], fair * 1.2) << "endpoint " << e << " of " << w.size();
    }
  }
}

TEST_P(HashBalancerTest, RemovingOneEndpointMovesAboutItsShare) {
  const double limit = std::string(GetParam()) == "maglev" ? 1.3 : 1.2;
  for (size_t n : {5u, 10u}) {
    auto all = Equal(n);
    auto before = MapKeys(*MakeBalancer(GetParam(), all));
    for (size_t removed = 0; removed < n; ++removed) {
      auto rest = all;
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(removed));
      auto after = MapKeys(*MakeBalancer(GetParam(), rest));
      size_t moved = 0;
      for (size_t k = 0; k < kKeys; ++k) {
        const std::string& was = all[before[k]].id;
        const std::string& now = rest[after[k]].id;
        if (was == all[removed].id) {
          ASSERT_NE(now, was);  // its keys all move
        }
        moved += was != now;
      }
      EXPECT_LE(moved, limit * kKeys / n) << "n=" << n << " removed=" << removed;
    }
  }
}

TEST_P(HashBalancerTest, UnavailableEndpointMovesOnlyItsOwnKeys) {
  auto b = MakeBalancer(GetParam(), Equal(6));
  auto before = MapKeys(*b);
  EndpointSet available;
  available.Fill(6);
  available.Erase(4);
  std::set<size_t> heirs;
  for (size_t k = 0; k < kKeys; ++k) {
    PickContext ctx = WithHash(HashKey(Key(k)));
    ctx.available = available.mask();
    size_t e = b->Pick(ctx);
    if (before[k] == 4) {
      ASSERT_NE(e, 4u);
      heirs.insert(e);
    } else {
      ASSERT_EQ(e, before[k]);
    }
  }
  EXPECT_GE(heirs.size(), 4u);  // spread over the others, not dumped on one neighbour
}

INSTANTIATE_TEST_SUITE_P(Algorithms, HashBalancerTest, ::testing::Values("ring_hash", "maglev"));

// ---- masks, every algorithm -------------------------------------------------------------------

class AnyBalancerTest : public ::testing::TestWithParam<std::string_view> {};

TEST_P(AnyBalancerTest, RespectsExcludedAndAvailable) {
  auto b = MakeBalancer(GetParam(), Endpoints({1, 2, 1, 3, 1, 1}));
  EndpointSet excluded, available;
  excluded.Insert(1);
  excluded.Insert(4);
  available.Fill(6);
  available.Erase(5);
  std::map<size_t, int> counts;
  for (size_t i = 0; i < 3000; ++i) {
    PickContext ctx = WithHash(HashKey(Key(i)));
    ctx.excluded = excluded.mask();
    ctx.available = available.mask();
    size_t e = b->Pick(ctx);
    b->OnStart(e);
    b->OnEnd(e, 1000, true);
    ++counts[e];
  }
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_GT(counts[3], 0);

  // Everything excluded, or nothing available: the sentinel.
  PickContext none;
  EndpointSet everything;
  everything.Fill(6);
  none.excluded = everything.mask();
  EXPECT_EQ(b->Pick(none), kNoEndpoint);
  EndpointSet nothing(6);
  PickContext down;
  down.available = nothing.mask();
  EXPECT_EQ(b->Pick(down), kNoEndpoint);
}

TEST_P(AnyBalancerTest, RetriesReachEveryEndpointOnce) {
  for (size_t n : {1u, 3u, 70u}) {
    auto b = MakeBalancer(GetParam(), Equal(n));
    for (uint64_t key = 1; key < 20; ++key) {
      EndpointSet tried;
      std::set<size_t> seen;
      for (;;) {
        PickContext ctx = WithHash(HashKey(Key(key)));
        ctx.excluded = tried.mask();
        size_t e = b->Pick(ctx);
        if (e == kNoEndpoint) break;
        ASSERT_LT(e, n);
        ASSERT_TRUE(seen.insert(e).second) << "picked " << e << " twice";
        tried.Insert(e);
        b->OnStart(e);
        b->OnEnd(e, 500, false);
      }
      EXPECT_EQ(seen.size(), n);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Algorithms, AnyBalancerTest, ::testing::ValuesIn(kBalancerNames),
                         [](const auto& info) { return std::string(info.param); });

// ---- affinity ---------------------------------------------------------------------------------

TEST(AffinityTest, CookieRoundTripsAndIsStable) {
  std::vector<net::Address> addrs = {net::MakeAddress("10.0.0.1", 8080),
                                     net::MakeAddress("10.0.0.2", 8080),
                                     net::MakeAddress("::1", 9000)};
  AffinityIndex index(addrs);
  for (size_t i = 0; i < addrs.size(); ++i) {
    std::string v = AffinityCookieValue(addrs[i]);
    EXPECT_EQ(v.size(), 16u);
    EXPECT_EQ(v.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(v, AffinityCookieValue(addrs[i].ToString()));
    EXPECT_EQ(index.Find(v), i);
  }
  // Another process with the endpoints in another order (or one removed) agrees by address.
  std::vector<net::Address> reordered = {addrs[2], addrs[0]};
  AffinityIndex other(reordered);
  EXPECT_EQ(other.Find(AffinityCookieValue(addrs[0])), 1u);
  EXPECT_EQ(other.Find(AffinityCookieValue(addrs[2])), 0u);
  EXPECT_EQ(other.Find(AffinityCookieValue(addrs[1])), kNoEndpoint);
  // Garbage is no endpoint.
  EXPECT_EQ(index.Find(""), kNoEndpoint);
  EXPECT_EQ(index.Find("zzzzzzzzzzzzzzzz"), kNoEndpoint);
  std::string upper = AffinityCookieValue(addrs[0]);
  EXPECT_EQ(index.Find(upper.substr(1)), kNoEndpoint);
  // Stable across releases: pinned.
  EXPECT_EQ(AffinityCookieValue(std::string_view("10.0.0.1:8080")), kPinnedCookie);
}

}  // namespace
}  // namespace ficus::upstream
