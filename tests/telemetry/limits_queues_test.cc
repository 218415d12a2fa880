// The limited keys and the job queues' minutes: stored, summed, taken at ticks, pruned, and
// added to a store an older ficus wrote.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "telemetry/telemetry.h"

namespace ficus::telemetry {
namespace {

namespace fs = std::filesystem;

class Dir {
 public:
  Dir() {
    char tmpl[] = "/tmp/ficus-limits-queues-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~Dir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(LimitedKeys, AddUpPerMinuteRouteAndKeyAndSumOverARange) {
  Dir dir;
  Store store(StoreOptions{.path = dir.File("t.db")});
  store.WriteLimitedKeys({{60'000, "catalog", "key:scraper", 40}, {60'000, "cart", "key:a", 2}});
  store.WriteLimitedKeys(
      {{60'000, "catalog", "key:scraper", 10}, {120'000, "catalog", "key:scraper", 5}});
  auto rows = store.LimitedKeys(0, 120'000);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].route, "catalog");
  EXPECT_EQ(rows[0].key, "key:scraper");
  EXPECT_EQ(rows[0].count, 50u);
  EXPECT_EQ(rows[1].count, 2u);
  EXPECT_EQ(store.LimitedKeys(0, 180'000)[0].count, 55u);
  EXPECT_TRUE(store.ClientKeys(0, 180'000).empty());  // a table of their own
}

TEST(QueueMinutes, CountersAddUpAndTheLastTickSetsTheGauges) {
  Dir dir;
  Store store(StoreOptions{.path = dir.File("t.db")});
  store.WriteQueueMinutes({{60'000, "signup", 100, 80, 1, 0, 90, 20, 3000, 0}});
  store.WriteQueueMinutes({{60'000, "signup", 50, 40, 0, 1, 45, 29, 5000, 1},
                           {120'000, "signup", 10, 10, 0, 0, 10, 29, 6000, 1},
                           {60'000, "mail", 1, 1, 0, 0, 1, 0, 0, 0}});
  auto rows = store.QueueMinutes(0, 120'000);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].queue, "mail");  // by queue, then time
  const QueueMinute& m = rows[1];
  EXPECT_EQ(m.enqueued, 150u);
  EXPECT_EQ(m.succeeded, 120u);
  EXPECT_EQ(m.failed, 1u);
  EXPECT_EQ(m.dead, 1u);
  EXPECT_EQ(m.attempts, 135u);
  EXPECT_EQ(m.depth, 29);
  EXPECT_EQ(m.oldest_age_ms, 5000);
  EXPECT_EQ(m.dead_letters, 1);
  EXPECT_EQ(store.QueueMinutes(0, 180'000).size(), 3u);
}

TEST(QueueMinutes, TicksTakeTheQueuesDeltasIntoTheirMinute) {
  Dir dir;
  int64_t now = 1'700'000'080'000;  // 40 s into a minute
  uint64_t enqueued = 500;          // before the baseline: not counted
  TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  Telemetry t(
      opt, [](bool) { return std::vector<SeriesTotals>{}; }, [&] { return now; });
  t.SetQueueSource([&] {
    QueueTotals q;
    q.name = "signup";
    q.enqueued = enqueued;
    q.succeeded = enqueued / 2;
    q.attempts = enqueued / 2;
    q.depth = static_cast<int64_t>(enqueued - enqueued / 2);
    q.oldest_age_ms = static_cast<int64_t>(enqueued);
    return std::vector<QueueTotals>{q};
  });
  t.Tick();  // the baseline
  for (int i = 0; i < 3; ++i) {
    now += 10'000;
    enqueued += 100;
    t.Tick();
  }
  auto rows = t.store().QueueMinutes(0, INT64_MAX);
  ASSERT_EQ(rows.size(), 2u);  // two ticks in the first minute, one in the next
  EXPECT_EQ(rows[0].ts_ms % 60'000, 0);
  EXPECT_EQ(rows[0].enqueued + rows[1].enqueued, 300u);
  EXPECT_EQ(rows[0].succeeded + rows[1].succeeded, 150u);
  EXPECT_EQ(rows[1].depth, 400);  // the last tick's gauge
  EXPECT_EQ(rows[1].oldest_age_ms, 800);
}

TEST(QueueMinutes, AreKeptAsLongAsTheMinuteRollups) {
  Dir dir;
  Store store(StoreOptions{.path = dir.File("t.db"), .coarse_retention_ms = 600'000});
  store.WriteQueueMinutes(
      {{60'000, "signup", 1, 1, 0, 0, 1, 0, 0, 0}, {900'000, "signup", 1, 1, 0, 0, 1, 0, 0, 0}});
  store.WriteLimitedKeys({{60'000, "catalog", "key:a", 1}, {900'000, "catalog", "key:a", 2}});
  store.Prune(1'000'000);
  ASSERT_EQ(store.QueueMinutes(0, INT64_MAX).size(), 1u);
  EXPECT_EQ(store.LimitedKeys(0, INT64_MAX)[0].count, 2u);
}

// A store written before these tables existed opens, keeps its rows and gains the tables.
TEST(QueueMinutes, AnOlderStoreGainsTheTables) {
  Dir dir;
  const std::string path = dir.File("old.db");
  {
    Store store(StoreOptions{.path = path});
    store.WriteClientKeys({{60'000, "catalog", "key:a", 7}});
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE limited_keys; DROP TABLE queue_minutes", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  Store store(StoreOptions{.path = path});
  EXPECT_EQ(store.ClientKeys(0, INT64_MAX)[0].count, 7u);
  store.WriteQueueMinutes({{60'000, "signup", 1, 1, 0, 0, 1, 0, 0, 0}});
  store.WriteLimitedKeys({{60'000, "catalog", "key:a", 3}});
  EXPECT_EQ(store.QueueMinutes(0, INT64_MAX).size(), 1u);
  EXPECT_EQ(store.LimitedKeys(0, INT64_MAX)[0].count, 3u);
}

}  // namespace
}  // namespace ficus::telemetry
