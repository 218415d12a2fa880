// A running queue: its counters (what admission checks and /metrics reads) and its deliverer,
// the thread that sends the queue's jobs to the application (client::Calls, many in flight,
// one poll), off the worker threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "config/config.h"
#include "queue/internal/callback.h"
#include "queue/internal/store.h"

namespace ficus::queue::internal {

// Relaxed atomics: written by workers (admission), the writer (commits) and the deliverer.
struct Counters {
  std::atomic<int64_t> depth{0};  // unfinished jobs, including those being admitted
  std::atomic<int64_t> bytes{0};  // their bodies
  std::atomic<uint64_t> enqueued{0};
  std::atomic<uint64_t> duplicates{0};  // a repeated Idempotency-Key answered with its job
  std::atomic<uint64_t> conflicts{0};   // the same key with another request: 422
  std::atomic<uint64_t> full{0};        // refused: max_jobs or max_bytes
  std::atomic<uint64_t> write_failures{0};
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> succeeded{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> dead{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> latency_us_sum{0};  // attempts that got an answer
  std::atomic<uint64_t> latency_count{0};
  std::atomic<int64_t> oldest_created_ms{0};  // of the unfinished jobs; 0 = none
  std::atomic<int64_t> dead_letters{0};       // dead jobs in the store (within retention)
  std::atomic<uint64_t> callback_attempts{0};
  std::atomic<uint64_t> callbacks_sent{0};
  std::atomic<uint64_t> callbacks_failed{0};  // given up after the callback's max_attempts
};

// Sends one queue's jobs. Push from any thread; the rest is the deliverer's own thread.
class Deliverer {
 public:
  Deliverer(std::string queue, Writer& writer, Counters& counters);
  ~Deliverer();  // Stop()
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

  // The queue's settings and every cluster's endpoints (the job names its cluster). Any thread.
  void Configure(const config::Queue& queue, const std::vector<config::Cluster>& clusters);
  void Start();
  // Abandons the attempts in flight (the store still says running: requeued at the next start).
  void Stop();
  void Push(std::unique_ptr<Job> job);
  void Push(std::vector<std::unique_ptr<Job>> jobs);
  // Callbacks still to send (recovered from the store at start).
  void PushCallbacks(std::vector<PendingCallback> callbacks);

 private:
  struct Target {
    std::vector<client::Destination> endpoints;
    std::vector<std::vector<client::Connection>> idle;  // kept-alive connections per endpoint
    size_t next = 0;                                    // round robin
    uint64_t generation = 0;  // bumped when a reload changes the endpoints under live attempts
  };
  struct Attempt {
    std::unique_ptr<Job> job;
    client::Call call;
    Target* target = nullptr;
    size_t endpoint = 0;
    uint64_t generation = 0;  // the target's when the attempt started
    int64_t started_ms = 0;
    int64_t deadline_ms = 0;
    bool timed_out = false;
  };
  struct Later {
    int64_t at_ms;
    Job* job;
    bool operator>(const Later& o) const { return at_ms > o.at_ms; }
  };

  void Loop();
  void TakeInbox(int64_t now_ms);
  void StartAttempt(std::unique_ptr<Job> job, int64_t now_ms);
  void Complete(Attempt& a, int64_t now_ms);
  void Release(const Job& job);
  void PublishOldest();
  void Wake();  // the eventfd the deliverer's poll watches
  bool RateAllows(int64_t now_ms);

  std::string queue_;
  Writer& writer_;
  Counters& counters_;
  int wake_fd_ = -1;  // eventfd: Push and Stop wake the poll
  std::thread thread_;
  std::atomic<bool> stop_{false};

  std::mutex mu_;  // guards inbox_, config_, clusters_, reconfigured_
  std::vector<std::unique_ptr<Job>> inbox_;
  std::vector<PendingCallback> callback_inbox_;
  config::Queue config_;
  std::vector<config::Cluster> clusters_;
  bool reconfigured_ = false;

  // The deliverer thread's own.
  config::Queue cfg_;
  std::map<std::string, Target> targets_;
  std::deque<std::unique_ptr<Job>> ready_;
  std::priority_queue<Later, std::vector<Later>, std::greater<Later>> later_;  // owns job
  std::vector<std::unique_ptr<Attempt>> inflight_;
  CallbackSender callbacks_;
  double tokens_ = 0;
  int64_t tokens_at_ms_ = 0;
  int64_t published_at_ms_ = 0;
  int64_t pruned_at_ms_ = 0;  // 0: at once (after a start the store may hold expired jobs)
  static constexpr int64_t kPruneEveryMs = 60'000;
  uint64_t dead_unreported_ = 0;  // dead since the last queue_dead event
  int64_t dead_reported_at_ms_ = 0;
  static constexpr int64_t kDeadEventEveryMs = 10'000;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace ficus::queue::internal
