// Building each finding's load: scenario requests filtered by the route that serves them (or
// by the client key that sends them), with the run's synthetic key, written as scenario files.
#include "prove/internal/workload.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/regex.hpp>
#include <fstream>

#include "base/text.h"

namespace ficus::prove::internal {
namespace {

std::string Str(const YAML::Node& n, const char* key, const char* fallback = "") {
  return n[key] && n[key].IsScalar() ? n[key].as<std::string>() : fallback;
}

bool Serves(const config::Route& r, const std::string& method, const std::string& path) {
  const config::RouteMatch& m = r.match;
  if (!m.methods.empty() &&
      std::find(m.methods.begin(), m.methods.end(), method) == m.methods.end())
    return false;
  std::string literal = path.substr(0, path.find("{{"));
  const bool templated = literal.size() < path.size();
  literal = literal.substr(0, literal.find('?'));
  if (!m.path.empty()) return !templated && literal == m.path;
  if (!m.path_prefix.empty()) return literal.rfind(m.path_prefix, 0) == 0;
  if (!m.path_regex.empty()) {
    if (templated) return false;
    try {  // as the route table matches: ECMAScript, the whole path
      return boost::regex_match(literal, boost::regex(m.path_regex, boost::regex::ECMAScript));
    } catch (const boost::regex_error&) {
      return false;
    }
  }
  return true;
}

// The header a client key is read from, and its value ("key:V" -> X-Api-Key: V).
std::pair<std::string, std::string> KeyHeader(const std::string& key) {
  if (key.rfind("key:", 0) == 0) return {"X-Api-Key", key.substr(4)};
  if (key.rfind("user:", 0) == 0) return {"X-User", key.substr(5)};
  return {};
}

YAML::Node Request(const std::string& name, const std::string& method, const std::string& path,
                   const std::string& body) {
  YAML::Node r;
  r["name"] = name;
  r["method"] = method;
  r["path"] = path;
  if (!body.empty()) r["body"] = body;
  return r;
}

class ScenarioWriter {
 public:
  explicit ScenarioWriter(const WorkloadContext& cx) : cx_(cx) {
    if (!cx.scenario_text.empty()) source_ = YAML::Load(cx.scenario_text);
  }
  bool has_scenario() const { return source_.IsMap() && source_["requests"].IsSequence(); }
  const YAML::Node& source() const { return source_; }

  // A scenario file with these requests (headers gain the synthetic key); its path.
  Outcome<std::string> Write(const std::vector<YAML::Node>& requests, const std::string& tag) {
    YAML::Node doc;
    doc["target"] = cx_.base_url;
    if (has_scenario()) {
      for (const char* key : {"seed", "variables"})
        if (source_[key]) doc[key] = YAML::Clone(source_[key]);
    }
    doc["variables"]["ficus_prove_n"] = "counter";
    YAML::Node list(YAML::NodeType::Sequence);
    for (const YAML::Node& r : requests) {
      YAML::Node copy = YAML::Clone(r);
      if (!cx_.synthetic_key.empty()) copy["headers"]["X-Ficus-Synthetic"] = cx_.synthetic_key;
      list.push_back(copy);
    }
    doc["requests"] = list;
    YAML::Emitter out;
    out << doc;
    const std::string path =
        Format("%s/ficus-prove-%d-%zu-%s.yaml", cx_.temp_dir.c_str(), static_cast<int>(getpid()),
               cx_.temp_files->size(), tag.c_str());
    std::ofstream f(path);
    f << out.c_str() << "\n";
    if (!f) return Failed("cannot write " + path);
    cx_.temp_files->push_back(path);
    return path;
  }

