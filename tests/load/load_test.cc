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
  EXPECT_EQ(ParseDuration("3"), 3'000'000'000);
  for (const char* bad : {"", "s", "-1s", "1x", "ms", "1.2.3s", "."})
    EXPECT_FALSE(ParseDuration(bad)) << bad;
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
}

}  // namespace
}  // namespace ficus::load
