#include "config/internal/loader.h"

#include <netdb.h>
#include <sys/socket.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>
#include <thread>

#include "base/duration.h"
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

// ---------------------------------------------------------------------------------------------
// Cross-field checks

void Loader::CheckBindings() {
  for (size_t j = 0; j < bindings_.size(); ++j) {
    const Binding& b = bindings_[j];
    for (size_t i = 0; i < j; ++i) {
      const Binding& a = bindings_[i];
      if (a.port != b.port || a.family != b.family) continue;
      const std::string where = JoinHostPort(a.address, a.port);
      const std::string at = a.loc.line ? ", line " + std::to_string(a.loc.line) : "";
      if (a.address == b.address) {
        Error(b.loc, b.path,
              "address " + where + " is already used by " + a.what + " (" + a.path + at + ")");
        break;
      }
      if (IsWildcardIp(a.address) || IsWildcardIp(b.address)) {
        Error(b.loc, b.path,
              "address " + JoinHostPort(b.address, b.port) + " overlaps " + a.what + " on " +
                  where + " (" + a.path + at + ")");
        break;
      }
    }
  }
}

namespace {

bool SameSet(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

bool MatchesEverything(const RouteMatch& m) {
  const bool any_host =
      m.hosts.empty() || std::find(m.hosts.begin(), m.hosts.end(), "*") != m.hosts.end();
  const bool any_path =
      m.path.empty() && m.path_regex.empty() && (m.path_prefix.empty() || m.path_prefix == "/");
  return any_host && any_path && m.methods.empty() && m.headers.empty();
}

bool SameMatch(const RouteMatch& a, const RouteMatch& b) {
  if (a.path != b.path || a.path_prefix != b.path_prefix || a.path_regex != b.path_regex) {
    return false;
  }
  if (!SameSet(a.hosts, b.hosts) || !SameSet(a.methods, b.methods)) return false;
  if (a.headers.size() != b.headers.size()) return false;
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].exact != b.headers[i].exact ||
        a.headers[i].invert != b.headers[i].invert) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Loader::CheckRoutes() {
  std::vector<bool> used(config_.clusters.size(), false);
  for (size_t i = 0; i < config_.routes.size(); ++i) {
    Route& r = config_.routes[i];
    if (!route_cluster_ok_[i]) continue;
    bool found = false;
    for (size_t k = 0; k < config_.clusters.size(); ++k) {
      if (config_.clusters[k].name == r.cluster) {
        r.cluster_index = k;
        used[k] = true;
        found = true;
        break;
      }
    }
    // A cluster that failed validation was still declared: its own errors say what is wrong.
    const bool declared = std::find(declared_clusters_.begin(), declared_clusters_.end(),
                                    r.cluster) != declared_clusters_.end();
    if (!found && !declared) {
      std::vector<std::string> names;
      for (const Cluster& c : config_.clusters) names.push_back(c.name);
      Error(route_cluster_locs_[i], route_cluster_paths_[i],
            "cluster " + Quote(r.cluster) + " is not declared (declared: " +
                (names.empty() ? std::string("none") : JoinNames(names)) + ")");
    }
  }
  for (size_t k = 0; k < config_.clusters.size(); ++k) {
    if (!used[k]) {
      Warn(cluster_locs_[k], "clusters[" + std::to_string(k) + "]",
           "cluster " + Quote(config_.clusters[k].name) + " is not used by any route");
    }
  }
  for (size_t j = 0; j < config_.routes.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      const Route& a = config_.routes[i];
      const Route& b = config_.routes[j];
      std::string why;
      if (MatchesEverything(a.match)) {
        why = "matches every request";
      } else if (SameMatch(a.match, b.match)) {
        why = "has the same match";
      } else {
        continue;
      }
      Warn(route_locs_[j], "routes[" + std::to_string(j) + "]",
           "route " + Quote(b.name) + " can never match: route " + Quote(a.name) + " (line " +
               std::to_string(a.line) + ") before it " + why);
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------

namespace {

// Records where a document starts; the rest of the events are not needed.
class DocumentStart : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  YAML::Mark start = YAML::Mark::null_mark();
};

// Parses the first document. yaml-cpp 0.7's LoadAll loops forever (allocating) on some invalid
// input — a stray ',' at the top level makes every HandleNextDocument call "succeed" without
// consuming anything — so documents are counted here with the event parser, at most three.
// Throws YAML::Exception for syntax errors; sets *second to where a second document starts.
YAML::Node LoadFirstDocument(std::string_view yaml, YAML::Mark* second) {
  std::stringstream in{std::string(yaml)};
  YAML::Parser parser(in);
  YAML::Mark previous = YAML::Mark::null_mark();
  for (int i = 0; i < 3; ++i) {  // three: a stray token after the first document shows up third
    DocumentStart doc;
    if (!parser.HandleNextDocument(doc)) break;
    if (i > 0 && doc.start.pos == previous.pos) {
      // The parser did not move: a token that cannot start anything.
      const size_t pos = static_cast<size_t>(std::max(0, doc.start.pos));
      std::string what = pos < yaml.size() ? std::string(1, yaml[pos]) : std::string();
      if (what.empty() || static_cast<unsigned char>(what[0]) < 0x20) what = "character";
      throw YAML::ParserException(doc.start, "unexpected '" + what + "'");
    }
    if (i == 1) *second = doc.start;
    previous = doc.start;
  }
  return YAML::Load(std::string(yaml));
}

bool ByPosition(const ConfigError& a, const ConfigError& b) {
  return std::tie(a.line, a.column) < std::tie(b.line, b.column);
}

// A hint for the most common YAML mistake in this file: an unquoted IPv6 address.
std::string SyntaxHint(std::string_view yaml, int line) {
  size_t pos = 0;
  for (int l = 0; l < line && pos != std::string_view::npos; ++l) {
    pos = yaml.find('\n', pos);
    if (pos != std::string_view::npos) ++pos;
  }
  if (pos == std::string_view::npos) return "";
  std::string_view text = yaml.substr(pos, yaml.find('\n', pos) - pos);
  const size_t open = text.find('[');
  if (open != std::string_view::npos && text.find("]:", open) != std::string_view::npos) {
    return " (quote IPv6 addresses: \"[::1]:8080\")";
  }
  return "";
}

}  // namespace

LoadResult Loader::Run(std::string_view yaml) {
  LoadResult result;
  YAML::Node doc;
  YAML::Mark second = YAML::Mark::null_mark();
  try {
    doc = LoadFirstDocument(yaml, &second);
  } catch (const YAML::Exception& e) {
    const Loc loc = LocOf(e.mark);
    std::string reason = "YAML syntax error: " + e.msg;
    if (loc.line > 0) reason += SyntaxHint(yaml, loc.line - 1);
    Error(loc.line ? loc : root_loc_, "", reason);
    result.errors = std::move(errors_);
    return result;
  }
  if (!second.is_null()) {
    Error(LocOf(second), "", "more than one YAML document ('---'): a config is a single document");
  }
  if (!doc.IsDefined() || doc.IsNull()) {
    Error(root_loc_, "", "the config is empty: it needs at least listeners, clusters and routes");
    result.errors = std::move(errors_);
    return result;
  }
  Value root{doc, LocOf(doc.Mark()), ""};
  if (root.loc.line == 0) root.loc = root_loc_;
  root_loc_ = root.loc;
  Fields f;
  if (!ReadMap(root,
               {"workers", "data_dir", "log_level", "admin", "listeners", "clusters", "routes",
                "timeouts", "limits", "access_log", "tracing", "slos", "telemetry", "overload",
                "queues", "postgres"},
               &f)) {
    result.errors = std::move(errors_);
    return result;
  }
  config_.source = file_;
  // Timeouts first: clusters inherit timeouts.connect.
  if (const Value* v = f.Get("timeouts")) ReadTimeouts(*v, &config_.timeouts);
  if (const Value* v = f.Get("limits")) ReadLimits(*v, &config_.limits);
  if (const Value* v = f.Get("overload")) ReadOverload(*v, &config_.overload);
  if (const Value* v = f.Get("telemetry")) ReadTelemetry(*v, &config_.telemetry);
  {
    uint32_t workers = 0;
    if (const Value* v = f.Get("workers")) {
      if (auto n = Integer(*v, 0, kMaxWorkers)) workers = static_cast<uint32_t>(*n);
    }
    if (workers == 0) {
      workers = std::clamp<uint32_t>(std::thread::hardware_concurrency(), 1, kMaxWorkers);
    }
    config_.workers = workers;
  }
  if (const Value* v = f.Get("data_dir")) {
    if (auto s = String(*v)) {
      if (s->empty()) {
        Error(*v, "must not be empty");
      } else {
        config_.data_dir = *s;
      }
    }
  }
  if (const Value* v = f.Get("log_level")) {
    if (auto s = String(*v)) {
      if (std::find(kLogLevels.begin(), kLogLevels.end(), *s) == kLogLevels.end()) {
        Error(*v, "unknown log level " + Quote(*s) + "; expected one of: " + JoinNames(kLogLevels));
      } else {
        config_.log_level = *s;
      }
    }
  }
  if (const Value* v = f.Get("admin")) ReadAdmin(*v, &config_.admin);
  if (const Value* v = f.Get("access_log")) ReadAccessLog(*v, &config_.access_log);
  if (const Value* v = f.Get("tracing")) ReadTracing(*v, &config_.tracing);
  if (std::none_of(bindings_.begin(), bindings_.end(),
                   [](const Binding& b) { return b.what == "admin"; })) {
    // The default address (or an admin map without `listen`) binds too.
    bindings_.push_back({"admin", config_.admin.address, AF_INET, config_.admin.port, {}, "admin"});
  }
  // The default admin binding has no position: keep it first so errors land on listeners.
  std::stable_sort(bindings_.begin(), bindings_.end(), [](const Binding& a, const Binding& b) {
    return a.what == "admin" && b.what != "admin";
  });
  const char* required[] = {"listeners", "clusters", "routes"};
  for (const char* key : required) {
    if (!f.Get(key)) {
      Error(root_loc_, key,
            std::string("missing required key '") + key + "' (at least one " +
                std::string(key).substr(0, std::string(key).size() - 1) + " is required)");
    }
  }
  if (const Value* v = f.Get("listeners")) ReadListeners(*v);
  if (const Value* v = f.Get("clusters")) ReadClusters(*v);
  if (const Value* v = f.Get("routes")) ReadRoutes(*v);
  if (const Value* v = f.Get("slos")) ReadSlos(*v);
  if (const Value* v = f.Get("queues")) ReadQueues(*v);
  if (const Value* v = f.Get("postgres")) ReadPostgres(*v);

  // (An offline tool reading a token from an unset variable was warned about it above.)
  const bool token_unset = std::find(unset_env_paths_.begin(), unset_env_paths_.end(),
                                     "admin.token") != unset_env_paths_.end();
  if (!IsLoopbackIp(config_.admin.address) && config_.admin.token.empty() && !token_unset) {
    const Value* admin = f.Get("admin");
    Loc loc = admin ? admin->loc : root_loc_;
    std::string path = "admin";
    for (const Binding& b : bindings_) {
      if (b.what == "admin" && b.loc.line) {
        loc = b.loc;
        path = b.path;
      }
    }
    Error(loc, path,
          "admin listens on " + config_.admin.address + " without a token: set admin.token");
  }
  CheckBindings();
  CheckRoutes();
  CheckQueues();
  CheckPostgres();

  std::stable_sort(errors_.begin(), errors_.end(), ByPosition);
  std::stable_sort(warnings_.begin(), warnings_.end(), ByPosition);
  result.warnings = std::move(warnings_);
  result.errors = std::move(errors_);
  if (result.errors.empty()) result.config = std::make_shared<const Config>(std::move(config_));
  return result;
}

std::optional<std::string> ResolveWithGetaddrinfo(const std::string& name, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    *error = gai_strerror(rc);
    return std::nullopt;
  }
  std::optional<std::string> v4, v6;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    char buf[NI_MAXHOST];
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) !=
        0) {
      continue;
    }
    if (ai->ai_family == AF_INET && !v4) v4 = buf;
    if (ai->ai_family == AF_INET6 && !v6) v6 = buf;
  }
  freeaddrinfo(res);
  if (v4) return v4;
  if (v6) {
    // Strip a zone index ("fe80::1%eth0"): endpoints keep the bare literal.
    if (size_t pct = v6->find('%'); pct != std::string::npos) v6->resize(pct);
    return v6;
  }
  *error = "no IPv4 or IPv6 address";
  return std::nullopt;
}

LoadResult LoadYaml(std::string_view yaml, std::string_view source, const LoadOptions& options) {
  return Loader(source, options).Run(yaml);
}

}  // namespace ficus::config::internal
