#include "telemetry/telemetry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

namespace ficus::telemetry {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ficus-telemetry-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

LatencyHistogram HistOf(std::initializer_list<uint64_t> micros) {
  LatencyHistogram h;
  for (uint64_t m : micros) ++h.buckets[observe::Histogram::BucketFor(m)];
  return h;
}

// ---- histograms ------------------------------------------------------------------------------

TEST(LatencyHistogram, EncodeDecodeRoundTripsAndIsCompact) {
  LatencyHistogram h = HistOf({1, 3, 900, 1000, 1500, 250'000, 2'000'000'000});
  h.buckets[7] = 1ull << 40;
  std::string bytes = h.Encode();
  EXPECT_LT(bytes.size(), 30u);
  auto back = LatencyHistogram::Decode(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->buckets, h.buckets);
  EXPECT_EQ(LatencyHistogram().Encode(), "");
  EXPECT_TRUE(LatencyHistogram::Decode("")->Empty());
}

TEST(LatencyHistogram, DecodeRejectsWhatEncodeCannotProduce) {
  EXPECT_FALSE(LatencyHistogram::Decode(std::string("\x80", 1)));      // truncated varint
  EXPECT_FALSE(LatencyHistogram::Decode(std::string("\x00", 1)));      // gap without count
  EXPECT_FALSE(LatencyHistogram::Decode(std::string("\x00\x00", 2)));  // zero count
  EXPECT_FALSE(LatencyHistogram::Decode(std::string("\x5b\x01", 2)));  // bucket 91
  EXPECT_FALSE(LatencyHistogram::Decode(std::string(11, '\xff')));     // > 64 bits
}

TEST(LatencyHistogram, MergeAddsAndPercentilesStayInTheirBucket) {
  // 1000 values 1..1000 ms, split over two histograms and merged.
  LatencyHistogram a, b;
  for (uint64_t ms = 1; ms <= 1000; ++ms) {
    ++(ms % 2 ? a : b).buckets[observe::Histogram::BucketFor(ms * 1000)];
  }
  a.Merge(b);
  EXPECT_EQ(a.Count(), 1000u);
  for (double q : {0.5, 0.9, 0.99}) {
    const double truth = q * 1000 * 1000;  // µs
    const double got = a.PercentileMicros(q);
    const int bucket = observe::Histogram::BucketFor(static_cast<uint64_t>(truth));
    const double lo = bucket ? observe::Histogram::UpperBoundSeconds(bucket - 1) * 1e6 : 0;
    const double hi = observe::Histogram::UpperBoundSeconds(bucket) * 1e6;
    EXPECT_GE(got, lo) << q;
    EXPECT_LE(got, hi) << q;
    // Interpolation inside the bucket: uniform data lands close to the truth.
    EXPECT_NEAR(got, truth, truth * 0.05) << q;
  }
  EXPECT_EQ(LatencyHistogram().PercentileMicros(0.99), 0);
  // Everything in one bucket: p100 is the bucket's upper bound.
  EXPECT_DOUBLE_EQ(HistOf({4000, 4000}).PercentileMicros(1.0), 4000);
}

// Known distributions: the report's percentiles interpolate within the bucket holding the
// rank, so they land near the true quantile, much nearer than the bucket's upper bound would.
void ExpectPercentiles(const LatencyHistogram& h,
                       std::initializer_list<std::pair<double, double>> quantile_truth,
                       double tolerance) {
  for (const auto& [q, truth] : quantile_truth) {
    const double got = h.PercentileMicros(q);
    const int bucket = observe::Histogram::BucketFor(static_cast<uint64_t>(truth));
    const double upper = observe::Histogram::UpperBoundSeconds(bucket) * 1e6;
    EXPECT_NEAR(got, truth, truth * tolerance) << "q=" << q;
    if (upper != truth) {
      EXPECT_LT(std::abs(got - truth), std::abs(upper - truth)) << "q=" << q;
    }
  }
}

TEST(LatencyHistogram, PercentilesOfAnExponentialDistribution) {
  // 20000 values at the midpoints of equal-probability slices of Exp(mean 50 ms): quantile q
  // is -50 ms * ln(1 - q). The density falls by up to e^-1 across a bucket, so linear
  // interpolation is within 8 % (the upper bound was off by up to 30 %).
  constexpr int kN = 20000;
  LatencyHistogram h;
  for (int i = 0; i < kN; ++i) {
    const double us = -50'000 * std::log(1 - (i + 0.5) / kN);
    ++h.buckets[observe::Histogram::BucketFor(static_cast<uint64_t>(us))];
  }
  auto truth = [](double q) { return -50'000 * std::log(1 - q); };
  ExpectPercentiles(
      h, {{0.5, truth(0.5)}, {0.9, truth(0.9)}, {0.99, truth(0.99)}, {0.999, truth(0.999)}}, 0.08);
}

TEST(LatencyHistogram, PercentilesOfABimodalDistribution) {
  // 90 % uniform over 1..10 ms, 10 % uniform over 1..2 s (a slow path): uniform within each
  // bucket, so interpolation is exact to the rank's granularity.
  LatencyHistogram h;
  for (int i = 0; i < 18000; ++i) {
    ++h.buckets[observe::Histogram::BucketFor(
        static_cast<uint64_t>(1000 + 9000 * (i + 0.5) / 18000))];
  }
  for (int i = 0; i < 2000; ++i) {
    ++h.buckets[observe::Histogram::BucketFor(static_cast<uint64_t>(1e6 + 1e6 * (i + 0.5) / 2000))];
  }
  ExpectPercentiles(h, {{0.5, 1000 + 9000 * (0.5 / 0.9)}, {0.95, 1.5e6}, {0.99, 1.9e6}}, 0.001);
  // p90 is the last fast request: the edge of the fast mode, never inside the gap.
  EXPECT_NEAR(h.PercentileMicros(0.9), 10'000, 1);
}

TEST(LatencyHistogram, CountAtOrBelowIsExactAtBucketEdges) {
  LatencyHistogram h = HistOf({100, 299'999, 300'000, 300'001, 5'000'000, 2'000'000'000});
  EXPECT_EQ(h.CountAtOrBelow(300'000), 3u);  // 300 ms is an edge
  EXPECT_EQ(h.CountAtOrBelow(399'999), 3u);  // inside (300, 400] ms: only whole buckets
  EXPECT_EQ(h.CountAtOrBelow(400'000), 4u);
  EXPECT_EQ(h.CountAtOrBelow(0), 0u);
  EXPECT_EQ(h.CountAtOrBelow(UINT64_MAX), 5u);  // the overflow bucket has no upper bound
}

// ---- HyperLogLog ----------------------------------------------------------------------------

TEST(Hll, EstimatesDistinctCountsWithinThreeStandardErrors) {
  for (int n : {10, 100, 1000, 20'000, 200'000}) {
    Hll h;
    for (int i = 0; i < n; ++i) {
      h.AddHash(observe::HashClient("10.0." + std::to_string(i / 256) + "." +
                                    std::to_string(i % 256) + ":" + std::to_string(i)));
    }
    const double err = std::abs(h.Estimate() - n) / n;
    EXPECT_LT(err, 3 * 1.04 / std::sqrt(1024.0)) << n << " -> " << h.Estimate();
  }
}

TEST(Hll, DuplicatesDoNotCountAndMergeIsTheUnion) {
  Hll a, b, all;
  for (int i = 0; i < 5000; ++i) {
    const uint64_t hash = observe::HashClient("client-" + std::to_string(i));
    (i < 3000 ? a : b).AddHash(hash);
    all.AddHash(hash);
    all.AddHash(hash);  // twice: no effect
  }
  for (int i = 2000; i < 3000; ++i) b.AddHash(observe::HashClient("client-" + std::to_string(i)));
  a.Merge(b);
  EXPECT_EQ(a.registers, all.registers);  // merging is exact
  EXPECT_NEAR(a.Estimate(), 5000, 5000 * 0.1);
}

TEST(Hll, SparseAndDenseEncodingsRoundTrip) {
  Hll few;
  for (int i = 0; i < 20; ++i) few.AddHash(observe::HashClient(std::to_string(i)));
  std::string s = few.Encode();
  EXPECT_EQ(s[0], 'S');
  EXPECT_LT(s.size(), 70u);
  EXPECT_EQ(Hll::Decode(s)->registers, few.registers);
  Hll many;
  for (int i = 0; i < 100'000; ++i) many.AddHash(observe::HashClient(std::to_string(i)));
  std::string d = many.Encode();
  EXPECT_EQ(d[0], 'D');
  EXPECT_EQ(d.size(), 1025u);
  EXPECT_EQ(Hll::Decode(d)->registers, many.registers);
  EXPECT_FALSE(Hll::Decode(""));
  EXPECT_FALSE(Hll::Decode("X"));
  EXPECT_FALSE(Hll::Decode(std::string("S\x00", 2)));          // gap without rank
  EXPECT_FALSE(Hll::Decode(std::string("S\x00\x00", 3)));      // rank 0
  EXPECT_FALSE(Hll::Decode(std::string("S\x00\x40", 3)));      // rank 64 > 55
  EXPECT_FALSE(Hll::Decode(std::string("S\x80\x08\x01", 4)));  // index 1024
  EXPECT_FALSE(Hll::Decode("D" + std::string(1023, '\x01')));
  EXPECT_TRUE(Hll::Decode("S")->Empty());
}

TEST(Hll, MatchesTheWorkersClientSketch) {
  // The observe cell and the store's sketch agree register by register.
  auto sketch = std::make_unique<observe::ClientSketch>();
  Hll h;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t hash = observe::HashClient("192.168.1." + std::to_string(i));
    sketch->Add(hash);
    h.AddHash(hash);
  }
  for (int i = 0; i < Hll::kRegisters; ++i) EXPECT_EQ(sketch->Take(i), h.registers[i]);
  EXPECT_EQ(sketch->Register(5), 0);
}

// ---- the store ----------------------------------------------------------------------------

Rollup Row(std::string name, int64_t ts, uint64_t requests, uint64_t errors = 0) {
  Rollup r;
  r.name = std::move(name);
  r.ts_ms = ts;
  r.requests = requests;
  r.errors = errors;
  r.bytes_out = requests * 100;
  r.latency = HistOf({1000, 2000});
  r.clients.AddHash(observe::HashClient(r.name));
  return r;
}

TEST(Store, RollupsQueryAndMergePerSeries) {
  TempDir dir;
  Store store(StoreOptions{.path = dir.File("t.db")});
  store.WriteRollups(Resolution::k10s,
                     {Row("api", 0, 5, 1), Row("web", 0, 7), Row("api", 10'000, 3)});
  Rollup c = Row("shop", 0, 9);
  c.kind = SeriesKind::kCluster;
  store.WriteRollups(Resolution::k10s, {c});
  auto rows = store.QueryRollups(Resolution::k10s, SeriesKind::kRoute, {}, 0, 20'000);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].name, "api");
  EXPECT_EQ(rows[2].ts_ms, 10'000);
  EXPECT_EQ(store.QueryRollups(Resolution::k10s, SeriesKind::kRoute, {"web"}, 0, 20'000).size(),
            1u);
  EXPECT_TRUE(store.QueryRollups(Resolution::k1m, SeriesKind::kRoute, {}, 0, 20'000).empty());
  auto totals = store.Totals(Resolution::k10s, SeriesKind::kRoute, {"api"}, 0, 20'000);
  ASSERT_EQ(totals.size(), 1u);
  EXPECT_EQ(totals[0].requests, 8u);
  EXPECT_EQ(totals[0].errors, 1u);
  EXPECT_EQ(totals[0].latency.Count(), 4u);
  EXPECT_NEAR(totals[0].clients.Estimate(), 1, 0.01);
  auto clusters = store.Totals(Resolution::k10s, SeriesKind::kCluster, {}, 0, 20'000);
  ASSERT_EQ(clusters.size(), 1u);
  EXPECT_EQ(clusters[0].requests, 9u);
  // Per period (here 20 s: both api rows in one period).
  auto periods = store.Periods(Resolution::k10s, SeriesKind::kRoute, {}, 0, 20'000, 20'000);
  ASSERT_EQ(periods.size(), 2u);
  EXPECT_EQ(periods[0].name, "api");
  EXPECT_EQ(periods[0].requests, 8u);
  EXPECT_EQ(periods[1].name, "web");
  periods = store.Periods(Resolution::k10s, SeriesKind::kRoute, {"api"}, 0, 20'000, 10'000);
  ASSERT_EQ(periods.size(), 2u);
  EXPECT_EQ(periods[1].ts_ms, 10'000);
  EXPECT_EQ(periods[1].requests, 3u);
  // The same key again replaces.
  store.WriteRollups(Resolution::k10s, {Row("web", 0, 1)});
  EXPECT_EQ(store.Totals(Resolution::k10s, SeriesKind::kRoute, {"web"}, 0, 1)[0].requests, 1u);
}

TEST(Store, EventsErrorSamplesAndAudit) {
  TempDir dir;
  Store store(
      StoreOptions{.path = dir.File("t.db"), .error_samples_per_route = 3, .max_events = 5});
  for (int i = 0; i < 8; ++i) {
    store.AppendEvent(
        {0, 1000 + i, i % 2 ? "deploy" : "config_reload", "shop", "v" + std::to_string(i), ""});
  }
  auto events = store.Events(0, INT64_MAX, "", 100);
  ASSERT_EQ(events.size(), 5u);  // max_events keeps the newest
  EXPECT_EQ(events[0].version, "v7");
  auto deploys = store.Events(1000, 1006, "deploy", 100);
  ASSERT_EQ(deploys.size(), 2u);  // v5 and v3 (v1 was trimmed, v7 is at 1007)
  EXPECT_EQ(deploys[0].version, "v5");

  std::vector<ErrorSample> samples;
  for (int i = 0; i < 5; ++i) samples.push_back({0, i, "api", 500 + i, "id", "GET", "HTTP"});
  samples.push_back({0, 9, "web", 502, "id", "GET", "HTTP"});
  store.AppendErrorSamples(samples);
  auto api = store.ErrorSamples("api", 100);
  ASSERT_EQ(api.size(), 3u);
  EXPECT_EQ(api[0].status, 504);
  EXPECT_EQ(store.ErrorSamples("", 100).size(), 4u);

  store.AppendAudit({0, 5, "token", "127.0.0.1", "POST /events", "ok", "{}"});
  auto audit = store.Audit(10);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "POST /events");
}

TEST(Store, CopyIsAConsistentBackupAndRestore) {
  TempDir dir;
  Store store(StoreOptions{.path = dir.File("live.db")});
  store.AppendEvent({0, 1, "deploy", "shop", "v1", "first"});
  Store::Copy(dir.File("live.db"), dir.File("backup.db"));
  store.AppendEvent({0, 2, "deploy", "shop", "v2", "after the backup"});
  EXPECT_EQ(store.Events(0, INT64_MAX, "", 10).size(), 2u);
  // Restore into the live database while the store has it open.
  Store::Copy(dir.File("backup.db"), dir.File("live.db"));
  auto events = store.Events(0, INT64_MAX, "", 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].version, "v1");
  // Not a store: refused, nothing overwritten.
  {
    std::FILE* f = std::fopen(dir.File("junk.db").c_str(), "w");
    std::fputs("junk", f);
    std::fclose(f);
  }
  EXPECT_THROW(Store::Copy(dir.File("junk.db"), dir.File("live.db")), std::runtime_error);
  EXPECT_EQ(store.Events(0, INT64_MAX, "", 10).size(), 1u);
}

// ---- the telemetry thread's work, with a synthetic source and a fake clock ----------------

constexpr int64_t kBase = 1'699'999'980'000;  // a whole minute (28333333 x 60 s)

// Cumulative totals for two routes and a cluster that the test advances.
struct Synthetic {
  std::vector<SeriesTotals> totals;
  uint64_t next_client = 0;
  Synthetic() {
    totals.resize(3);
    totals[0].name = "api";
    totals[1].name = "web";
    totals[2].kind = SeriesKind::kCluster;
    totals[2].name = "shop";
  }
  // `n` requests on route i (and the cluster), `errors` of them 5xx, each from a new client.
  void Add(int i, uint64_t n, uint64_t errors, uint64_t micros) {
    for (SeriesTotals* s : {&totals[i], &totals[2]}) {
      s->requests += n;
      s->errors += errors;
      s->bytes_out += n * 1000;
      s->latency.buckets[observe::Histogram::BucketFor(micros)] += n;
    }
    for (uint64_t k = 0; k < std::min<uint64_t>(n, 50); ++k) {
      totals[i].clients.AddHash(observe::HashClient("c" + std::to_string(next_client++)));
    }
  }
  Telemetry::Source source() {
    return [this](bool take) {
      std::vector<SeriesTotals> out = totals;
      if (take) {
        for (SeriesTotals& s : totals) s.clients = Hll();
      }
      return out;
    };
  }
};

TEST(Telemetry, TicksWriteDeltasAsTenSecondAndMinuteRollups) {
  TempDir dir;
  Synthetic syn;
  int64_t now = kBase;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  Telemetry t(opt, syn.source(), [&] { return now; });
  syn.Add(0, 1000, 0, 500);  // before the baseline: not placed
  t.Tick();                  // baseline
  for (int i = 0; i < 6; ++i) {
    syn.Add(0, 100, 5, 2000);
    syn.Add(1, 10, 0, 50'000);
    now += 10'000;
    t.Tick();
  }
  auto fine = t.store().QueryRollups(Resolution::k10s, SeriesKind::kRoute, {"api"}, 0, INT64_MAX);
  ASSERT_EQ(fine.size(), 6u);
  EXPECT_EQ(fine[0].ts_ms, kBase);
  EXPECT_EQ(fine[5].ts_ms, kBase + 50'000);
  for (const Rollup& r : fine) {
    EXPECT_EQ(r.requests, 100u);
    EXPECT_EQ(r.errors, 5u);
    EXPECT_EQ(r.latency.Count(), 100u);
    EXPECT_NEAR(r.clients.Estimate(), 50, 3);
  }
  auto minute = t.store().QueryRollups(Resolution::k1m, SeriesKind::kRoute, {}, 0, INT64_MAX);
  ASSERT_EQ(minute.size(), 2u);  // api and web, one minute each
  EXPECT_EQ(minute[0].requests, 600u);
  EXPECT_EQ(minute[0].errors, 30u);
  EXPECT_NEAR(minute[0].clients.Estimate(), 300, 300 * 0.1);  // merged over the minute
  EXPECT_EQ(minute[1].requests, 60u);
  EXPECT_NEAR(minute[1].latency.PercentileMicros(0.5), 50'000, 10'000);
  auto cluster = t.store().QueryRollups(Resolution::k1m, SeriesKind::kCluster, {}, 0, INT64_MAX);
  ASSERT_EQ(cluster.size(), 1u);
  EXPECT_EQ(cluster[0].requests, 660u);

  // A quiet interval writes nothing; a tick in mid-interval adds to that interval's row.
  now += 10'000;
  t.Tick();
  syn.Add(0, 7, 0, 2000);
  now += 3'000;
  t.Tick();
  syn.Add(0, 4, 0, 2000);
  now += 3'000;
  t.Tick();
  fine = t.store().QueryRollups(Resolution::k10s, SeriesKind::kRoute, {"api"}, 0, INT64_MAX);
  ASSERT_EQ(fine.size(), 7u);
  EXPECT_EQ(fine[6].ts_ms, kBase + 70'000);
  EXPECT_EQ(fine[6].requests, 11u);
}

TEST(Telemetry, WindowAddsTheLiveCountersToTheRollups) {
  TempDir dir;
  Synthetic syn;
  int64_t now = kBase;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  Telemetry t(opt, syn.source(), [&] { return now; });
  t.Tick();
  for (int i = 0; i < 30; ++i) {  // 5 minutes at 10 requests/s
    syn.Add(0, 100, i < 6 ? 10 : 0, 1000);
    now += 10'000;
    t.Tick();
  }
  syn.Add(0, 50, 0, 1000);  // not ticked yet: live
  now += 5'000;
  auto one = t.Window(SeriesKind::kRoute, 60'000);
  ASSERT_EQ(one.size(), 2u);  // api, and web (live, zero)
  EXPECT_EQ(one[0].name, "api");
  // The window starts at the 10 s boundary at or before now - 60 s: six rows plus the live 5 s.
  EXPECT_EQ(one[0].requests, 600u + 50u);
  EXPECT_EQ(one[0].errors, 0u);
  EXPECT_DOUBLE_EQ(one[0].covered_s, 65);
  EXPECT_DOUBLE_EQ(one[0].requests / one[0].covered_s, 10);
  auto fifteen = t.Window(SeriesKind::kRoute, 900'000);
  EXPECT_EQ(fifteen[0].requests, 3050u);
  EXPECT_EQ(fifteen[0].errors, 60u);
  EXPECT_DOUBLE_EQ(fifteen[0].covered_s, 305);  // ficus ran 305 s of the 15 minutes
  EXPECT_GT(fifteen[0].clients, 1000);
  EXPECT_NEAR(fifteen[0].latency.PercentileMicros(0.99), 1000, 100);
}

TEST(Telemetry, RetentionPrunesTenSecondRowsAfterADayAndMinuteRowsAfterThirtyDays) {
  TempDir dir;
  Synthetic syn;
  int64_t now = kBase;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  Telemetry t(opt, syn.source(), [&] { return now; });
  t.Tick();
  syn.Add(0, 10, 0, 1000);
  now += 10'000;
  t.Tick();
  auto count = [&](Resolution r) {
    return t.store().QueryRollups(r, SeriesKind::kRoute, {}, 0, INT64_MAX).size();
  };
  EXPECT_EQ(count(Resolution::k10s), 1u);
  EXPECT_EQ(count(Resolution::k1m), 1u);
  now += 86'400'000 - 10'000;  // the row is exactly a day old: kept
  t.Tick();
  EXPECT_EQ(count(Resolution::k10s), 1u);
  now += 10'001;
  t.Tick();
  EXPECT_EQ(count(Resolution::k10s), 0u);
  EXPECT_EQ(count(Resolution::k1m), 1u);
  now += 29 * 86'400'000ll;
  t.Tick();
  EXPECT_EQ(count(Resolution::k1m), 0u);
}

// Telemetry for a 24-hour synthetic load, written fast-forwarded, stays
// within its configured size bound.
TEST(Telemetry, TwentyFourHoursFastForwardedStayWithinTheSizeBound) {
  TempDir dir;
  Synthetic syn;
  int64_t now = kBase;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  opt.store.max_bytes = 2 << 20;  // 2 MiB: a day of rollups for 3 series needs ~4x that
  opt.store.durable = false;      // no fsync: the bound is the same, the test 5x faster
  Telemetry t(opt, syn.source(), [&] { return now; });
  std::mt19937 rng(7);
  t.Tick();
  uint64_t max_file = 0;
  for (int i = 0; i < 8640; ++i) {  // 24 h of 10 s intervals
    syn.Add(0, 500 + rng() % 500, rng() % 5, 1000 + rng() % 100'000);
    syn.Add(1, 50 + rng() % 50, 0, 100 + rng() % 10'000'000);
    now += 10'000;
    t.Tick();
    if (i % 360 == 0)
      t.store().AppendEvent({0, now, "deploy", "shop", "v" + std::to_string(i), ""});
    max_file = std::max(max_file, t.store().FileBytes());
  }
  std::printf("24 h fast-forward: largest database + WAL %llu bytes, bound %llu\n",
              static_cast<unsigned long long>(max_file),
              static_cast<unsigned long long>(opt.store.max_bytes));
  EXPECT_LE(max_file, opt.store.max_bytes);
  // Pruning kept the newest data: the last hour of 10 s rows and recent minutes are there.
  auto last_hour =
      t.store().QueryRollups(Resolution::k10s, SeriesKind::kRoute, {"api"}, now - 3'600'000, now);
  EXPECT_EQ(last_hour.size(), 360u);
  auto minutes = t.store().QueryRollups(Resolution::k1m, SeriesKind::kRoute, {"api"}, 0, now);
  EXPECT_GT(minutes.size(), 60u);
  EXPECT_EQ(minutes.back().ts_ms, now - 60'000);  // the minute of the last interval
}

TEST(Telemetry, EventsFromManyThreadsReachTheStore) {
  TempDir dir;
  Synthetic syn;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  Telemetry t(opt, syn.source());
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&t, k] {
      for (int i = 0; i < 200; ++i) {
        t.RecordEvent({0, 0, "breaker", "shop", "", std::to_string(k) + ":" + std::to_string(i)});
      }
    });
  }
  for (auto& th : threads) th.join();
  t.Drain();
  EXPECT_EQ(t.store().Events(0, INT64_MAX, "breaker", 10'000).size() + t.events_dropped(), 800u);
  EXPECT_EQ(t.events_dropped(), 0u);  // 800 fit in the queue (1024)
  for (int i = 0; i < 1100; ++i) t.RecordEvent({0, 0, "health", "", "", ""});
  EXPECT_EQ(t.events_dropped(), 76u);
}

TEST(ErrorSampler, RingsDropWhenFullAndRedactOnDrain) {
  ErrorSampler s(2);
  const std::string req = "GET /a HTTP/1.1\r\nAuthorization: Bearer xyz\r\nCookie: a=b\r\n\r\n";
  const std::string resp = "HTTP/1.1 503 Service Unavailable\r\nSet-Cookie: sid=1\r\n\r\n";
  for (size_t i = 0; i < ErrorSampler::kSlots; ++i) {
    EXPECT_TRUE(s.Push(0, 100 + i, "api", 503, "req-1", req, resp));
  }
  EXPECT_FALSE(s.Push(0, 1, "api", 503, "req-1", req, resp));
  EXPECT_TRUE(s.Push(1, 50, std::string(100, 'r'), 500, "req-2", std::string(5000, 'x'), resp));
  EXPECT_EQ(s.dropped(), 1u);
  auto out = s.Drain();
  ASSERT_EQ(out.size(), ErrorSampler::kSlots + 1);
  EXPECT_EQ(out[0].ts_ms, 50);  // sorted by time
  EXPECT_EQ(out[0].route.size(), ErrorSampler::kRouteBytes);
  EXPECT_EQ(out[0].request_head.size(), ErrorSampler::kHeadBytes);
  EXPECT_EQ(out[1].request_head,
            "GET /a HTTP/1.1\r\nAuthorization: <redacted>\r\nCookie: <redacted>\r\n\r\n");
  EXPECT_EQ(out[1].response_head,
            "HTTP/1.1 503 Service Unavailable\r\nSet-Cookie: <redacted>\r\n\r\n");
  EXPECT_EQ(out[1].request_id, "req-1");
  EXPECT_TRUE(s.Drain().empty());
  EXPECT_TRUE(s.Push(0, 1, "api", 503, "", req, resp));  // room again
}

TEST(ErrorSampler, ProducerAndConsumerOnTwoThreads) {
  ErrorSampler s(1);
  std::atomic<bool> done{false};
  uint64_t pushed = 0;
  std::thread producer([&] {
    for (int i = 0; i < 20'000; ++i) pushed += s.Push(0, i, "api", 500, "id", "GET", "HTTP");
    done = true;
  });
  size_t drained = 0;
  int64_t last = -1;
  bool ordered = true;
  while (!done.load()) {
    for (const ErrorSample& e : s.Drain()) {
      ordered = ordered && e.ts_ms > last;
      last = e.ts_ms;
      ++drained;
    }
  }
  producer.join();
  drained += s.Drain().size();
  EXPECT_TRUE(ordered);
  EXPECT_EQ(drained, pushed);
  EXPECT_EQ(pushed + s.dropped(), 20'000u);
}

}  // namespace
}  // namespace ficus::telemetry

namespace ficus::telemetry {
namespace {

TEST(Store, AssessmentsClientKeysAndRepeats) {
  TempDir dir;
  Store store(StoreOptions{.path = dir.File("t.db")});
  Assessment a;
  a.ts_ms = 1000;
  a.duration_ms = 12'000;
  a.target = "route:catalog";
  a.knee_rate = 80;
  a.p99_ms = 48.5;
  a.error_ratio = 0.002;
  a.steps = 4;
  a.max_rate = 80;
  a.stop_reason = "envelope";
  a.detail = "[]";
  store.AppendAssessment(a);
  a.ts_ms = 5000;
  a.target = "route:checkout";
  store.AppendAssessment(a);
  auto got = store.Assessments(0, 2000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "route:catalog");
  EXPECT_EQ(got[0].duration_ms, 12'000);
  EXPECT_EQ(got[0].knee_rate, 80);
  EXPECT_EQ(got[0].p99_ms, 48.5);
  EXPECT_EQ(got[0].stop_reason, "envelope");
  EXPECT_EQ(store.Assessments(0, 10'000).size(), 2u);

  // Rows with the same (ts, route, key) add up; queries sum a range per (route, key).
  store.WriteClientKeys({{60'000, "catalog", "key:a", 10}, {60'000, "catalog", "key:b", 3}});
  store.WriteClientKeys({{60'000, "catalog", "key:a", 5}, {120'000, "catalog", "key:a", 1}});
  auto keys = store.ClientKeys(0, 120'000);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].key, "key:a");
  EXPECT_EQ(keys[0].count, 15u);
  EXPECT_EQ(store.ClientKeys(0, 200'000)[0].count, 16u);

  store.WriteRepeats({{60'000, "catalog", 10, 8, 1}});
  store.WriteRepeats({{60'000, "catalog", 10, 9, 0}, {60'000, "cart", 4, 0, 2}});
  auto rep = store.Repeats(0, 120'000);
  ASSERT_EQ(rep.size(), 2u);
  EXPECT_EQ(rep[0].route, "cart");
  EXPECT_EQ(rep[1].sampled, 20u);
  EXPECT_EQ(rep[1].repeated, 17u);
  EXPECT_EQ(rep[1].changed, 1u);
}

TEST(Telemetry, TicksStoreTheHeavyClientKeysPerMinute) {
  TempDir dir;
  int64_t now = 1'700'000'040'000;
  int tick = 0;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  auto source = [&](bool take) {
    SeriesTotals s;
    s.name = "catalog";
    s.requests = static_cast<uint64_t>(tick) * 10;
    if (take) s.keys = {{"key:scraper", 7}, {"addr:10.0.0.1", 3}};
    return std::vector<SeriesTotals>{s};
  };
  Telemetry t(opt, source, [&] { return now; });
  t.Tick();  // baseline: its keys are dropped with the counts before it
  for (tick = 1; tick <= 3; ++tick) {
    now += 10'000;
    t.Tick();
  }
  auto keys = t.store().ClientKeys(0, INT64_MAX);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].key, "key:scraper");
  EXPECT_EQ(keys[0].count, 21u);
  EXPECT_EQ(keys[1].count, 9u);
}

}  // namespace
}  // namespace ficus::telemetry

namespace ficus::telemetry {
namespace {

TEST(Store, SloTotalsLeaveTheSyntheticRequestsOut) {
  TempDir dir;
  Store store(StoreOptions{.path = dir.File("t.db")});
  Rollup syn = Row("api", 0, 30, 4);  // 30 of api's requests were `ficus assess`'s
  syn.kind = SeriesKind::kSynthetic;
  Rollup big = Row("web", 0, 50, 1);  // more than the route has: never below zero
  big.kind = SeriesKind::kSynthetic;
  store.WriteRollups(Resolution::k10s, {Row("api", 0, 100, 5), Row("web", 0, 7), syn, big});
  auto all = store.Totals(Resolution::k10s, SeriesKind::kRoute, {}, 0, 10'000);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].requests, 100u);  // the route's own totals keep everything
  auto slo = store.SloTotals(Resolution::k10s, 0, 10'000);
  ASSERT_EQ(slo.size(), 2u);
  EXPECT_EQ(slo[0].name, "api");
  EXPECT_EQ(slo[0].requests, 70u);
  EXPECT_EQ(slo[0].errors, 1u);
  EXPECT_EQ(slo[0].latency.Count(), 0u);  // Row's two samples, less the synthetic row's two
  EXPECT_EQ(slo[1].name, "web");
  EXPECT_EQ(slo[1].requests, 0u);
  EXPECT_EQ(slo[1].errors, 0u);
  EXPECT_EQ(SeriesKindName(SeriesKind::kSynthetic), "synthetic");
}

TEST(Telemetry, TicksWriteTheRepeatCountsPerMinute) {
  TempDir dir;
  std::vector<SeriesTotals> totals(1);
  totals[0].name = "catalog";
  int64_t now = 1'700'000'000'000;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  Telemetry t(
      opt,
      [&](bool take) {
        std::vector<SeriesTotals> out = totals;
        if (take) {  // a take hands over the counts since the previous one
          totals[0].repeat_sampled = totals[0].repeat_repeated = totals[0].repeat_changed = 0;
        }
        return out;
      },
      [&] { return now; });
  t.Tick();  // baseline
  for (int i = 0; i < 3; ++i) {
    totals[0].requests += 10;
    totals[0].repeat_sampled = 5;
    totals[0].repeat_repeated = 3;
    totals[0].repeat_changed = 1;
    now += 10'000;
    t.Tick();
  }
  auto rows = t.store().Repeats(0, INT64_MAX);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].route, "catalog");
  EXPECT_EQ(rows[0].sampled, 15u);
  EXPECT_EQ(rows[0].repeated, 9u);
  EXPECT_EQ(rows[0].changed, 3u);
}

TEST(Telemetry, TicksWriteTheCacheCountersPerMinuteAsDifferences) {
  TempDir dir;
  std::vector<SeriesTotals> totals(2);
  totals[0].name = "catalog";
  totals[0].cache = CacheCounters{};
  totals[1].name = "uncached";               // no cache: no rows
  const int64_t minute = 1'700'000'040'000;  // a minute's start
  int64_t now = minute;
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  Telemetry t(
      opt, [&](bool) { return totals; }, [&] { return now; });
  totals[0].cache->hits = 100;  // before the baseline: belongs to no interval
  t.Tick();
  for (int i = 0; i < 3; ++i) {  // cumulative counters, as the cache keeps them
    totals[0].cache->hits += 7;
    totals[0].cache->misses += 2;
    totals[0].cache->coalesced += 1;
    now += 10'000;
    t.Tick();
  }
  // A reload gave the route a new store: its counters start again at zero.
  totals[0].cache = CacheCounters{.hits = 4, .misses = 1, .bypassed = 3};
  now += 60'000;  // its interval is in the next minute
  t.Tick();
  now += 10'000;
  t.Tick();  // nothing new: no row
  auto rows = t.store().CacheCounts(0, INT64_MAX);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].route, "catalog");
  EXPECT_EQ(rows[0].counts.hits, 25u);
  EXPECT_EQ(rows[0].counts.misses, 7u);
  EXPECT_EQ(rows[0].counts.coalesced, 3u);
  EXPECT_EQ(rows[0].counts.bypassed, 3u);
  // Per minute: the second minute has the reload's counts only.
  auto second = t.store().CacheCounts(minute + 60'000, INT64_MAX);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].counts.hits, 4u);
}

TEST(Store, AVersionOneStoreIsMigratedAndANewerOneRefused) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  {
    Store store(StoreOptions{.path = path});
    store.WriteRepeats({{60'000, "catalog", 10, 8, 1}});
  }
  // What ficus wrote before the cache counters: no cache_counts table, user_version 1.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE cache_counts; PRAGMA user_version=1;", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  {
    Store store(StoreOptions{.path = path});
    EXPECT_EQ(store.Repeats(0, 120'000).size(), 1u);  // the old data is kept
    store.WriteCacheCounts({{60'000, "catalog", {.hits = 3}}, {60'000, "catalog", {.hits = 2}}});
    auto rows = store.CacheCounts(0, 120'000);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].counts.hits, 5u);
  }
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    Store store(StoreOptions{.path = path});
    ADD_FAILURE() << "a newer store was opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ficus::telemetry
