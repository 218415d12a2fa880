// Options -> Plan: every option is parsed and checked before any traffic, a scenario's settings
// fill in what the command line left unset, and the request of a URL run is serialized once.
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "load/internal/engine.h"

namespace ficus::load {
namespace {

constexpr const char* kSendsNothing =
    "the load profile sends no requests (its rates are all 0 or too low)";

// A scenario file rather than a URL: no scheme, and a YAML name or an existing file.
bool IsScenarioPath(const std::string& s) {
  if (s.find("://") != std::string::npos) return false;
  auto ends = [&s](std::string_view x) {
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  struct stat st;
  return ends(".yaml") || ends(".yml") || (::stat(s.c_str(), &st) == 0 && S_ISREG(st.st_mode));
}

bool GivesLoad(const Options& o) {
  return o.rate != 0 || !o.profile.empty() || !o.stages.empty() || o.closed;
}

// Loads the scenario into the plan and fills the options the command line left unset from it
// (the command line wins over the file). Returns the URL to send to.
Outcome<std::string> TakeScenario(Options& o, Plan& plan) {
  std::vector<std::string> errors;
  std::optional<internal::Scenario> scenario = internal::LoadScenario(o.url, &errors);
  if (!scenario) {
    std::string all;
    for (const auto& e : errors) all.append(all.empty() ? "" : "\n").append(e);
    return Failed(std::move(all));
  }
  if (o.method != "GET" || !o.headers.empty() || o.body)
    return Failed("--method, --header and --body are for a URL; a scenario sets them per request");
  std::string url = !o.target.empty() ? o.target : scenario->target;
  if (url.empty())
    return Failed(o.url +
                  ": the scenario has no target: add target: http://HOST:PORT or give --target");
  if (!GivesLoad(o)) {
    o.rate = scenario->rate;
    o.profile = scenario->profile;
    o.stages = scenario->stages;
    o.closed = scenario->closed;
  }
  // The file's duration, unless stages (theirs or the command line's) set the length.
  if (o.duration.empty() && o.stages.empty()) o.duration = scenario->duration;
  if (o.connections < 0 && scenario->connections > 0) o.connections = scenario->connections;
  if (o.threads < 0 && scenario->threads > 0) o.threads = scenario->threads;
  if (o.timeout.empty()) o.timeout = scenario->timeout;
  // The file's thresholds first, then the command line's.
  o.thresholds.insert(o.thresholds.begin(), scenario->thresholds.begin(),
                      scenario->thresholds.end());
  plan.seed = scenario->seed;
  plan.scenario = std::make_shared<const internal::Scenario>(std::move(*scenario));
  return url;
}

// `ficus replay`: the capture and its timeline (speed, gaps, filters, looping).
Outcome<> TakeCapture(const Options& o, Plan& plan) {
  std::string error;
  internal::CaptureOptions co;
  std::string speed = o.speed;
  if (!speed.empty() && (speed.back() == 'x' || speed.back() == 'X')) speed.pop_back();
  char* end = nullptr;
  co.speed = std::strtod(speed.c_str(), &end);
  if (speed.empty() || end != speed.c_str() + speed.size() || !(co.speed > 0) ||
      !std::isfinite(co.speed) || co.speed > 1e6)
    return Failed("--speed must be a positive factor such as 2x or 0.5x, got '" + o.speed + "'");
  if (!o.max_wait.empty()) {
    auto w = ParseDuration(o.max_wait, &error);
    if (!w) return Failed("--max-wait: " + error);
    co.max_wait_ns = *w;
  }
  for (const auto& f : o.filters) {
    const size_t eq = f.find('=');
    internal::CaptureOptions::Filter filter;
    filter.key = f.substr(0, eq);
    filter.negate = !filter.key.empty() && filter.key.back() == '!';
    if (filter.negate) filter.key.pop_back();
    const bool header = filter.key.rfind("header:", 0) == 0;
    if (header &&
        (filter.key.size() == 7 || filter.key.find_first_of(": \t\r\n", 7) != std::string::npos))
      return Failed("--filter '" + f + "': header:NAME needs a field name");
    if (eq == std::string::npos ||
        (filter.key != "method" && filter.key != "path" && filter.key != "route" && !header))
      return Failed("--filter '" + f +
                    "': expected method=M, path=PREFIX, route=NAME or header:NAME=VALUE (!= "
                    "to leave those out)");
    filter.value = f.substr(eq + 1);
    co.filters.push_back(std::move(filter));
  }
  co.loop = o.loop;
  co.host_header = plan.url.host_header;
  co.extra_headers = plan.extra_headers;
  if (!o.host.empty()) {
    for (char ch : o.host) {
      if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
        return Failed("--host '" + o.host + "': expected a host name such as example.com:8080");
    }
    co.host_override = o.host;
  }
  std::optional<internal::Capture> capture = internal::LoadCapture(o.replay, co, &error);
  if (!capture) return Failed(error);
  if (!o.loop) {
    if (!o.duration.empty()) return Failed("--duration is for --loop (one pass ends by itself)");
    plan.duration_ns = capture->requests.back().at_ns + 1;
  } else if (o.duration.empty()) {
    plan.duration_ns = internal::kUnboundedNanos;  // until SIGINT/SIGTERM
  }
  plan.profile_text = o.replay + " at " + o.speed;
  plan.capture = std::make_shared<const internal::Capture>(std::move(*capture));
  return {};
}

// The open model's rate over time: --rate, --profile or --stage (one of them), which also
// sets the run's length.
Outcome<> TakeProfile(const Options& o, Plan& plan) {
  int given = (o.rate != 0 ? 1 : 0) + (!o.profile.empty() ? 1 : 0) + (!o.stages.empty() ? 1 : 0);
  if (given > 1) return Failed("give one of --rate, --profile and --stage");
  if (o.closed && given > 0)
    return Failed("--closed sends as fast as responses come back: no --rate, --profile or --stage");
  if (o.closed) return {};
  std::string error;
  if (!o.stages.empty()) {
    auto p = ParseStages(o.stages, &error);
    if (!p) return Failed(error);
    if (!o.duration.empty() && plan.duration_ns != p->duration_ns())
      return Failed(std::string("--duration ")
                        .append(o.duration)
                        .append(" does not match the sum of the stages (")
                        .append(std::to_string(p->duration_ns() / 1'000'000))
                        .append("ms); leave it out"));
    plan.profile = std::move(*p);
    for (const auto& stage : o.stages)
      plan.profile_text.append(plan.profile_text.empty() ? "" : " ").append(stage);
  } else if (!o.profile.empty()) {
    auto p = ParseProfile(o.profile, plan.duration_ns, &error);
    if (!p) return Failed(error);
    plan.profile = std::move(*p);
    plan.profile_text = o.profile;
  } else {
    if (!(o.rate > 0 && std::isfinite(o.rate)))
      return Failed(
          "--rate must be > 0 (requests per second), or give --profile or --stage; use --closed "
          "for max throughput");
    plan.profile = Profile::Constant(o.rate, plan.duration_ns);
  }
  if (!(plan.profile.total() >= 1)) return Failed(kSendsNothing);
  plan.duration_ns = plan.profile.duration_ns();
  return {};
}

// The request of a URL run, as sent: the request line, Host and User-Agent unless given, the
// -H fields, Content-Length for a body.
Outcome<std::string> SerializeRequest(const Options& o, const Url& url) {
  std::string req = std::string(o.method).append(" ").append(url.target).append(" HTTP/1.1\r\n");
  bool has_host = false, has_agent = false, has_length = false;
  std::string extra;
  for (const auto& h : o.headers) {
    size_t colon = h.find(':');
    std::string_view name = std::string_view(h).substr(0, colon);
    if (colon == std::string::npos || !internal::IsToken(name) ||
        h.find_first_of("\r\n") != std::string::npos)
      return Failed(std::string("-H '").append(h).append("': expected 'Name: value'"));
    std::string_view value = std::string_view(h).substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    if (http::EqualsIgnoreCase(name, "host")) has_host = true;
    if (http::EqualsIgnoreCase(name, "user-agent")) has_agent = true;
    if (http::EqualsIgnoreCase(name, "content-length") ||
        http::EqualsIgnoreCase(name, "transfer-encoding"))
      has_length = true;
    extra.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_host) req.append("Host: ").append(url.host_header).append("\r\n");
  if (!has_agent) req.append("User-Agent: ficus-load\r\n");
  req.append(extra);
  if (o.body && !has_length)
    req.append("Content-Length: ").append(std::to_string(o.body->size())).append("\r\n");
  req.append("\r\n");
  if (o.body) req.append(*o.body);
  return req;
}

}  // namespace

Outcome<> Plan::SetConstantRate(double rate, int64_t length_ns) {
  Profile constant = Profile::Constant(rate, length_ns);
  if (!(constant.total() >= 1)) return Failed(kSendsNothing);
  closed = false;
  profile = std::move(constant);
  profile_text.clear();
  duration_ns = length_ns;
  return {};
}

Outcome<Plan> PlanFrom(const Options& given) {
  Options o = given;
  Plan plan;
  if (!o.replay.empty()) plan.who = "ficus replay";
  if (!o.synthetic_key.empty()) {
    if (o.synthetic_key.size() != 32 ||
        o.synthetic_key.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
      return Failed("the synthetic key must be 32 hex digits");
    plan.extra_headers = "X-Ficus-Synthetic: " + o.synthetic_key + "\r\n";
  }
  std::string url_text = o.url;
  if (!o.replay.empty()) {
    if (o.target.empty()) return Failed("--target http://HOST:PORT is required");
    url_text = o.target;
    if (GivesLoad(o))
      return Failed("a replay keeps the capture's timing: no --rate, --profile, --stage, --closed");
  } else if (IsScenarioPath(o.url)) {
    Outcome<std::string> target = TakeScenario(o, plan);
    if (!target) return Failed(target.message());
    url_text = *target;
  } else if (!o.target.empty()) {
    return Failed("--target is for a scenario file or a replay");
  }
  if (o.connections < 0) o.connections = 64;
  if (o.threads < 0) o.threads = 1;
  if (o.timeout.empty()) o.timeout = "10s";

  std::string error;
  auto url = ParseUrl(url_text, &error);
  if (!url) return Failed(error);
  plan.url = *url;
  plan.duration_ns = 10'000'000'000;
  if (!o.duration.empty()) {
    auto duration = ParseDuration(o.duration, &error);
    if (!duration) return Failed("--duration: " + error);
    if (*duration <= 0) return Failed("--duration must be positive, got '" + o.duration + "'");
    plan.duration_ns = *duration;
  }
  auto timeout = ParseDuration(o.timeout, &error);
  if (!timeout) return Failed("--timeout: " + error);
  if (*timeout <= 0) return Failed("--timeout must be positive, got '" + o.timeout + "'");
  plan.timeout_ns = *timeout;
  Outcome<> load = !o.replay.empty() ? TakeCapture(o, plan) : TakeProfile(o, plan);
  if (!load) return Failed(load.message());
  if (o.connections < 1) return Failed("--connections must be >= 1");
  if (o.threads < 1) return Failed("--threads must be >= 1");
  if (o.backlog < 0) return Failed("--backlog must be >= 0");
  if (!internal::IsToken(o.method))
    return Failed(std::string("--method '").append(o.method).append("' is not an HTTP token"));
  for (const auto& text : o.thresholds) {
    auto t = ParseThreshold(text, &error);
    if (!t) return Failed(error);
    plan.thresholds.push_back(*t);
  }
  try {
    net::MakeAddress(url->ip, url->port);
  } catch (const std::exception& e) {
    return Failed(e.what());
  }
  plan.method = o.method;
  plan.closed = o.closed;
  plan.connections = o.connections;
  plan.threads = std::min(o.threads, o.connections);
  plan.backlog = o.backlog;
  if (!o.closed && !plan.capture && plan.profile.peak_rate() / plan.threads > 1e7)
    return Failed(o.rate != 0 ? "--rate is too high" : "the profile's peak rate is too high");
  if (!plan.scenario && !plan.capture) {
    if (!o.synthetic_key.empty()) o.headers.push_back("X-Ficus-Synthetic: " + o.synthetic_key);
    Outcome<std::string> request = SerializeRequest(o, *url);
    if (!request) return Failed(request.message());
    plan.request = std::move(*request);
  }
  plan.json = o.json;
  plan.html = o.html;
  plan.quiet = o.quiet;
  return plan;
}

}  // namespace ficus::load
