#include "load/load.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace ficus::load {
namespace {

// ---- histogram -------------------------------------------------------------------------------

TEST(HistogramTest, BucketsAreContiguousAndFine) {
  size_t n = Histogram::BucketCount();
  for (size_t i = 0; i + 1 < n; ++i) {
    ASSERT_EQ(Histogram::LowestOf(i) + Histogram::WidthOf(i), Histogram::LowestOf(i + 1)) << i;
    ASSERT_EQ(Histogram::IndexOf(Histogram::LowestOf(i)), i);
    ASSERT_EQ(Histogram::IndexOf(Histogram::LowestOf(i + 1) - 1), i);
  }
  // Relative width at most 1/128 from 1 µs up.
  for (size_t i = Histogram::IndexOf(Histogram::kMinNanos); i < n; ++i)
    ASSERT_LE(static_cast<double>(Histogram::WidthOf(i)) / Histogram::LowestOf(i), 1.0 / 128);
  EXPECT_LT(n, 5000u);  // ~32 KiB per histogram
}

// Exact percentile of sorted samples (same rank rule as Histogram::Percentile).
int64_t Exact(const std::vector<int64_t>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void ExpectPercentilesWithin(const std::vector<int64_t>& samples, double tolerance) {
  Histogram h;
  for (int64_t v : samples) h.Record(v);
  std::vector<int64_t> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  double worst = 0;
  for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999}) {
    double exact = static_cast<double>(Exact(sorted, q));
    double got = static_cast<double>(h.Percentile(q));
    EXPECT_LE(std::abs(got - exact) / exact, tolerance)
        << "q=" << q << " exact=" << exact << " got=" << got;
    worst = std::max(worst, std::abs(got - exact) / exact);
  }
  std::printf("worst relative percentile error: %.4f%%\n", worst * 100);
  EXPECT_EQ(h.max(), sorted.back());
  EXPECT_EQ(h.min(), sorted.front());
  EXPECT_EQ(h.Percentile(1.0), sorted.back());
  EXPECT_EQ(h.count(), samples.size());
}

TEST(HistogramTest, UniformWithinOnePercent) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> d(1'000, 1'000'000'000);  // 1 µs .. 1 s
  std::vector<int64_t> v(1'000'000);
  for (auto& x : v) x = d(rng);
  ExpectPercentilesWithin(v, 0.01);
}

TEST(HistogramTest, LogNormalWithinOnePercent) {
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> d(std::log(2e6), 1.0);  // median 2 ms, long tail
  std::vector<int64_t> v(1'000'000);
  for (auto& x : v) x = std::clamp<int64_t>(static_cast<int64_t>(d(rng)), 1'000, 100'000'000'000);
  ExpectPercentilesWithin(v, 0.01);
}

