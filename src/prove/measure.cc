// Running a workload: the steps one after the other (a flood beside each when the workload has
// one), a /metrics sampler on its own thread for the origin's figures.
#include "prove/internal/measure.h"

#include <chrono>
#include <thread>

#include "base/text.h"

namespace ficus::prove::internal {
namespace {

// The cluster's requests in flight, sampled while the load runs, and the first and last
// /metrics texts for the counters' differences.
class OriginSampler {
 public:
  OriginSampler(const Gateway& gw, std::string cluster) : gw_(gw), cluster_(std::move(cluster)) {
    if (Outcome<std::string> m = gw_.Metrics()) first_ = std::move(*m);
    started_ = std::chrono::steady_clock::now();
    thread_ = std::thread([this] { Loop(); });
  }
  ~OriginSampler() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    done_.store(true);
    thread_.join();
  }
  void Fill(Phase& p) {
    Stop();
    std::string last;
    if (Outcome<std::string> m = gw_.Metrics()) last = std::move(*m);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (first_.empty() || last.empty()) return;
    const OriginDelta d = OriginBetween(first_, last, seconds, cluster_);
    p.origin_rps = d.rps;
    p.origin_concurrency = (samples_ ? in_flight_sum_ / samples_ : 0) + d.deliveries_in_flight;
  }

 private:
  void Loop() {
    while (!done_.load()) {
      if (Outcome<std::string> m = gw_.Metrics()) {
        in_flight_sum_ += SumSamples(*m, "ficus_cluster_requests_in_flight", "cluster", cluster_);
        ++samples_;
      }
      for (int i = 0; i < 5 && !done_.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  const Gateway& gw_;
  std::string cluster_;
  std::string first_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<bool> done_{false};
  std::thread thread_;
  double in_flight_sum_ = 0;
  int samples_ = 0;
};

Outcome<load::Plan> PlanOf(const load::Options& o, const Workload& w, double rate,
                           const std::atomic<bool>& stop) {
  load::Options lo = o;
  if (lo.replay.empty()) lo.rate = rate;  // a replay's rate is its capture's timeline
  lo.loop = !lo.replay.empty();           // ... started over until the step's end
  lo.duration =
      Format("%llds", static_cast<long long>(std::max<int64_t>(1, w.step_ns / 1'000'000'000)));
  lo.connections = w.connections;
  lo.quiet = true;
  Outcome<load::Plan> plan = load::PlanFrom(lo);
  if (!plan) return plan;
  plan->stop = &stop;
  plan->timeout_ns = std::max<int64_t>(2000, static_cast<int64_t>(w.threshold_ms * 4)) * 1'000'000;
  return plan;
}

}  // namespace

Outcome<Phase> Measure(const Workload& w, const Gateway& gateway, const std::atomic<bool>& stop) {
  Outcome<load::Plan> plan = PlanOf(w.requests, w, w.rates.back(), stop);
  if (!plan) return Failed("the load: " + plan.message());
  std::optional<load::Plan> flood;
  if (w.flood) {
    Outcome<load::Plan> f = PlanOf(*w.flood, w, w.flood_rate, stop);
    if (!f) return Failed("the flood: " + f.message());
    // A flooding client keeps many requests in flight, not a polite few.
    f->connections = w.connections * 4;
    // A replayed flood keeps its recorded timeline (Workload::flood_rate unused).
    if (w.flood->replay.empty()) {
      if (Outcome<> set = f->SetConstantRate(w.flood_rate, w.step_ns); !set)
        return Failed("the flood: " + set.message());
    }
    flood = std::move(*f);
  }
  Phase phase;
  OriginSampler sampler(gateway, w.cluster);
  for (double rate : w.rates) {
    if (stop.load()) {
      phase.interrupted = true;
      break;
    }
    const bool replay = !w.requests.replay.empty();
    if (!replay) {
      if (Outcome<> set = plan->SetConstantRate(rate, w.step_ns); !set)
        return Failed("the load: " + set.message());
    }
    std::thread flooding;
    if (flood) flooding = std::thread([&] { (void)load::Execute(*flood); });
    Outcome<load::Summary> s = load::Execute(*plan);
    if (flooding.joinable()) flooding.join();
    if (!s) return Failed("the load: " + s.message());
    StepResult r;
    r.rate = replay ? static_cast<double>(std::max(s->stats.scheduled, s->stats.sent)) /
                          (static_cast<double>(w.step_ns) / 1e9)
                    : rate;
    r.latency = s->stats.corrected;
    r.requests = std::max(s->stats.scheduled, s->stats.sent);
    r.errors = s->stats.error_count() + s->stats.status_at_least(500) + s->stats.status[429] +
               s->stats.dropped;
    r.client_errors =
        s->stats.status_at_least(400) - s->stats.status_at_least(500) - s->stats.status[429];
    r.p99_ms = static_cast<double>(r.latency.Percentile(0.99)) / 1e6;
    const double ratio =
        static_cast<double>(r.errors) / static_cast<double>(std::max<uint64_t>(r.requests, 1));
    r.ok = r.p99_ms <= w.threshold_ms && ratio < kMaxErrorRatio;
    phase.steps.push_back(std::move(r));
    if (stop.load()) phase.interrupted = true;
    if (!phase.steps.back().ok || phase.interrupted) break;
  }
  sampler.Fill(phase);
  return phase;
}

}  // namespace ficus::prove::internal
