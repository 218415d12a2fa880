// The job store and its writer: jobs survive a reopen, a repeated Idempotency-Key finds its
// job (and a reused one conflicts), group commit batches concurrent work, and a damaged file is
// an error naming the file.
#include "queue/internal/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "queue/queue.h"

namespace ficus::queue::internal {
namespace {

class TempDir {
 public:
  TempDir() {
    path_ = (std::filesystem::temp_directory_path() /
             ("ficus_queue_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++)))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

Job MakeJob(std::string key, std::string body) {
  Job j;
  j.token = NewToken();
  j.queue = "signup";
  j.cluster = "app";
  j.idempotency_key = std::move(key);
  j.method = "POST";
  j.target = "/signup";
  j.headers = "Host: shop\r\nContent-Type: application/json\r\n";
  j.body = std::move(body);
  j.max_attempts = 3;
  j.created_ms = WallMillis();
  return j;
}

Store::Insert Add(Store& s, Job& j, bool lookup = true) {
  std::string existing;
  return s.Add(j, Fingerprint(j.method, j.target, j.body), lookup ? 0 : INT64_MAX, &existing);
}

TEST(JobIdTest, IsTheSequenceThenOneHundredTwentyEightRandomBits) {
  const std::string a = NewToken(), b = NewToken();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
  const std::string id = JobId(0x1234, a);
  EXPECT_EQ(id, "0000000000001234" + a);
  int64_t seq = 0;
  std::string_view token;
  ASSERT_TRUE(ParseJobId(id, &seq, &token));
  EXPECT_EQ(seq, 0x1234);
  EXPECT_EQ(token, a);
  EXPECT_FALSE(IsJobId(a));
  EXPECT_FALSE(IsJobId(id.substr(1)));
  EXPECT_FALSE(IsJobId("X" + id.substr(1)));
  EXPECT_FALSE(IsJobId("f" + id.substr(1)));  // over INT64_MAX
}

TEST(StoreTest, JobsSurviveAReopenAndRunningOnesAreQueuedAgain) {
  TempDir dir;
  const std::string path = StorePath(dir.path());
  Job a = MakeJob("", "{\"n\":1}"), b = MakeJob("", "{\"n\":2}");
  {
    auto s = Store::Open(path);
    ASSERT_TRUE(s->Begin());
    EXPECT_EQ(Add(*s, a, false), Store::Insert::kInserted);
    EXPECT_EQ(Add(*s, b, false), Store::Insert::kInserted);
    EXPECT_TRUE(s->MarkRunning(a.id, WallMillis()));
    AttemptResult done;
    done.state = State::kSucceeded;
    done.status = 201;
    done.body = "created";
    EXPECT_TRUE(s->Finish(b.id, done, WallMillis()));
    ASSERT_TRUE(s->Commit());
  }
  auto s = Store::Open(path);
  std::vector<std::unique_ptr<Job>> open;
  ASSERT_TRUE(s->LoadOpen("signup", &open));
  ASSERT_EQ(open.size(), 1u);  // b succeeded
  EXPECT_EQ(open[0]->id, a.id);
  EXPECT_EQ(open[0]->attempts, 1u);  // the interrupted attempt counts
  EXPECT_EQ(open[0]->body, a.body);
  EXPECT_EQ(open[0]->headers, a.headers);
  JobView v;
  ASSERT_TRUE(s->Get(a.id, &v));
  EXPECT_EQ(v.state, State::kQueued);
  ASSERT_TRUE(s->Get(b.id, &v));
  EXPECT_EQ(v.state, State::kSucceeded);
  EXPECT_EQ(v.result_status, 201);
  EXPECT_EQ(v.result_body, "created");
  EXPECT_FALSE(s->Get(JobId(1, NewToken()), &v));  // the right sequence, a wrong token
  EXPECT_FALSE(s->Get(JobId(99, a.token), &v));
}

TEST(StoreTest, ARepeatedKeyFindsItsJobAndAReusedKeyConflicts) {
  TempDir dir;
  auto s = Store::Open(StorePath(dir.path()));
  ASSERT_TRUE(s->Begin());
  Job first = MakeJob("key-1", "body");
  EXPECT_EQ(Add(*s, first), Store::Insert::kInserted);
  Job again = MakeJob("key-1", "body");
  std::string existing;
  EXPECT_EQ(s->Add(again, Fingerprint("POST", "/signup", "body"), 0, &existing),
            Store::Insert::kExisting);
  EXPECT_EQ(existing, first.id);
  Job other = MakeJob("key-1", "another body");
  EXPECT_EQ(Add(*s, other), Store::Insert::kConflict);
  // Past the retention window the key is free again.
  Job later = MakeJob("key-1", "another body");
  EXPECT_EQ(
      s->Add(later, Fingerprint("POST", "/signup", "another body"), WallMillis() + 1000, &existing),
      Store::Insert::kInserted);
  ASSERT_TRUE(s->Commit());
}

TEST(StoreTest, AFileThatIsNotADatabaseIsAnErrorNamingIt) {
  TempDir dir;
  const std::string path = StorePath(dir.path());
  std::ofstream(path) << std::string(8192, 'x');
  try {
    Store::Open(path);
    FAIL() << "opened a file that is not a database";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_EQ(std::filesystem::file_size(path), 8192u);  // left as it was
}

TEST(StoreTest, ATruncatedFileIsAnErrorNamingIt) {
  TempDir dir;
  const std::string path = StorePath(dir.path());
  {
    auto s = Store::Open(path);
    ASSERT_TRUE(s->Begin());
    for (int i = 0; i < 400; ++i) {
      Job j = MakeJob("", std::string(2000, 'a' + i % 26));
      Add(*s, j, false);
    }
    ASSERT_TRUE(s->Commit());
  }
  {
    // Fold the WAL into the file, then cut the file in half.
    auto s = Store::Open(path);
  }
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 100'000u);
  std::filesystem::resize_file(path, size / 2);
  try {
    auto s = Store::Open(path);
    std::vector<std::unique_ptr<Job>> open;
    FAIL() << "opened a truncated store";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// Counts its Done and whether it was committed.
class CountingWork final : public Work {
 public:
  explicit CountingWork(std::atomic<int>* done) : done_(done) {}
  void Run(Store& s) override {
    Job j = MakeJob("", "x");
    std::string existing;
    s.Add(j, 1, INT64_MAX, &existing);
  }
  void Done(bool committed) override {
    if (committed) done_->fetch_add(1);
    delete this;
  }

 private:
  std::atomic<int>* done_;
};

TEST(WriterTest, ConcurrentWorkIsCommittedInFewerBatches) {
  TempDir dir;
  Writer writer(Store::Open(StorePath(dir.path())));
  writer.Start();
  std::atomic<int> done{0};
  constexpr int kThreads = 8, kEach = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) writer.Submit(new CountingWork(&done));
    });
  }
  for (auto& t : threads) t.join();
  writer.Stop();  // runs what is queued first
  EXPECT_EQ(done.load(), kThreads * kEach);
  EXPECT_LT(writer.batches(), static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(writer.failed_batches(), 0u);
  // Refused after Stop.
  std::atomic<int> late{0};
  writer.Submit(new CountingWork(&late));
  EXPECT_EQ(late.load(), 0);
}

// Inserts one job with a body of about a page: one WAL frame (and its index pages) per job.
class PageWork final : public Work {
 public:
  explicit PageWork(std::atomic<int>* done) : done_(done) {}
  void Run(Store& s) override {
    Job j = MakeJob("", std::string(3000, 'p'));
    std::string existing;
    s.Add(j, 1, INT64_MAX, &existing);
  }
  void Done(bool committed) override {
    if (committed) done_->fetch_add(1);
    delete this;
  }

 private:
  std::atomic<int>* done_;
};

// What writing kJobs pages through a writer with `limits` leaves: the WAL file's size (it never
// shrinks below its largest: journal_size_limit is 64 MB, so this is the most it held), the
// checkpoints, and the jobs found after a reopen.
struct WalRun {
  uintmax_t wal_bytes = 0;
  uint64_t checkpoints = 0, restarts = 0;
  size_t jobs_after_reopen = 0;
};
constexpr int kPageJobs = 6400;  // 4 clients x 200 rounds of 8
WalRun WriteManyPages(const std::string& path, CheckpointLimits limits) {
  WalRun run;
  {
    Writer writer(Store::Open(path), limits);
    writer.Start();
    // Four clients, each with 8 jobs outstanding at most (as connections waiting for their
    // 202s): batches of up to 32 jobs, one after the other, as under load.
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&writer] {
        std::atomic<int> mine{0};
        for (int sent = 0; sent < kPageJobs / 4; sent += 8) {
          for (int i = 0; i < 8; ++i) writer.Submit(new PageWork(&mine));
          while (mine.load() < sent + 8) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
      });
    }
    for (auto& t : threads) t.join();
    run.wal_bytes = std::filesystem::file_size(path + "-wal");
    run.checkpoints = writer.checkpointer().checkpoints();
    run.restarts = writer.wal_restarts();
    writer.Stop();
  }
  auto s = Store::Open(path);
  std::vector<std::unique_ptr<Job>> open;
  EXPECT_TRUE(s->Begin());
  EXPECT_TRUE(s->LoadOpen("signup", &open));
  EXPECT_TRUE(s->Commit());
  run.jobs_after_reopen = open.size();
  return run;
}

TEST(WriterTest, TheCheckpointerKeepsTheWalBoundedUnderContinuousWrites) {
  // Small limits so the test writes megabytes, not hundreds: the checkpointer starts at 50
  // frames, the writer completes the checkpoint at 500 (2 MB).
  TempDir dir;
  const WalRun run = WriteManyPages(StorePath(dir.path()), CheckpointLimits{50, 500});
  EXPECT_LT(run.wal_bytes, 4u * 500 * 4096) << "the WAL grew to " << run.wal_bytes << " bytes";
  EXPECT_GT(run.checkpoints, 0u);
  EXPECT_GT(run.restarts, 0u);
  EXPECT_EQ(run.jobs_after_reopen, static_cast<size_t>(kPageJobs));  // nothing lost by copies
  // The same writes without any checkpoint (the writer's WAL hook turns SQLite's own off): the
  // WAL holds every frame, so the bound above is one the checkpoints make.
  TempDir unchecked;
  const WalRun without =
      WriteManyPages(StorePath(unchecked.path()), CheckpointLimits{INT32_MAX, INT32_MAX});
  EXPECT_GT(without.wal_bytes, 4u * 500 * 4096);
  EXPECT_EQ(without.restarts, 0u);
  EXPECT_EQ(without.jobs_after_reopen, static_cast<size_t>(kPageJobs));
}

TEST(StoreTest, AFinishedJobsCallbackIsPendingUntilMarkedAndSurvivesAReopen) {
  TempDir dir;
  const std::string path = StorePath(dir.path());
  Job a = MakeJob("", "a"), b = MakeJob("", "b");
  a.callback_url = "http://127.0.0.1:9000/a";
  {
    auto s = Store::Open(path);
    ASSERT_TRUE(s->Begin());
    EXPECT_EQ(Add(*s, a, false), Store::Insert::kInserted);
    EXPECT_EQ(Add(*s, b, false), Store::Insert::kInserted);
    AttemptResult done;
    done.state = State::kSucceeded;
    done.status = 200;
    done.callback = true;
    EXPECT_TRUE(s->Finish(a.id, done, WallMillis()));
    EXPECT_TRUE(s->Finish(b.id, done, WallMillis()));
    AttemptResult retry;  // a retry is not finished: no callback yet
    retry.callback = true;
    ASSERT_TRUE(s->Commit());
    std::vector<PendingCallback> pending;
    ASSERT_TRUE(s->LoadPendingCallbacks("signup", &pending));
    ASSERT_EQ(pending.size(), 2u);
    EXPECT_EQ(pending[0].job.id, a.id);
    EXPECT_EQ(pending[0].url, "http://127.0.0.1:9000/a");
    EXPECT_EQ(pending[0].job.result_status, 200);
    EXPECT_EQ(pending[1].url, "");
    ASSERT_TRUE(s->Begin());
    EXPECT_TRUE(s->SetCallbackState(b.id, CallbackState::kSent));
    ASSERT_TRUE(s->Commit());
  }
  auto s = Store::Open(path);
  std::vector<PendingCallback> pending;
  ASSERT_TRUE(s->LoadPendingCallbacks("signup", &pending));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].job.id, a.id);
  // A job whose callback is still to be sent outlives its retention.
  ASSERT_TRUE(s->Begin());
  EXPECT_EQ(s->PruneFinished("signup", WallMillis() + 1000), 1);  // b only
  ASSERT_TRUE(s->Commit());
  JobView v;
  EXPECT_TRUE(s->Get(a.id, &v));
  EXPECT_FALSE(s->Get(b.id, &v));
}

TEST(StoreTest, RetentionInBytesDeletesTheOldestFinishedJobsFirst) {
  TempDir dir;
  auto s = Store::Open(StorePath(dir.path()));
  ASSERT_TRUE(s->Begin());
  std::vector<Job> jobs;
  for (int i = 0; i < 40; ++i) jobs.push_back(MakeJob("", std::string(10'000, 'x')));
  for (Job& j : jobs) ASSERT_EQ(Add(*s, j, false), Store::Insert::kInserted);
  // 30 finish, 10 stay open: open jobs are never retention's to delete.
  for (int i = 0; i < 30; ++i) {
    AttemptResult done;
    done.state = State::kSucceeded;
    done.status = 200;
    done.queue = "signup";
    done.stored_bytes = 10'000;
    ASSERT_TRUE(s->Finish(jobs[static_cast<size_t>(i)].id, done, WallMillis()));
  }
  ASSERT_TRUE(s->Commit());
  ASSERT_TRUE(s->Begin());
  // About 10 KB per job: a 100 KB bound keeps the newest 9 or so of the 30.
  const int64_t removed = s->PruneBytes("signup", 100'000);
  ASSERT_TRUE(s->Commit());
  EXPECT_GE(removed, 20);
  EXPECT_LE(removed, 22);
  JobView v;
  EXPECT_FALSE(s->Get(jobs[0].id, &v));
  EXPECT_TRUE(s->Get(jobs[29].id, &v));
  for (int i = 30; i < 40; ++i) EXPECT_TRUE(s->Get(jobs[static_cast<size_t>(i)].id, &v));
  // Within the bound: nothing more goes; the tally follows what Finish adds.
  ASSERT_TRUE(s->Begin());
  EXPECT_EQ(s->PruneBytes("signup", 100'000), 0);
  for (int i = 30; i < 40; ++i) {
    AttemptResult done;
    done.state = State::kFailed;
    done.status = 400;
    done.queue = "signup";
    done.stored_bytes = 10'128;
    ASSERT_TRUE(s->Finish(jobs[static_cast<size_t>(i)].id, done, WallMillis()));
  }
  EXPECT_GE(s->PruneBytes("signup", 100'000), 9);
  ASSERT_TRUE(s->Commit());
}

TEST(StoreTest, AVersionOneFileIsUpgradedInPlace) {
  TempDir dir;
  const std::string path = StorePath(dir.path());
  Job a = MakeJob("", "kept");
  {
    auto s = Store::Open(path);
    ASSERT_TRUE(s->Begin());
    ASSERT_EQ(Add(*s, a, false), Store::Insert::kInserted);
    ASSERT_TRUE(s->Commit());
  }
  // What ficus 0.x wrote: the same table without the callback columns, user_version 1.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP INDEX jobs_callback; ALTER TABLE jobs DROP COLUMN callback_url; "
                           "ALTER TABLE jobs DROP COLUMN callback_state; PRAGMA user_version=1;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  auto s = Store::Open(path);
  std::vector<std::unique_ptr<Job>> open;
  ASSERT_TRUE(s->LoadOpen("signup", &open));
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0]->body, "kept");
  EXPECT_EQ(open[0]->callback_url, "");
  std::vector<PendingCallback> pending;
  EXPECT_TRUE(s->LoadPendingCallbacks("signup", &pending));
}

}  // namespace
}  // namespace ficus::queue::internal