TEST(HistogramTest, ExponentialWithinOnePercent) {
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> d(1.0 / 5e5);  // mean 500 µs
  std::vector<int64_t> v(500'000);
  for (auto& x : v) x = std::max<int64_t>(1'000, static_cast<int64_t>(d(rng)));
  ExpectPercentilesWithin(v, 0.01);
}

TEST(HistogramTest, ClampsOutOfRange) {
  Histogram h;
  h.Record(5);                  // below 1 µs
  h.Record(1'000'000'000'000);  // 1000 s
  EXPECT_EQ(h.min(), Histogram::kMinNanos);
  EXPECT_EQ(h.max(), Histogram::kMaxNanos);
  Histogram empty;
  EXPECT_EQ(empty.Percentile(0.99), 0);
  EXPECT_EQ(empty.max(), 0);
  EXPECT_EQ(empty.mean(), 0);
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(4);
  std::uniform_int_distribution<int64_t> a(1'000, 5'000'000), b(1'000'000, 900'000'000);
  Histogram h1, h2, all;
  for (int i = 0; i < 100'000; ++i) {
    int64_t x = a(rng), y = b(rng);
    h1.Record(x);
    h2.Record(y);
    all.Record(x);
    all.Record(y);
  }
  h1.Merge(h2);
  EXPECT_EQ(h1.count(), all.count());
  EXPECT_EQ(h1.max(), all.max());
  EXPECT_EQ(h1.min(), all.min());
  EXPECT_DOUBLE_EQ(h1.mean(), all.mean());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999, 0.9999})
    EXPECT_EQ(h1.Percentile(q), all.Percentile(q));
}

TEST(StatsTest, MergeAddsCounters) {
  Stats a, b;
  a.sent = 3;
  a.status[200] = 2;
  a.errors[static_cast<size_t>(ErrorType::kTimeout)] = 1;
  b.sent = 4;
  b.status[200] = 1;
  b.status[503] = 2;
  b.corrected.Record(2'000);
  a.Merge(b);
  EXPECT_EQ(a.sent, 7u);
  EXPECT_EQ(a.status[200], 3u);
  EXPECT_EQ(a.status_at_least(400), 2u);
  EXPECT_EQ(a.error_count(), 1u);
  EXPECT_EQ(a.corrected.count(), 1u);
}

// ---- URL and durations -----------------------------------------------------------------------

TEST(UrlTest, Valid) {
  std::string e;
  auto u = ParseUrl("http://127.0.0.1:8080/a/b?x=1", &e);
  ASSERT_TRUE(u) << e;
  EXPECT_EQ(u->ip, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->host_header, "127.0.0.1:8080");
  EXPECT_EQ(u->target, "/a/b?x=1");
  u = ParseUrl("http://localhost", &e);
  ASSERT_TRUE(u) << e;
  EXPECT_EQ(u->ip, "127.0.0.1");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header, "localhost");
  u = ParseUrl("http://[::1]:9000?q", &e);
  ASSERT_TRUE(u) << e;
  EXPECT_EQ(u->ip, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->target, "/?q");
  u = ParseUrl("http://127.0.0.1/x#frag", &e);
  ASSERT_TRUE(u) << e;
  EXPECT_EQ(u->target, "/x");
}

TEST(UrlTest, Invalid) {
  for (const char* bad :
       {"https://127.0.0.1/", "127.0.0.1:80", "http://", "http://example.com/", "http://1.2.3.4:0/",
        "http://1.2.3.4:65536/", "http://1.2.3.4:/", "http://1.2.3.4:8x/", "http://[::1/",
        "http://u@1.2.3.4/", "http://1.2.3.4/a b", "http://[::1]x/"}) {
    std::string e;
    EXPECT_FALSE(ParseUrl(bad, &e)) << bad;
    EXPECT_FALSE(e.empty()) << bad;
  }
}

TEST(DurationTest, Units) {
  EXPECT_EQ(ParseDuration("10s"), 10'000'000'000);
  EXPECT_EQ(ParseDuration("1.5s"), 1'500'000'000);
  EXPECT_EQ(ParseDuration("250ms"), 250'000'000);
  EXPECT_EQ(ParseDuration("500us"), 500'000);
  EXPECT_EQ(ParseDuration("7ns"), 7);
  EXPECT_EQ(ParseDuration("2m"), 120'000'000'000);
  EXPECT_EQ(ParseDuration("1h"), 3'600'000'000'000);
  EXPECT_EQ(ParseDuration("1h30m"), 5'400'000'000'000);  // as in the config
  EXPECT_EQ(ParseDuration("1d"), 86'400'000'000'000);
  EXPECT_EQ(ParseDuration("0"), 0);
  for (const char* bad : {"", "s", "-1s", "1x", "ms", "1.2.3s", ".", "3", "90", "1.5"})
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  std::string error;
  EXPECT_FALSE(ParseDuration("90", &error));
  EXPECT_EQ(error, "'90' has no unit: write 90s or 90ms (units ns, us, ms, s, m, h, d)");
}

// ---- thresholds ------------------------------------------------------------------------------

TEST(ThresholdTest, Parse) {
  std::string e;
  auto t = ParseThreshold("p99<300ms", &e);
  ASSERT_TRUE(t) << e;
  EXPECT_EQ(t->metric, Threshold::Metric::kPercentile);
  EXPECT_DOUBLE_EQ(t->quantile, 0.99);
  EXPECT_EQ(t->op, Threshold::Op::kLess);
  EXPECT_DOUBLE_EQ(t->value, 300e6);
  t = ParseThreshold("p999 <= 1s", &e);
  ASSERT_TRUE(t) << e;
  EXPECT_DOUBLE_EQ(t->quantile, 0.999);
  EXPECT_EQ(t->op, Threshold::Op::kLessEqual);
  t = ParseThreshold("errors<1%", &e);
  ASSERT_TRUE(t) << e;
  EXPECT_EQ(t->metric, Threshold::Metric::kErrors);
  EXPECT_DOUBLE_EQ(t->value, 0.01);
  t = ParseThreshold("errors<0.05", &e);
  ASSERT_TRUE(t) << e;
  EXPECT_DOUBLE_EQ(t->value, 0.05);
  t = ParseThreshold("rate>1000", &e);
  ASSERT_TRUE(t) << e;
  EXPECT_EQ(t->metric, Threshold::Metric::kRate);
  EXPECT_EQ(t->op, Threshold::Op::kGreater);
  EXPECT_DOUBLE_EQ(t->value, 1000);
  t = ParseThreshold("p50>=2ms", &e);
  ASSERT_TRUE(t) << e;
  EXPECT_EQ(t->op, Threshold::Op::kGreaterEqual);
  ASSERT_TRUE(ParseThreshold("p90<1s", &e));
  ASSERT_TRUE(ParseThreshold("p9999<1s", &e));
  ASSERT_TRUE(ParseThreshold("max<1s", &e));
  ASSERT_TRUE(ParseThreshold("dropped<0.1%", &e));
}

TEST(ThresholdTest, ParseErrors) {
  for (const char* bad : {"p99", "<300ms", "p98<1s", "p99<300", "p99<fast", "errors<200%",
                          "errors<2", "rate>x", "rate>-1", "p99=1s", ""}) {
    std::string e;
    EXPECT_FALSE(ParseThreshold(bad, &e)) << bad;
    EXPECT_FALSE(e.empty()) << bad;
  }
}

TEST(ThresholdTest, Evaluate) {
  Summary s;
  s.achieved_rate = 1500;
  for (int i = 1; i <= 1000; ++i) s.stats.corrected.Record(i * 1'000'000);  // 1..1000 ms
  s.stats.completed = 990;
  s.stats.status[200] = 985;
  s.stats.status[500] = 5;
  s.stats.errors[static_cast<size_t>(ErrorType::kReset)] = 10;  // 15 failed of 1000
  std::string e;
  auto check = [&](const char* text) {
    auto t = ParseThreshold(text, &e);
    EXPECT_TRUE(t) << text << ": " << e;
    return Evaluate(*t, s).second;
  };
  EXPECT_TRUE(check("p99<1s"));
  EXPECT_FALSE(check("p99<900ms"));
  EXPECT_TRUE(check("p50<600ms"));
  EXPECT_FALSE(check("p50<400ms"));
  EXPECT_TRUE(check("errors<2%"));
  EXPECT_FALSE(check("errors<1%"));
  EXPECT_NEAR(Evaluate(*ParseThreshold("errors<1%", &e), s).first, 0.015, 1e-9);
  EXPECT_TRUE(check("rate>1000"));
  EXPECT_FALSE(check("rate>2000"));
  EXPECT_TRUE(check("max<=1s"));
}

// ---- the scheduler ---------------------------------------------------------------------------

TEST(SchedulerTest, IntendedTimes) {
  // One thread at 1000/s: every millisecond from the start.
  EXPECT_EQ(IntendedTime(5'000, 1000, 1, 0, 0), 5'000);
  EXPECT_EQ(IntendedTime(5'000, 1000, 1, 0, 1), 1'005'000);
  EXPECT_EQ(IntendedTime(5'000, 1000, 1, 0, 1'000'000), 1'000'000'005'000);
  // Four threads at 2000/s in total interleave every 500 µs.
  std::vector<int64_t> all;
  for (int t = 0; t < 4; ++t)
    for (uint64_t k = 0; k < 1000; ++k) all.push_back(IntendedTime(0, 2000, 4, t, k));
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<int64_t>(i) * 500'000);
  // No drift over a long run at an awkward rate: k-th time is k/rate within 1 ns.
  int64_t t = IntendedTime(0, 3, 1, 0, 3'000'000);  // 1e6 s later
  EXPECT_NEAR(static_cast<double>(t), 1e15, 1.0);
  // Number of requests due in a window equals rate * duration.
  uint64_t n = 0;
  while (IntendedTime(0, 777, 1, 0, n) < 5'000'000'000) ++n;
  EXPECT_EQ(n, 3885u);
}

TEST(SchedulerTest, ConstantProfileMatchesRate) {
  Profile p = Profile::Constant(1000, 5'000'000'000);
  EXPECT_EQ(IntendedTime(5'000, p, 1, 0, 0), 5'000);
  EXPECT_NEAR(static_cast<double>(IntendedTime(5'000, p, 1, 0, 1)), 1'005'000, 1);
  std::vector<int64_t> all;
  Profile q = Profile::Constant(2000, 1'000'000'000);
  for (int t = 0; t < 4; ++t)
    for (uint64_t k = 0; k < 500; ++k) all.push_back(IntendedTime(0, q, 4, t, k));
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_NEAR(static_cast<double>(all[i]), static_cast<double>(i) * 500'000, 1) << i;
  EXPECT_EQ(IntendedTime(0, q, 4, 0, 500), 1'000'000'000);  // past the end: the duration
  uint64_t n = 0;
  Profile r = Profile::Constant(777, 5'000'000'000);
  while (IntendedTime(0, r, 1, 0, n) < 5'000'000'000 && n < 10'000) ++n;
  EXPECT_EQ(n, 3885u);
}

// ---- profiles --------------------------------------------------------------------------------

std::vector<Segment> Segments(const std::string& text, int64_t duration_ns) {
  std::string e;
  auto p = ParseProfile(text, duration_ns, &e);
  EXPECT_TRUE(p) << text << ": " << e;
  return p ? p->segments() : std::vector<Segment>{};
}

void ExpectSegments(const std::vector<Segment>& got, const std::vector<Segment>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].duration_ns, want[i].duration_ns) << i;
    EXPECT_EQ(got[i].from, want[i].from) << i;
    EXPECT_EQ(got[i].to, want[i].to) << i;
  }
}

TEST(ProfileTest, Parse) {
  constexpr int64_t S = 1'000'000'000;
  ExpectSegments(Segments("constant:500", 10 * S), {{10 * S, 500, 500}});
  ExpectSegments(Segments("constant:2.5", S), {{S, 2.5, 2.5}});
  ExpectSegments(Segments("ramp:100..1000", 10 * S), {{10 * S, 100, 1000}});
  ExpectSegments(Segments("ramp:1000..0", 10 * S), {{10 * S, 1000, 0}});
  ExpectSegments(Segments("steps:100,200,400", 9 * S),
                 {{3 * S, 100, 100}, {3 * S, 200, 200}, {3 * S, 400, 400}});
  // Uneven: the steps still add up to the duration.
  auto steps = Segments("steps:1,2,3", 10);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].duration_ns + steps[1].duration_ns + steps[2].duration_ns, 10);
  ExpectSegments(Segments("spike:base=200,peak=2000,at=5s,for=2s", 10 * S),
                 {{5 * S, 200, 200}, {2 * S, 2000, 2000}, {3 * S, 200, 200}});
  ExpectSegments(Segments("spike:for=2s,at=0s,peak=9,base=1", 2 * S), {{2 * S, 9, 9}});
  ExpectSegments(Segments("spike:base=1,peak=9,at=500ms,for=1.5s", 2 * S),
                 {{S / 2, 1, 1}, {3 * S / 2, 9, 9}});

  std::string e;
  auto stages = ParseStages({"10s:ramp:0..500", "20s:constant:500", "5s:steps:1,2"}, &e);
  ASSERT_TRUE(stages) << e;
  EXPECT_EQ(stages->duration_ns(), 35 * S);
  ExpectSegments(stages->segments(),
                 {{10 * S, 0, 500}, {20 * S, 500, 500}, {S * 5 / 2, 1, 1}, {S * 5 / 2, 2, 2}});
  EXPECT_NEAR(stages->total(), 2500 + 10000 + 2.5 + 5, 1e-6);
}

TEST(ProfileTest, ParseErrors) {
  constexpr int64_t S = 1'000'000'000;
  for (const char* bad : {"",
                          "constant",
                          "constant:",
                          "constant:abc",
                          "constant:-5",
                          "constant:5x",
                          "constant:inf",
                          "constant:nan",
                          "ramp:100",
                          "ramp:..5",
                          "ramp:1..",
                          "ramp:1...5",
                          "ramp:a..b",
                          "steps:",
                          "steps:1,,2",
                          "steps:1,2,",
                          "spike:base=1,peak=2,at=1s",
                          "spike:base=1,peak=2,at=9s,for=2s",
                          "spike:base=1,peak=2,at=1s,for=0s",
                          "spike:base=1,peak=2,at=1s,for=1s,x=3",
                          "spike:base=x,peak=2,at=1s,for=1s",
                          "spike:base=1,peak=2,at=soon,for=1s",
                          "spike:base",
                          "wave:1..2",
                          "500"}) {
    std::string e;
    EXPECT_FALSE(ParseProfile(bad, 10 * S, &e)) << bad;
    EXPECT_NE(e.find("profile '"), std::string::npos) << bad << ": " << e;
  }
  for (std::vector<std::string> bad :
       std::vector<std::vector<std::string>>{{},
                                             {"constant:5"},
                                             {"10s"},
                                             {"0s:constant:5"},
                                             {"xs:constant:5"},
                                             {"10s:constant:5", "5s:ramp:1"}}) {
    std::string e;
    EXPECT_FALSE(ParseStages(bad, &e));
    EXPECT_FALSE(e.empty());
  }
}

// Every request's intended time is where the integral of the rate reaches its index, and the
// number of requests intended before any time t is the integral at t (within 1 request).
void ExpectFollowsIntegral(const Profile& p, int threads) {
  std::vector<int64_t> times;
  for (int t = 0; t < threads; ++t) {
    for (uint64_t k = 0; k < 10'000'000; ++k) {
      int64_t at = IntendedTime(0, p, threads, t, k);
      if (at >= p.duration_ns()) break;
      times.push_back(at);
    }
  }
  std::sort(times.begin(), times.end());
  EXPECT_NEAR(static_cast<double>(times.size()), p.total(), 1.0);
  for (size_t n = 0; n < times.size(); ++n) {
    // At its own time, request n is the (n+1)-th: the integral there is n (rounding: < 1e-6).
    ASSERT_NEAR(p.CountAt(times[n]), static_cast<double>(n), 1e-3) << n;
    ASSERT_GE(times[n], n ? times[n - 1] : 0) << n;
  }
  for (int64_t t = 0; t <= p.duration_ns(); t += p.duration_ns() / 997) {
    double due =
        static_cast<double>(std::lower_bound(times.begin(), times.end(), t) - times.begin());
    ASSERT_NEAR(due, p.CountAt(t), 1.0) << "t=" << t;
  }
}

TEST(ProfileTest, SendTimesFollowTheIntegral) {
  constexpr int64_t S = 1'000'000'000;
  std::string e;
  for (const char* text :
       {"constant:777", "ramp:100..1000", "ramp:0..500", "ramp:1000..0", "ramp:300..300",
        "steps:100,200,400,0,50", "spike:base=300,peak=1500,at=2s,for=2s"}) {
    SCOPED_TRACE(text);
    auto p = ParseProfile(text, 6 * S, &e);
    ASSERT_TRUE(p) << e;
    ExpectFollowsIntegral(*p, 1);
    ExpectFollowsIntegral(*p, 3);
  }
  auto stages = ParseStages({"2s:ramp:0..500", "1s:constant:0", "3s:constant:500",
                             "2s:spike:base=10,peak=900,at=1s,for=0.5s", "1s:ramp:400..0"},
                            &e);
  ASSERT_TRUE(stages) << e;
  ExpectFollowsIntegral(*stages, 2);
}

TEST(ProfileTest, RampTimesAreAnalytic) {
  constexpr int64_t S = 1'000'000'000;
  std::string e;
  // r(t) = 100 + 90 t over 10 s: n = 100 t + 45 t^2.
  auto p = ParseProfile("ramp:100..1000", 10 * S, &e);
  ASSERT_TRUE(p);
  EXPECT_NEAR(p->total(), 5500, 1e-9);
  for (double t : {0.5, 1.0, 3.25, 9.999}) {
    double n = 100 * t + 45 * t * t;
    auto k = static_cast<uint64_t>(std::ceil(n));
    double expect = (-100 + std::sqrt(100.0 * 100 + 4 * 45 * static_cast<double>(k))) / 90;
    EXPECT_NEAR(static_cast<double>(p->TimeOf(k)) / 1e9, expect, 1e-9) << t;
  }
  // From 0: n = 25 t^2 (r = 50 t): request 100 at exactly 2 s.
  auto q = ParseProfile("ramp:0..500", 10 * S, &e);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->TimeOf(0), 0);
  EXPECT_NEAR(static_cast<double>(q->TimeOf(100)), 2e9, 1);
  EXPECT_NEAR(static_cast<double>(q->TimeOf(2499)), std::sqrt(2499 / 25.0) * 1e9, 2);
  EXPECT_EQ(q->TimeOf(2500), 10 * S);
  // A spike: the first peak request is at its start, the first one after at its end.
  auto s = ParseProfile("spike:base=300,peak=1500,at=2s,for=2s", 6 * S, &e);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->TimeOf(600), 2 * S);
  EXPECT_EQ(s->TimeOf(3600), 4 * S);
  EXPECT_NEAR(static_cast<double>(s->TimeOf(601)), 2e9 + 1e9 / 1500, 1);
  EXPECT_NEAR(s->total(), 4200, 1e-9);
  EXPECT_DOUBLE_EQ(s->RateAt(1'999'999'999), 300);
  EXPECT_DOUBLE_EQ(s->RateAt(2 * S), 1500);
  EXPECT_DOUBLE_EQ(s->peak_rate(), 1500);
  EXPECT_FALSE(s->constant());
  EXPECT_TRUE(Profile::Constant(5, S).constant());
  // A zero-rate stage sends nothing: the next request waits for the stage after it.
  auto z = ParseStages({"1s:constant:10", "1s:constant:0", "1s:constant:10"}, &e);
  ASSERT_TRUE(z);
  EXPECT_NEAR(static_cast<double>(z->TimeOf(9)), 0.9e9, 1);
  EXPECT_EQ(z->TimeOf(10), 2 * S);
}

// ---- reports ---------------------------------------------------------------------------------

TEST(ReportTest, TextAndJsonMentionEverything) {
  Summary s;
  s.target_rate = 100;
  s.achieved_rate = 99.5;
  s.elapsed_s = 2;
  s.stats.sent = 199;
  s.stats.completed = 199;
  s.stats.dropped = 1;
  s.stats.status[200] = 199;
  s.stats.corrected.Record(3'000'000);
  s.stats.uncorrected.Record(1'000'000);
  s.stats.succeeded.Record(2'000'000);
  std::string e;
  std::vector<Threshold> ts{*ParseThreshold("p99<1ms", &e)};
  std::string text = FormatText(s, ts);
  EXPECT_NE(text.find("corrected"), std::string::npos);
  EXPECT_NE(text.find("uncorrected"), std::string::npos);
  EXPECT_NE(text.find("200=199"), std::string::npos);
  EXPECT_NE(text.find("1 dropped"), std::string::npos);
  EXPECT_NE(text.find("FAILED"), std::string::npos);
  std::string json = FormatJson(s, ts);
  EXPECT_NE(json.find("\"dropped\":1"), std::string::npos);
  EXPECT_NE(json.find("\"200\":199"), std::string::npos);
  EXPECT_NE(json.find("\"ok\":false"), std::string::npos);
  EXPECT_NE(json.find("\"p99.99\":"), std::string::npos);
  // The successes' own latency, apart from the fast refusals of a shedding server.
  EXPECT_NE(json.find("\"succeeded\":{\"p50\":2."), std::string::npos) << json;
  EXPECT_NE(json.find("\"per_second\":[]"), std::string::npos);
  s.per_second = {{100, 99, 98, 1, 2'500'000, 7'000'000}, {100.5, 100}};
  s.profile = "constant:100";
  json = FormatJson(s, ts);
  EXPECT_NE(json.find("\"per_second\":[{\"t\":0,\"target\":100.000,\"achieved\":99,"
                      "\"completed\":98,\"errors\":1,\"p50_ms\":2.500000,\"p99_ms\":7.000000},"
                      "{\"t\":1,\"target\":100.500,\"achieved\":100,\"completed\":0,"
                      "\"errors\":0,\"p50_ms\":0.000000,\"p99_ms\":0.000000}]"),
            std::string::npos)
      << json;
  text = FormatText(s, ts);
  EXPECT_NE(text.find("99/100 100/100"), std::string::npos) << text;
  EXPECT_NE(text.find("constant:100"), std::string::npos) << text;
}

}  // namespace
}  // namespace ficus::load
