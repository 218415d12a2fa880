// ClusterShared: endpoint health, ejection and failed connects, circuit breakers, counters —
// shared by every worker through atomics. See upstream.h.
#include <algorithm>
#include <bit>

#include "upstream/upstream.h"

namespace ficus::upstream {

namespace {
constexpr std::memory_order kRelaxed = std::memory_order_relaxed;
}  // namespace

struct ClusterShared::Endpoint {
  std::atomic<uint32_t> consecutive_5xx{0};
  std::atomic<uint32_t> consecutive_gateway{0};
  std::atomic<int64_t> ejected_until_ms{0};  // 0 = not ejected
  std::atomic<uint32_t> ejections{0};        // back-off multiplier
  std::atomic<bool> healthy{true};           // active checks (healthy until they say not)
  // Written by the Monitor thread only (atomic because a reload copies them concurrently).
  std::atomic<bool> ejection_seen{false};  // the monitor logged the current ejection
  std::atomic<int64_t> decay_at_ms{0};     // when the multiplier next drops by one
  std::atomic<uint32_t> check_passes{0};
  std::atomic<uint32_t> check_failures{0};
  // Failed connects: marks in a row (the probe back-off; 0 = not marked) and when the monitor
  // probes next. Written before the bit is set, so whoever sees the bit sees them.
  std::atomic<uint32_t> connect_failures{0};
  std::atomic<int64_t> probe_at_ms{0};
  std::atomic<bool> connect_seen{false};  // the monitor logged the current mark
  std::atomic<uint32_t> recoveries{0};    // times it came back (workers' balancers forget it)
};

namespace {
constexpr uint64_t Bit(size_t i) { return uint64_t{1} << (i % 64); }
}  // namespace

ClusterShared::ClusterShared(const config::Cluster& cluster, std::vector<net::Address> addresses,
                             const ClusterShared* previous)
    : cluster_(cluster),
      addresses_(std::move(addresses)),
      words_(std::max<size_t>(1, (addresses_.size() + 63) / 64)),  // AnyDown reads one at least
      endpoints_(new Endpoint[addresses_.size()]),
      ejected_bits_(new std::atomic<uint64_t>[mask_words()]),
      unhealthy_bits_(new std::atomic<uint64_t>[mask_words()]),
      connect_failed_bits_(new std::atomic<uint64_t>[mask_words()]) {
  for (size_t w = 0; w < mask_words(); ++w) {
    ejected_bits_[w].store(0, kRelaxed);
    unhealthy_bits_[w].store(0, kRelaxed);
    connect_failed_bits_[w].store(0, kRelaxed);
  }
  filters_ = cluster_.outlier_detection.enabled || cluster_.health_check.enabled;
  const auto& od = cluster_.outlier_detection;
  if (od.enabled && od.max_ejection_percent > 0) {
    max_ejected_ =
        std::max<int>(1, static_cast<int>(addresses_.size() * od.max_ejection_percent / 100));
  }
  const auto& cb = cluster_.circuit_breakers;
  limits_[ClusterCounters::kMaxConnections] = cb.max_connections;
  limits_[ClusterCounters::kMaxPending] = cb.max_pending;
  limits_[ClusterCounters::kMaxRequests] = cb.max_requests;
  limits_[ClusterCounters::kMaxRetries] = cb.max_retries;

  if (previous && previous->name() == cluster_.name) {
    counters_ = previous->counters_;
    // Endpoints that stayed (same address) keep their health and ejection.
    for (size_t i = 0; i < addresses_.size(); ++i) {
      for (size_t j = 0; j < previous->addresses_.size(); ++j) {
        if (!(previous->addresses_[j] == addresses_[i])) continue;
        const Endpoint& from = previous->endpoints_[j];
        Endpoint& to = endpoints_[i];
        to.consecutive_5xx.store(from.consecutive_5xx.load(kRelaxed), kRelaxed);
        to.consecutive_gateway.store(from.consecutive_gateway.load(kRelaxed), kRelaxed);
        to.ejections.store(from.ejections.load(kRelaxed), kRelaxed);
        to.ejection_seen.store(from.ejection_seen.load(kRelaxed), kRelaxed);
        to.decay_at_ms.store(from.decay_at_ms.load(kRelaxed), kRelaxed);
        to.check_passes.store(from.check_passes.load(kRelaxed), kRelaxed);
        to.check_failures.store(from.check_failures.load(kRelaxed), kRelaxed);
        const int64_t until = from.ejected_until_ms.load(kRelaxed);
        if (until != 0 && od.enabled) {
          to.ejected_until_ms.store(until, kRelaxed);
          ejected_bits_[i / 64].fetch_or(uint64_t{1} << (i % 64), kRelaxed);
          ejected_count_.fetch_add(1, kRelaxed);
        }
        const bool healthy = from.healthy.load(kRelaxed) || !cluster_.health_check.enabled;
        to.healthy.store(healthy, kRelaxed);
        if (!healthy) unhealthy_bits_[i / 64].fetch_or(uint64_t{1} << (i % 64), kRelaxed);
        to.connect_failures.store(from.connect_failures.load(kRelaxed), kRelaxed);
        to.probe_at_ms.store(from.probe_at_ms.load(kRelaxed), kRelaxed);
        to.connect_seen.store(from.connect_seen.load(kRelaxed), kRelaxed);
        if (previous->connect_failed(j)) connect_failed_bits_[i / 64].fetch_or(Bit(i), kRelaxed);
        break;
      }
    }
  } else {
    counters_ = std::make_shared<ClusterCounters>();
  }
}

ClusterShared::~ClusterShared() = default;

bool ClusterShared::AvailableMask(std::span<uint64_t> words) const {
  const size_t n = addresses_.size();
  size_t available = 0;
  bool all = true;
  for (size_t w = 0; w < mask_words(); ++w) {
    const size_t bits = std::min<size_t>(64, n - w * 64);
    const uint64_t valid = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    const uint64_t down = ejected_bits_[w].load(kRelaxed) | unhealthy_bits_[w].load(kRelaxed) |
                          connect_failed_bits_[w].load(kRelaxed);
    words[w] = valid & ~down;
    available += static_cast<size_t>(std::popcount(words[w]));
    all = all && (down & valid) == 0;
  }
  if (all) return false;
  if (available * 100 < size_t{cluster_.panic_threshold} * n || available == 0) {
    // Panic: too few left to carry the load, so use every endpoint, as Envoy does, but never
    // one whose last connect failed: a try there fails at once and costs a retry, which the
    // budget may not have; spreading over hosts that do accept is the point of panic mode.
    counters_->panics.fetch_add(1, kRelaxed);
    return ConnectableMask(words);
  }
  return true;
}

bool ClusterShared::ConnectableMask(std::span<uint64_t> words) const {
  const size_t n = addresses_.size();
  bool any_failed = false, any_left = false;
  for (size_t w = 0; w < mask_words(); ++w) {
    const size_t bits = std::min<size_t>(64, n - w * 64);
    const uint64_t valid = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    const uint64_t failed = connect_failed_bits_[w].load(kRelaxed) & valid;
    words[w] = valid & ~failed;
    any_failed = any_failed || failed != 0;
    any_left = any_left || words[w] != 0;
  }
  // None failed: no restriction. All failed: every try is a probe, so use them all.
  return any_failed && any_left;
}

void ClusterShared::ConnectFailed(size_t i, int64_t now_ms) {
  std::atomic<uint64_t>& word = connect_failed_bits_[i / 64];
  if ((word.load(kRelaxed) & Bit(i)) != 0) return;  // already down: keep the line shared
  Endpoint& e = endpoints_[i];
  const uint32_t k = e.connect_failures.load(kRelaxed) + 1;
  e.connect_failures.store(k, kRelaxed);
  e.probe_at_ms.store(now_ms + ProbeDelayMs(k), kRelaxed);
  if ((word.fetch_or(Bit(i), std::memory_order_release) & Bit(i)) == 0) {
    counters_->connect_markdowns.fetch_add(1, kRelaxed);
  }
}

void ClusterShared::ConnectSucceeded(size_t i) {
  Endpoint& e = endpoints_[i];
  // Marked (or probing after a mark) means connect_failures != 0: the common case reads one
  // word and writes nothing.
  if (e.connect_failures.load(kRelaxed) == 0) return;
  e.connect_failures.store(0, kRelaxed);
  if ((connect_failed_bits_[i / 64].fetch_and(~Bit(i), std::memory_order_release) & Bit(i)) != 0) {
    Recovered(i);
  }
}

void ClusterShared::Recovered(size_t i) {
  endpoints_[i].recoveries.fetch_add(1, kRelaxed);
  recoveries_.fetch_add(1, std::memory_order_release);
}

uint32_t ClusterShared::recoveries(size_t i) const {
  return endpoints_[i].recoveries.load(kRelaxed);
}

int64_t ClusterShared::ProbeDelayMs(uint32_t k) {
  constexpr int64_t kBaseMs = 250, kMaxMs = 5000;
  return k >= 6 ? kMaxMs : std::min<int64_t>(kMaxMs, kBaseMs << (k - 1));
}

void ClusterShared::SweepConnectFailures(int64_t now_ms, std::vector<size_t>* marked,
                                         std::vector<size_t>* cleared, std::vector<size_t>* probe) {
  for (size_t i = 0; i < addresses_.size(); ++i) {
    Endpoint& e = endpoints_[i];
    if (!connect_failed(i)) {
      if (e.connect_seen.load(kRelaxed)) {
        e.connect_seen.store(false, kRelaxed);
        cleared->push_back(i);
      }
      continue;
    }
    if (!e.connect_seen.load(kRelaxed)) {
      e.connect_seen.store(true, kRelaxed);
      marked->push_back(i);
    }
    const int64_t at = e.probe_at_ms.load(kRelaxed);
    if (now_ms >= at) {
      // Pushed back until the result comes (the probe's own timeout is shorter than this).
      e.probe_at_ms.store(now_ms + ProbeDelayMs(e.connect_failures.load(kRelaxed)) +
                              cluster_.connect_timeout.count(),
                          kRelaxed);
      probe->push_back(i);
    }
  }
}

void ClusterShared::ProbeResult(size_t i, bool connected, int64_t now_ms) {
  if (connected) {
    ConnectSucceeded(i);
    return;
  }
  if (!connect_failed(i)) return;  // a request's connect got through meanwhile
  Endpoint& e = endpoints_[i];
  const uint32_t k = e.connect_failures.load(kRelaxed) + 1;
  e.connect_failures.store(k, kRelaxed);
  e.probe_at_ms.store(now_ms + ProbeDelayMs(k), kRelaxed);
}

void ClusterShared::Report(size_t i, Outcome outcome, int64_t now_ms) {
  const auto& od = cluster_.outlier_detection;
  if (!od.enabled) return;
  Endpoint& e = endpoints_[i];
  if (outcome == Outcome::kSuccess) {
    // Load first: the common case writes nothing, so the line stays shared between workers.
    if (e.consecutive_5xx.load(kRelaxed) != 0) e.consecutive_5xx.store(0, kRelaxed);
    if (e.consecutive_gateway.load(kRelaxed) != 0) e.consecutive_gateway.store(0, kRelaxed);
    return;
  }
  const uint32_t c5 = e.consecutive_5xx.fetch_add(1, kRelaxed) + 1;
  uint32_t cg = 0;
  if (outcome == Outcome::kGatewayFailure) {
    cg = e.consecutive_gateway.fetch_add(1, kRelaxed) + 1;
  } else if (e.consecutive_gateway.load(kRelaxed) != 0) {
    e.consecutive_gateway.store(0, kRelaxed);
  }
  if ((od.consecutive_5xx != 0 && c5 >= od.consecutive_5xx) ||
      (od.consecutive_gateway_failures != 0 && cg >= od.consecutive_gateway_failures)) {
    Eject(i, now_ms);
  }
}

void ClusterShared::Eject(size_t i, int64_t now_ms) {
  Endpoint& e = endpoints_[i];
  if (e.ejected_until_ms.load(kRelaxed) != 0) return;
  // Reserve a slot under max_ejection_percent first.
  int cur = ejected_count_.load(kRelaxed);
  do {
    if (cur >= max_ejected_) return;
  } while (!ejected_count_.compare_exchange_weak(cur, cur + 1, kRelaxed));
  const auto& od = cluster_.outlier_detection;
  const uint32_t k = e.ejections.load(kRelaxed) + 1;
  const int64_t duration =
      std::min<int64_t>(od.max_ejection_time.count(), od.base_ejection_time.count() * k);
  int64_t expected = 0;
  if (!e.ejected_until_ms.compare_exchange_strong(expected, now_ms + duration, kRelaxed)) {
    ejected_count_.fetch_sub(1, kRelaxed);  // another worker ejected it first
    return;
  }
  e.ejections.store(k, kRelaxed);
  e.consecutive_5xx.store(0, kRelaxed);
  e.consecutive_gateway.store(0, kRelaxed);
  ejected_bits_[i / 64].fetch_or(uint64_t{1} << (i % 64), std::memory_order_release);
  counters_->ejections.fetch_add(1, kRelaxed);
}

void ClusterShared::Uneject(size_t i) {
  Endpoint& e = endpoints_[i];
  int64_t until = e.ejected_until_ms.load(kRelaxed);
  if (until == 0 || !e.ejected_until_ms.compare_exchange_strong(until, 0, kRelaxed)) return;
  ejected_bits_[i / 64].fetch_and(~(uint64_t{1} << (i % 64)), std::memory_order_release);
  ejected_count_.fetch_sub(1, kRelaxed);
  Recovered(i);
}

bool ClusterShared::TryAcquire(ClusterCounters::Breaker b) {
  const uint32_t limit = limits_[b];
  if (limit == 0) return true;
  std::atomic<int64_t>& open = counters_->open[b];
  if (open.fetch_add(1, kRelaxed) >= limit) {
    open.fetch_sub(1, kRelaxed);
    counters_->breaker_rejections[b].fetch_add(1, kRelaxed);
    return false;
  }
  return true;
}

void ClusterShared::Release(ClusterCounters::Breaker b) {
  if (limits_[b] != 0) counters_->open[b].fetch_sub(1, kRelaxed);
}

bool ClusterShared::healthy(size_t i) const { return endpoints_[i].healthy.load(kRelaxed); }
bool ClusterShared::ejected(size_t i) const {
  return endpoints_[i].ejected_until_ms.load(kRelaxed) != 0;
}
bool ClusterShared::connect_failed(size_t i) const {
  return (connect_failed_bits_[i / 64].load(kRelaxed) & Bit(i)) != 0;
}
uint32_t ClusterShared::ejections(size_t i) const { return endpoints_[i].ejections.load(kRelaxed); }

void ClusterShared::Sweep(int64_t now_ms, std::vector<size_t>* ejected,
                          std::vector<size_t>* unejected) {
  const int64_t base = cluster_.outlier_detection.base_ejection_time.count();
  for (size_t i = 0; i < addresses_.size(); ++i) {
    Endpoint& e = endpoints_[i];
    const int64_t until = e.ejected_until_ms.load(kRelaxed);
    if (until != 0) {
      if (!e.ejection_seen) {
        e.ejection_seen = true;
        ejected->push_back(i);
      }
      if (now_ms >= until) {
        Uneject(i);
        e.ejection_seen = false;
        e.decay_at_ms = now_ms + base;
        unejected->push_back(i);
      }
    } else if (e.ejections.load(kRelaxed) > 0 && now_ms >= e.decay_at_ms) {
      // A base_ejection_time without an ejection takes one step off the back-off.
      if (e.decay_at_ms != 0) e.ejections.fetch_sub(1, kRelaxed);
      e.decay_at_ms = now_ms + base;
    }
  }
}

bool ClusterShared::CheckResult(size_t i, bool passed, bool connect_failed, int64_t now_ms) {
  Endpoint& e = endpoints_[i];
  const auto& hc = cluster_.health_check;
  if (connect_failed) {
    ConnectFailed(i, now_ms);
  } else {
    ConnectSucceeded(i);  // passed or not, the check connected
  }
  if (passed) {
    counters_->health_checks_passed.fetch_add(1, kRelaxed);
    e.check_failures = 0;
    ++e.check_passes;
    if (!e.healthy.load(kRelaxed) && e.check_passes >= hc.healthy_threshold) {
      e.healthy.store(true, kRelaxed);
      unhealthy_bits_[i / 64].fetch_and(~(uint64_t{1} << (i % 64)), std::memory_order_release);
      Recovered(i);
      // A host that passes its checks again is back for good: its ejection ends too.
      if (e.ejected_until_ms.load(kRelaxed) != 0) {
        Uneject(i);
        e.ejection_seen = false;
      }
      return true;
    }
    return false;
  }
  counters_->health_checks_failed.fetch_add(1, kRelaxed);
  e.check_passes = 0;
  ++e.check_failures;
  if (e.healthy.load(kRelaxed) && e.check_failures >= hc.unhealthy_threshold) {
    e.healthy.store(false, kRelaxed);
    unhealthy_bits_[i / 64].fetch_or(uint64_t{1} << (i % 64), std::memory_order_release);
    return true;
  }
  return false;
}

void RenderResilienceMetrics(std::span<const std::shared_ptr<ClusterShared>> clusters,
                             std::string& out) {
  auto label = [](std::string& o, const std::string& v) {
    for (char c : v) {
      if (c == '\\' || c == '"') o.push_back('\\');
      if (c == '\n') {
        o.append("\\n");
        continue;
      }
      o.push_back(c);
    }
  };
  auto per_endpoint = [&](const char* name, const char* help, auto value) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" gauge\n");
    for (const auto& c : clusters) {
      for (size_t i = 0; i < c->endpoint_count(); ++i) {
        out.append(name).append("{cluster=\"");
        label(out, c->name());
        out.append("\",endpoint=\"");
        label(out, c->address(i).ToString());
        out.append("\"} ").append(std::to_string(value(*c, i))).append("\n");
      }
    }
  };
  per_endpoint("ficus_upstream_endpoint_healthy",
               "1 when active health checks pass (or none are configured)",
               [](const ClusterShared& c, size_t i) { return c.healthy(i) ? 1 : 0; });
  per_endpoint("ficus_upstream_endpoint_ejected", "1 while outlier detection ejects the endpoint",
               [](const ClusterShared& c, size_t i) { return c.ejected(i) ? 1 : 0; });
  per_endpoint("ficus_upstream_endpoint_ejections", "The endpoint's ejection back-off multiplier",
               [](const ClusterShared& c, size_t i) { return c.ejections(i); });
  per_endpoint("ficus_upstream_endpoint_connect_failed",
               "1 while the endpoint is down for picks because its last connect failed",
               [](const ClusterShared& c, size_t i) { return c.connect_failed(i) ? 1 : 0; });
  auto per_cluster = [&](const char* name, const char* type, const char* help, auto value) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    for (const auto& c : clusters) {
      out.append(name).append("{cluster=\"");
      label(out, c->name());
      out.append("\"} ").append(std::to_string(value(c->counters()))).append("\n");
    }
  };
  per_cluster("ficus_upstream_ejections_total", "counter", "Outlier ejections",
              [](const ClusterCounters& k) { return k.ejections.load(kRelaxed); });
  per_cluster("ficus_upstream_retries_total", "counter", "Retries started",
              [](const ClusterCounters& k) { return k.retries.load(kRelaxed); });
  per_cluster("ficus_upstream_retry_budget_exhausted_total", "counter",
              "Retries not made because the retry budget was used up",
              [](const ClusterCounters& k) { return k.retry_budget_exhausted.load(kRelaxed); });
  per_cluster("ficus_upstream_panic_total", "counter",
              "Picks that used every endpoint because too few were available",
              [](const ClusterCounters& k) { return k.panics.load(kRelaxed); });
  per_cluster("ficus_upstream_connect_markdowns_total", "counter",
              "Endpoints marked down for picks because a connect to them failed",
              [](const ClusterCounters& k) { return k.connect_markdowns.load(kRelaxed); });
  const char* checks = "ficus_upstream_health_checks_total";
  out.append("# HELP ").append(checks).append(" Active health checks by result\n");
  out.append("# TYPE ").append(checks).append(" counter\n");
  for (const auto& c : clusters) {
    for (int passed = 1; passed >= 0; --passed) {
      out.append(checks).append("{cluster=\"");
      label(out, c->name());
      out.append(passed ? "\",result=\"pass\"} " : "\",result=\"fail\"} ");
      const auto& k = c->counters();
      out.append(std::to_string(passed ? k.health_checks_passed.load(kRelaxed)
                                       : k.health_checks_failed.load(kRelaxed)));
      out.append("\n");
    }
  }
  const char* rej = "ficus_upstream_breaker_rejections_total";
  out.append("# HELP ").append(rej).append(" Requests or retries refused by a circuit breaker\n");
  out.append("# TYPE ").append(rej).append(" counter\n");
  for (const auto& c : clusters) {
    for (int b = 0; b < ClusterCounters::kBreakers; ++b) {
      out.append(rej).append("{cluster=\"");
      label(out, c->name());
      out.append("\",breaker=\"").append(ClusterCounters::kBreakerNames[b]).append("\"} ");
      out.append(std::to_string(c->counters().breaker_rejections[b].load(kRelaxed)));
      out.append("\n");
    }
  }
}

}  // namespace ficus::upstream
