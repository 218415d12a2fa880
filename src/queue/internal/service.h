// The process's queue service: the writer and one running queue per configured queue. One
// per process (queue.h's Start/Stop); policies hold shared pointers to what they use, so a
// policy of an old snapshot stays safe after a reload or Stop (its work is then refused).
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "policy/policy.h"
#include "queue/internal/runtime.h"
#include "queue/internal/store.h"

namespace ficus::queue::internal {

struct QueueRuntime {
  std::string name;
  std::shared_ptr<Writer> writer;
  Counters counters;
  std::unique_ptr<Deliverer> deliverer;
};

// The service's writer, or null when no service runs.
std::shared_ptr<Writer> ServiceWriter();

// The running queue `name`, or null (no service, or no such queue).
std::shared_ptr<QueueRuntime> FindQueue(const std::string& name);

// The queue module's policies (offload.cc, jobs.cc). `runtime` may be null: then they answer
// 503 (no service runs: a unit test without one, or the store could not be opened).
std::unique_ptr<policy::Policy> MakeOffloadPolicy(const config::Offload& offload,
                                                  const config::Queue& queue,
                                                  const std::string& cluster,
                                                  std::shared_ptr<QueueRuntime> runtime);
std::unique_ptr<policy::Policy> MakeJobsPolicy(const config::Queue& queue,
                                               std::shared_ptr<QueueRuntime> runtime);

// A job as the job URL and the admin API show it (JSON, newline-terminated); `jobs_path`
// empty: no "location".
std::string JobJson(const JobView& v, const std::string& jobs_path);

// One queue's unfinished jobs from the store into its deliverer (at start, and when a reload
// brings the queue back).
void LoadJobs(const std::shared_ptr<QueueRuntime>& runtime);

}  // namespace ficus::queue::internal