 private:
  const WorkloadContext& cx_;
  YAML::Node source_;
};

load::Options ScenarioOptions(const std::string& file, const WorkloadContext& cx) {
  load::Options o;
  o.url = file;
  o.target = cx.base_url;
  return o;
}

// A noisy client's proof from a capture: the other clients' recorded requests to the routes
// the client used, measured, while the client's own recorded requests replay beside them; both
// on the capture's timeline at the same speed, looped, so the flood keeps its real share.
Outcome<Workload> NoisyReplay(const std::string& key, const std::string& header,
                              const std::string& value, const WorkloadContext& cx,
                              const std::vector<std::string>& noisy_routes) {
  const config::Config& cfg = *cx.config;
  Workload w;
  w.connections = cx.connections;
  for (const std::string& name : noisy_routes) {
    auto route = std::find_if(cfg.routes.begin(), cfg.routes.end(),
                              [&](const config::Route& r) { return r.name == name; });
    if (route == cfg.routes.end()) continue;
    if (w.cluster.empty()) w.cluster = route->cluster;
    w.threshold_ms = std::max(w.threshold_ms, advisor::ThresholdMsFor(cfg, name, cx.fallback_ms));
  }
  if (w.cluster.empty()) return Failed("none of the routes " + key + " used is in the config");
  load::Options replay;
  replay.replay = cx.replay;
  replay.target = cx.base_url;
  replay.speed = cx.speed;
  replay.synthetic_key = cx.synthetic_key;
  replay.quiet = true;
  load::Options others = replay, flood = replay;
  for (const std::string& name : noisy_routes) others.filters.push_back("route=" + name);
  others.filters.push_back("header:" + header + "!=" + value);
  flood.filters = {"header:" + header + "=" + value};
  const std::string source = cx.replay_source.empty() ? cx.replay : cx.replay_source;
  std::string routes;
  for (const std::string& name : noisy_routes) routes += (routes.empty() ? "" : ", ") + name;
  // Both checked now: a capture without the client's requests (a redacted key field: the
  // routes' auth names it) or without anyone else's cannot prove anything.
  if (Outcome<load::Plan> p = load::PlanFrom(flood); !p)
    return Failed(source + " holds no request of " + key + " (" + p.message() +
                  "); prove it without --replay");
  if (Outcome<load::Plan> p = load::PlanFrom(others); !p)
    return Failed(source + " holds no other client's request to the routes " + key + " used (" +
                  p.message() + ")");
  w.requests = others;  // (Measure loops a replay for each step's length)
  w.flood = flood;
  w.rates = {0};  // measured: what the timeline gave
  w.step_ns = cx.step_ns * static_cast<int64_t>(std::max<size_t>(cx.rates.size(), 1));
  w.description = Format(
      "replay of %s: the other clients' requests to %s while %s's recorded requests replay "
      "beside them, at %s, looped, %llds",
      source.c_str(), routes.c_str(), key.c_str(), cx.speed.c_str(),
      static_cast<long long>(w.step_ns / 1'000'000'000));
  return w;
}

}  // namespace

std::string NoisyKeyOf(const advisor::Finding& f) {
  return f.summary.substr(0, f.summary.find(' '));
}

const config::Route* RouteOf(const config::Config& cfg, const std::string& method,
                             const std::string& path) {
  for (const config::Route& r : cfg.routes) {
    if (Serves(r, method, path)) return &r;
  }
  return nullptr;
}

Outcome<Workload> WorkloadFor(const advisor::Finding& f, const WorkloadContext& cx,
                              const std::vector<std::string>& noisy_routes) {
  ScenarioWriter writer(cx);
  if (!cx.scenario_text.empty() && !writer.has_scenario())
    return Failed("the scenario has no `requests` list");
  Workload w;
  w.step_ns = cx.step_ns;
  w.connections = cx.connections;
  const config::Config& cfg = *cx.config;

  if (f.kind == "noisy_client") {
    const std::string key = NoisyKeyOf(f);
    const auto [header, value] = KeyHeader(key);
    if (header.empty())
      return Failed(key +
                    " is a client address: its flood cannot be sent from this host apart "
                    "from the other clients'");
    if (noisy_routes.empty()) return Failed("no route is known where " + key + " sent requests");
    if (!cx.replay.empty()) return NoisyReplay(key, header, value, cx, noisy_routes);
    std::vector<YAML::Node> others, flood;
    if (writer.has_scenario()) {
      for (const YAML::Node& r : writer.source()["requests"]) {
        const config::Route* route = RouteOf(cfg, Str(r, "method", "GET"), Str(r, "path", "/"));
        if (!route) continue;
        const bool used =
            std::find(noisy_routes.begin(), noisy_routes.end(), route->name) != noisy_routes.end();
        const bool noisy = r["headers"] && Str(r["headers"], header.c_str()) == value;
        if (noisy)
          flood.push_back(r);
        else if (used)
          others.push_back(r);
      }
    }
    for (const std::string& name : noisy_routes) {
      // Without a scenario (or one without these requests): each route's request from its match.
      auto route = std::find_if(cfg.routes.begin(), cfg.routes.end(),
                                [&](const config::Route& r) { return r.name == name; });
      if (route == cfg.routes.end()) continue;
      auto req = advisor::RequestFor(*route);
      if (!req) continue;
      YAML::Node base = Request(name, req->method, req->path, req->body);
      if (flood.empty() || others.empty()) {
        YAML::Node o = YAML::Clone(base), n = YAML::Clone(base);
        o["headers"][header] = "ficus-prove-other";
        n["headers"][header] = value;
        if (others.empty()) others.push_back(o);
        if (flood.empty()) flood.push_back(n);
      }
      if (w.cluster.empty()) w.cluster = route->cluster;
      w.threshold_ms = std::max(w.threshold_ms, advisor::ThresholdMsFor(cfg, name, cx.fallback_ms));
    }
    if (others.empty() || flood.empty())
      return Failed("no request can be built for the routes " + key + " used");
    Outcome<std::string> of = writer.Write(others, "others");
    if (!of) return Failed(of.message());
    Outcome<std::string> ff = writer.Write(flood, "flood");
    if (!ff) return Failed(ff.message());
    w.requests = ScenarioOptions(*of, cx);
    w.flood = ScenarioOptions(*ff, cx);
    w.flood_rate = cx.flood_rate;
    w.rates = {cx.others_rate};
    // One constant load as long as a step load's steps together.
    w.step_ns = cx.step_ns * static_cast<int64_t>(std::max<size_t>(cx.rates.size(), 1));
    w.description =
        Format("the other clients on %s at %.0f req/s while %s floods at %.0f req/s, %llds",
               noisy_routes.front().c_str(), cx.others_rate, key.c_str(), cx.flood_rate,
               static_cast<long long>(w.step_ns / 1'000'000'000));
    return w;
  }

  auto route = std::find_if(cfg.routes.begin(), cfg.routes.end(),
                            [&](const config::Route& r) { return r.name == f.route; });
  if (route == cfg.routes.end()) return Failed("the config has no route named " + f.route);
  w.cluster = route->cluster;
  w.threshold_ms = advisor::ThresholdMsFor(cfg, route->name, cx.fallback_ms);
  w.rates = cx.rates;
  if (!cx.replay.empty()) {
    // The route's recorded requests (their paths, query strings, methods, bodies) on their
    // recorded timeline: the same replay before and after, as long as the step load would run.
    w.requests.replay = cx.replay;
    w.requests.target = cx.base_url;
    w.requests.speed = cx.speed;
    w.requests.filters = {"route=" + route->name};
    w.requests.synthetic_key = cx.synthetic_key;
    w.step_ns = cx.step_ns * static_cast<int64_t>(std::max<size_t>(cx.rates.size(), 1));
    w.rates = {0};  // measured: what the timeline gave
    w.description = Format("replay of %s's requests to route %s at %s, looped, %llds",
                           (cx.replay_source.empty() ? cx.replay : cx.replay_source).c_str(),
                           route->name.c_str(), cx.speed.c_str(),
                           static_cast<long long>(w.step_ns / 1'000'000'000));
    return w;
  }
  std::vector<YAML::Node> requests;
  if (writer.has_scenario()) {
    for (const YAML::Node& r : writer.source()["requests"]) {
      if (RouteOf(cfg, Str(r, "method", "GET"), Str(r, "path", "/")) != &*route) continue;
      const bool noisy = std::any_of(cx.noisy_keys.begin(), cx.noisy_keys.end(), [&](auto& k) {
        const auto [header, value] = KeyHeader(k);
        return !header.empty() && r["headers"] && Str(r["headers"], header.c_str()) == value;
      });
      if (!noisy) requests.push_back(r);
    }
  }
  std::string from = "the scenario's requests";
  if (requests.empty() && route->record && route->match.headers.empty()) {
    // The route's recorded mix (query strings, bodies; weighted as the users sent them) when
    // it has a `record:` capture.
    const bool logged = cfg.access_log.enabled && cfg.access_log.path != "stdout";
    const std::vector<advisor::WeightedRequest> mix =
        advisor::CapturedMix(route->record->path, route->name, logged ? cfg.access_log.path : "");
    for (const advisor::WeightedRequest& m : mix) {
      const advisor::RouteRequest& req = m.request;
      // Recorded text is sent as it came, not read as a template.
      YAML::Node r = Request(route->name, req.method, load::TemplateLiteral(req.path),
                             load::TemplateLiteral(req.body));
      r["weight"] = std::clamp<uint64_t>(m.count, 1, 1u << 30);
      if (!req.body.empty())
        r["headers"]["Content-Type"] =
            req.content_type.empty() ? std::string("application/json") : req.content_type;
      requests.push_back(r);
    }
    if (mix.size() == 1) from = mix.front().request.method + " " + mix.front().request.path;
    if (mix.size() > 1) from = Format("its %zu most frequent recorded requests", mix.size());
  }
  if (requests.empty()) {
    // One request its match accepts.
    std::optional<advisor::RouteRequest> req = advisor::RequestFor(*route);
    if (!req)
      return Failed("route " + route->name +
                    " matches by regex or headers: give a --scenario with its requests");
    YAML::Node r = Request(route->name, req->method, req->path, req->body);
    if (!req->body.empty())
      r["headers"]["Content-Type"] =
          req->content_type.empty() ? std::string("application/json") : req->content_type;
    requests.push_back(r);
    from = req->method + " " + req->path;
  }
  // The step load scales the route's traffic far past any one client's rate: unless the route
  // authenticates its clients, each request carries a fresh client key, so a per-key limit (a
  // kept noisy-client limit among them) does not take the load for one heavy client.
  if (!route->auth) {
    for (YAML::Node& r : requests) {
      r = YAML::Clone(r);
      r["headers"]["X-Api-Key"] = "ficus-prove-{{ficus_prove_n}}";
      const YAML::Node headers = r["headers"];
      if (headers["X-User"]) r["headers"]["X-User"] = "ficus-prove-{{ficus_prove_n}}";
    }
  }
  Outcome<std::string> file = writer.Write(requests, route->name);
  if (!file) return Failed(file.message());
  w.requests = ScenarioOptions(*file, cx);
  w.description = Format("step load of route %s (%s), %zu x %llds up to %.0f req/s",
                         route->name.c_str(), from.c_str(), w.rates.size(),
                         static_cast<long long>(cx.step_ns / 1'000'000'000), w.rates.back());
  return w;
}

}  // namespace ficus::prove::internal
