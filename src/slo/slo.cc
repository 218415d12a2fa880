// SLI, error budget, burn rates and alert states: pure computation over counts.
#include "slo/slo.h"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "base/json.h"

namespace ficus::slo {

std::string_view SliName(Sli sli) { return sli == Sli::kAvailability ? "availability" : "latency"; }

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kPage:
      return "page";
    case Severity::kTicket:
      return "ticket";
    case Severity::kNone:
      break;
  }
  return "ok";
}

std::string Objective::Id() const { return slo + "/" + std::string(SliName(sli)); }

std::vector<Objective> ObjectivesOf(const config::Config& config) {
  std::vector<Objective> out;
  for (const config::Slo& s : config.slos) {
    Objective o;
    o.slo = s.name;
    o.routes = s.routes;
    o.window = std::chrono::duration_cast<Seconds>(s.window);
    o.min_requests = s.min_requests;
    if (s.availability) {
      o.sli = Sli::kAvailability;
      o.target = *s.availability;
      out.push_back(o);
    }
    if (s.latency) {
      o.sli = Sli::kLatency;
      o.target = s.latency->objective;
      o.threshold = s.latency->threshold;
      out.push_back(o);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Counting

uint64_t CountWithin(std::span<const uint64_t> buckets, std::chrono::microseconds threshold) {
  const auto limit = static_cast<uint64_t>(std::max<int64_t>(0, threshold.count()));
  uint64_t n = 0;
  const int last = std::min<int>(static_cast<int>(buckets.size()), observe::Histogram::kBuckets);
  for (int i = 0; i < last; ++i) {
    // The overflow bucket's bound is +Inf: never "within" a finite threshold.
    if (i == observe::Histogram::kBuckets - 1) break;
    if (observe::Histogram::UpperBoundMicros(i) > limit) break;  // bounds ascend
    n += buckets[i];
  }
  return n;
}

std::chrono::microseconds EffectiveThreshold(std::chrono::microseconds threshold) {
  uint64_t best = 0;
  for (int i = 0; i + 1 < observe::Histogram::kBuckets; ++i) {
    const uint64_t ub = observe::Histogram::UpperBoundMicros(i);
    if (static_cast<int64_t>(ub) > threshold.count()) break;
    best = ub;
  }
  return std::chrono::microseconds(best);
}

Counts RouteSource::CountsOf(const Objective& objective,
                             const std::vector<std::pair<std::string, RouteTotals>>& routes) {
  Counts c;
  for (const auto& [name, t] : routes) {
    if (!objective.routes.empty() && std::find(objective.routes.begin(), objective.routes.end(),
                                               name) == objective.routes.end()) {
      continue;
    }
    if (objective.sli == Sli::kAvailability) {
      uint64_t total = 0;
      for (uint64_t n : t.responses) total += n;
      c.total += total;
      c.good += total - t.responses[4];
    } else {
      for (uint64_t n : t.duration) c.total += n;
      c.good += CountWithin(t.duration, objective.threshold);
    }
  }
  return c;
}

Counts RouteSource::Get(const Objective& objective, Seconds window, SystemTime now) {
  return CountsOf(objective, fetch_(window, now));
}

// ---------------------------------------------------------------------------------------------
// Evaluation

double BurnRate(const Counts& c, double target) {
  if (c.total == 0) return 0;
  return (static_cast<double>(c.bad()) / static_cast<double>(c.total)) / (1 - target);
}

SloStatus Evaluate(const Objective& objective, const Counts& window_counts,
                   const std::array<Counts, kWindowCount>& counts, SystemTime at) {
  SloStatus s;
  s.objective = objective;
  s.at = at;
  s.window_counts = window_counts;
  const double budget = 1 - objective.target;
  if (window_counts.total > 0) {
    const double total = static_cast<double>(window_counts.total);
    s.sli = static_cast<double>(window_counts.good) / total;
    s.budget_remaining = 1 - static_cast<double>(window_counts.bad()) / (total * budget);
  }
  s.counts = counts;
  std::array<double, kWindowCount> error_ratio{};
  for (int i = 0; i < kWindowCount; ++i) {
    s.burn[i] = BurnRate(counts[i], objective.target);
    error_ratio[i] = counts[i].total == 0 ? 0
                                          : static_cast<double>(counts[i].bad()) /
                                                static_cast<double>(counts[i].total);
    s.enough_traffic[i] = counts[i].total > 0 && counts[i].total >= objective.min_requests;
  }
  for (size_t r = 0; r < kAlertRules.size(); ++r) {
    const AlertRule& rule = kAlertRules[r];
    // Compared as error ratio > factor x budget, exactly as the exported Prometheus rules do,
    // so both fire on the same counts.
    const double limit = rule.factor * budget;
    s.firing[r] = s.enough_traffic[rule.long_window] && s.enough_traffic[rule.short_window] &&
                  error_ratio[rule.long_window] > limit && error_ratio[rule.short_window] > limit;
    if (s.firing[r] && rule.severity > s.severity) s.severity = rule.severity;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// JSON

namespace {

std::string Rfc3339(SystemTime t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

void StatusFields(JsonWriter& w, const SloStatus& s) {
  const Objective& o = s.objective;
  w.Key("slo").String(o.slo);
  w.Key("sli").String(SliName(o.sli));
  w.Key("objective").Number(o.target);
  if (o.sli == Sli::kLatency) {
    w.Key("threshold_ms").Number(static_cast<double>(o.threshold.count()));
  }
  w.Key("routes").BeginArray();
  if (o.routes.empty()) w.String("*");
  for (const std::string& r : o.routes) w.String(r);
  w.EndArray();
  w.Key("window_seconds").Number(static_cast<double>(o.window.count()));
  w.Key("at").String(Rfc3339(s.at));
  w.Key("state").String(SeverityName(s.severity));
  w.Key("good").Number(static_cast<double>(s.window_counts.good));
  w.Key("total").Number(static_cast<double>(s.window_counts.total));
  w.Key("sli_value");
  if (s.sli) {
    w.Number(*s.sli);
  } else {
    w.Null();
  }
  w.Key("budget_remaining").Number(s.budget_remaining);
  w.Key("burn_rates").BeginObject();
  for (int i = 0; i < kWindowCount; ++i) w.Key(kWindowNames[i]).Number(s.burn[i]);
  w.EndObject();
  w.Key("requests").BeginObject();
  for (int i = 0; i < kWindowCount; ++i) {
    w.Key(kWindowNames[i]).Number(static_cast<double>(s.counts[i].total));
  }
  w.EndObject();
  w.Key("min_requests").Number(static_cast<double>(o.min_requests));
  w.Key("firing").BeginArray();
  for (size_t r = 0; r < kAlertRules.size(); ++r) {
    if (!s.firing[r]) continue;
    const AlertRule& rule = kAlertRules[r];
    w.BeginObject();
    w.Key("severity").String(SeverityName(rule.severity));
    w.Key("long").String(kWindowNames[rule.long_window]);
    w.Key("short").String(kWindowNames[rule.short_window]);
    w.Key("factor").Number(rule.factor);
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::string TransitionJson(const Transition& t) {
  JsonWriter w;
  w.BeginObject();
  if (t.test) w.Key("test").Bool(true);
  w.Key("from").String(SeverityName(t.from));
  w.Key("to").String(SeverityName(t.status.severity));
  StatusFields(w, t.status);
  w.EndObject();
  return w.Take();
}

std::string StatusJson(const std::vector<SloStatus>& statuses) {
  JsonWriter w;
  w.BeginObject();
  w.Key("slos").BeginArray();
  for (const SloStatus& s : statuses) {
    w.BeginObject();
    StatusFields(w, s);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

// ---------------------------------------------------------------------------------------------
// Engine

Engine::Engine(std::shared_ptr<const config::Config> config, Notifier* notifier)
    : config_(std::move(config)), objectives_(ObjectivesOf(*config_)), notifier_(notifier) {}

std::vector<Transition> Engine::Update(Source& source, SystemTime now) {
  std::vector<SloStatus> next;
  next.reserve(objectives_.size());
  for (const Objective& o : objectives_) {
    std::array<Counts, kWindowCount> counts;
    for (int i = 0; i < kWindowCount; ++i) counts[i] = source.Get(o, kWindows[i], now);
    next.push_back(Evaluate(o, source.Get(o, o.window, now), counts, now));
  }
  std::vector<Transition> transitions;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < next.size(); ++i) {
      // Before the first evaluation every objective is "ok". Matched by id, not position:
      // statuses_ may come from the engine of the previous config (CarryOver).
      Severity before = Severity::kNone;
      const std::string id = next[i].objective.Id();
      for (const SloStatus& s : statuses_) {
        if (s.objective.Id() == id) before = s.severity;
      }
      if (next[i].severity != before) transitions.push_back({before, next[i]});
    }
    statuses_ = next;
  }
  if (notifier_) {
    for (const Transition& t : transitions) {
      for (const config::Slo& s : config_->slos) {
        if (s.name == t.status.objective.slo && !s.webhooks.empty()) {
          notifier_->Post(s.webhooks, TransitionJson(t));
        }
      }
    }
  }
  return transitions;
}

void Engine::CarryOver(const Engine& previous) {
  std::vector<SloStatus> old = previous.Status();
  std::lock_guard lock(mu_);
  statuses_.clear();
  for (const Objective& o : objectives_) {
    for (const SloStatus& s : old) {
      if (s.objective.Id() != o.Id()) continue;
      statuses_.push_back(s);
      statuses_.back().objective = o;  // the new definition; the state is what carries over
    }
  }
}

std::vector<SloStatus> Engine::Status() const {
  std::lock_guard lock(mu_);
  return statuses_;
}

}  // namespace ficus::slo
