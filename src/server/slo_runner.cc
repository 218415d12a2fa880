#include "server/internal/slo_runner.h"

#include <algorithm>
#include <chrono>

#include "base/log.h"

namespace ficus::server {
namespace {

constexpr int64_t kTenSecondRetentionMs = 86'400'000;  // 10 s rows are kept a day
constexpr int64_t kMinuteMs = 60'000;

void Add(slo::RouteTotals& t, uint64_t requests, uint64_t errors,
         const telemetry::LatencyHistogram& latency) {
  // The store keeps requests and 5xx responses; everything else counts as a good response.
  t.responses[1] += requests >= errors ? requests - errors : 0;
  t.responses[4] += errors;
  for (int i = 0; i < telemetry::LatencyHistogram::kBuckets; ++i) {
    t.duration[i] += latency.buckets[i];
  }
}

// Takes a route's `ficus assess` requests (SeriesKind::kSynthetic) back out of its totals: the
// SLOs are about users' traffic. Never below zero.
void Subtract(slo::RouteTotals& t, uint64_t requests, uint64_t errors,
              const telemetry::LatencyHistogram& latency) {
  auto less = [](uint64_t& v, uint64_t by) { v = v > by ? v - by : 0; };
  less(t.responses[1], requests >= errors ? requests - errors : 0);
  less(t.responses[4], errors);
  for (int i = 0; i < telemetry::LatencyHistogram::kBuckets; ++i)
    less(t.duration[i], latency.buckets[i]);
}

}  // namespace

TelemetrySloSource::TelemetrySloSource(telemetry::Telemetry& telemetry) : telemetry_(telemetry) {}

const std::vector<std::pair<std::string, slo::RouteTotals>>& TelemetrySloSource::Fetch(
    slo::Seconds window, slo::SystemTime now) {
  const int64_t window_ms = window.count() * 1000;
  for (const auto& [w, routes] : cache_) {
    if (w == window_ms) return routes;
  }
  std::vector<std::pair<std::string, slo::RouteTotals>> out;
  auto slot = [&out](const std::string& name) -> slo::RouteTotals& {
    for (auto& [n, t] : out) {
      if (n == name) return t;
    }
    out.emplace_back(name, slo::RouteTotals{});
    return out.back().second;
  };
  if (window_ms <= kTenSecondRetentionMs) {
    for (const telemetry::WindowStats& w :
         telemetry_.Window(telemetry::SeriesKind::kRoute, window_ms)) {
      Add(slot(w.name), w.requests, w.errors, w.latency);
    }
  } else {
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const int64_t from = (now_ms - window_ms) / kMinuteMs * kMinuteMs;
    // The 1 min rows hold everything up to the last tick (the current minute's row is rewritten
    // every tick); a zero-length Window is what the live counters added since.
    for (const telemetry::Rollup& r : telemetry_.store().Totals(
             telemetry::Resolution::k1m, telemetry::SeriesKind::kRoute, {}, from, now_ms + 1)) {
      Add(slot(r.name), r.requests, r.errors, r.latency);
    }
    for (const telemetry::WindowStats& w : telemetry_.Window(telemetry::SeriesKind::kRoute, 0)) {
      Add(slot(w.name), w.requests, w.errors, w.latency);
    }
  }
  // Then the synthetic requests, from the same sources.
  auto subtract = [&out](const std::string& name, uint64_t requests, uint64_t errors,
                         const telemetry::LatencyHistogram& latency) {
    for (auto& [n, t] : out) {
      if (n == name) Subtract(t, requests, errors, latency);
    }
  };
  if (window_ms <= kTenSecondRetentionMs) {
    for (const telemetry::WindowStats& w :
         telemetry_.Window(telemetry::SeriesKind::kSynthetic, window_ms))
      subtract(w.name, w.requests, w.errors, w.latency);
  } else {
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const int64_t from = (now_ms - window_ms) / kMinuteMs * kMinuteMs;
    for (const telemetry::Rollup& r : telemetry_.store().Totals(
             telemetry::Resolution::k1m, telemetry::SeriesKind::kSynthetic, {}, from, now_ms + 1))
      subtract(r.name, r.requests, r.errors, r.latency);
    for (const telemetry::WindowStats& w : telemetry_.Window(telemetry::SeriesKind::kSynthetic, 0))
      subtract(w.name, w.requests, w.errors, w.latency);
  }
  cache_.emplace_back(window_ms, std::move(out));
  return cache_.back().second;
}

slo::Counts TelemetrySloSource::Get(const slo::Objective& objective, slo::Seconds window,
                                    slo::SystemTime now) {
  return slo::RouteSource::CountsOf(objective, Fetch(window, now));
}

SloRunner::SloRunner(telemetry::Telemetry& telemetry, std::shared_ptr<const config::Config> config,
                     slo::Notifier::Options notifier_options)
    : telemetry_(telemetry),
      notifier_(notifier_options),
      config_(config),
      engine_(std::make_shared<slo::Engine>(config, &notifier_)) {}

SloRunner::~SloRunner() { Stop(); }

void SloRunner::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void SloRunner::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SloRunner::SetConfig(std::shared_ptr<const config::Config> config) {
  std::lock_guard eval(eval_mu_);  // not while an evaluation uses the old engine's states
  auto next = std::make_shared<slo::Engine>(config, &notifier_);
  std::lock_guard lock(mu_);
  next->CarryOver(*engine_);
  engine_ = std::move(next);
  config_ = std::move(config);
  cv_.notify_all();  // the interval may have changed
}

std::vector<slo::Transition> SloRunner::Evaluate() {
  std::lock_guard eval(eval_mu_);
  std::shared_ptr<slo::Engine> engine;
  {
    std::lock_guard lock(mu_);
    engine = engine_;
  }
  TelemetrySloSource source(telemetry_);
  const slo::SystemTime now{std::chrono::milliseconds(telemetry_.Now())};
  std::vector<slo::Transition> transitions = engine->Update(source, now);
  for (const slo::Transition& t : transitions) {
    log::warn("slo {}: {} -> {} (burn 5m {:.2f}, 1h {:.2f})", t.status.objective.Id(),
              slo::SeverityName(t.from), slo::SeverityName(t.status.severity),
              t.status.burn[slo::k5m], t.status.burn[slo::k1h]);
  }
  return transitions;
}

std::string SloRunner::StatusJson() const {
  std::shared_ptr<slo::Engine> engine;
  {
    std::lock_guard lock(mu_);
    engine = engine_;
  }
  return engine->StatusJson();
}

void SloRunner::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto interval = config_->telemetry.slo_interval;
    if (cv_.wait_for(lock, interval, [this] { return stop_; })) break;
    if (config_->slos.empty()) continue;
    lock.unlock();
    try {
      Evaluate();
    } catch (const std::exception& e) {  // SQLite trouble: the next interval tries again
      log::error("slo evaluation: {}", e.what());
    }
    lock.lock();
  }
}

}  // namespace ficus::server
