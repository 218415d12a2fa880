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

#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config::internal {
namespace {

constexpr uint32_t kMaxWorkers = 64;
const std::vector<std::string> kLoadBalancers = {"round_robin", "least_request", "p2c_ewma"};
// Implemented in upstream/ but not selectable until the config can name a hash key.
const std::vector<std::string> kHashBalancers = {"ring_hash", "maglev"};
const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error"};

// A 1-based position in the file; {0, 0} when unknown.
struct Loc {
  int line = 0;
  int column = 0;
};

Loc LocOf(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

// A node to read, where to point at when it is wrong, and its dotted field path.
// `loc` is the key's position for empty values (yaml-cpp marks those at the next token).
struct Value {
  YAML::Node node;
  Loc loc;
  std::string path;
};

std::string Sub(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string Quote(std::string_view text) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (char c : text.substr(0, kMax)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out.push_back('?');  // keep messages on one line
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > kMax) out.append("...");
  return out + "'";
}

std::string KindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Scalar:
      return Quote(n.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string ToLower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}
std::string ToUpper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// The keys of one YAML map, after unknown and duplicate keys were reported.
class Fields {
 public:
  struct Entry {
    std::string key;
    Value value;
  };
  const Value* Get(std::string_view key) const {
    for (const Entry& e : entries_) {
      if (e.key == key) return &e.value;
    }
    return nullptr;
  }
  std::vector<Entry>& entries() { return entries_; }

 private:
  std::vector<Entry> entries_;
};

// Something that binds a socket, for the overlap checks between listeners and admin.
struct Binding {
  std::string what;  // "listener 'public'" or "admin"
  std::string address;
  int family = 0;
  uint16_t port = 0;
  Loc loc;
  std::string path;
};

class Loader {
 public:
  Loader(std::string_view source, const LoadOptions& options) : file_(source), options_(options) {}

  LoadResult Run(std::string_view yaml);

 private:
  void Error(Loc loc, const std::string& path, std::string reason) {
    errors_.push_back(ConfigError{file_, loc.line, loc.column, path, std::move(reason)});
  }
  void Error(const Value& v, std::string reason) { Error(v.loc, v.path, std::move(reason)); }
  void Warn(Loc loc, const std::string& path, std::string reason) {
    warnings_.push_back(ConfigError{file_, loc.line, loc.column, path, std::move(reason)});
  }

  // --- generic readers: report and return nullopt/false on error ---
  bool ReadMap(const Value& v, const std::vector<std::string>& allowed, Fields* out);
  bool ExpectList(const Value& v);
  Value Item(const Value& list, const YAML::Node& item, size_t i) const;
  std::optional<std::string> String(const Value& v);
  std::optional<uint64_t> Integer(const Value& v, uint64_t min, uint64_t max);
  std::optional<Duration> DurationIn(const Value& v, Duration min, Duration max);
  std::optional<uint64_t> SizeIn(const Value& v, uint64_t min, uint64_t max);
  std::optional<bool> Bool(const Value& v);
  std::optional<double> Ratio(const Value& v);
  std::optional<std::string> Name(const Value& v);
  void Require(const Fields& f, const Value& parent, std::string_view key);

  // --- sections ---
  void ReadTimeouts(const Value& v, Timeouts* t);
  void ReadLimits(const Value& v, Limits* l);
  void ReadTelemetry(const Value& v, Telemetry* t);
  void ReadAdmin(const Value& v, Admin* admin);
  void ReadAccessLog(const Value& v, AccessLog* log);
  void ReadTracing(const Value& v, Tracing* tracing);
  bool ReadListen(const Value& v, std::string* address, uint16_t* port, int* family);
  void ReadListeners(const Value& v);
  void ReadClusters(const Value& v);
  // Upstream resilience (issue 3), in their own block below ReadClusters.
  void ReadResilience(const Fields& f, Cluster* c);
  void ReadRetry(const Value& v, RetryPolicy* r);
  void ReadRetryBudget(const Value& b, RetryPolicy* r);
  void ReadOutlier(const Value& v, OutlierDetection* o);
  void ReadHealthCheck(const Value& v, HealthCheck* h);
  void ReadBreakers(const Value& v, CircuitBreakers* b);
  void ReadHashKey(const Value& v, HashKey* k);
  void ReadAffinity(const Value& v, Affinity* a);
  std::optional<Endpoint> ReadEndpoint(const Value& v);
  std::optional<std::string> Resolve(const Value& v, const std::string& name);
  void ReadRoutes(const Value& v);
  void ReadMatch(const Value& v, RouteMatch* m);
  std::optional<std::string> ReadPath(const Value& v);
  void ReadHosts(const Value& v, std::vector<std::string>* hosts);
  void ReadMethods(const Value& v, std::vector<std::string>* methods);
  void ReadHeaders(const Value& v, std::vector<HeaderMatcher>* headers);
  void ReadSlos(const Value& v);  // after ReadRoutes: checks route names
  std::optional<double> Percent(const Value& v);
  void ReadRecord(const Value& v, std::optional<Record>* out);

  // --- cross-field checks ---
  void CheckBindings();
  void CheckRoutes();

  std::string file_;
  const LoadOptions& options_;
  Config config_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
  Loc root_loc_{1, 1};

  std::vector<Binding> bindings_;
  // Where each cluster and route was declared (name position), for messages and checks.
  std::vector<Loc> cluster_locs_;
  std::vector<std::string> declared_clusters_;  // every cluster name read, even if invalid
  std::vector<Loc> route_locs_;
  std::vector<Loc> route_cluster_locs_;
  std::vector<std::string> route_cluster_paths_;
  std::vector<bool> route_cluster_ok_;
  std::map<std::string, std::pair<std::optional<std::string>, std::string>> resolved_;
};

// ---------------------------------------------------------------------------------------------
// Generic readers

bool Loader::ReadMap(const Value& v, const std::vector<std::string>& allowed, Fields* out) {
  if (!v.node.IsMap()) {
    Error(v, "expected a map with keys " + JoinNames(allowed) + ", got " + KindOf(v.node));
    return false;
  }
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key = it->first;
    const Loc key_loc = LocOf(key.Mark());
    if (!key.IsScalar()) {
      Error(key_loc, v.path,
            "expected a key (one of: " + JoinNames(allowed) + "), got " + KindOf(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      Error(key_loc, Sub(v.path, name),
            "unknown key " + Quote(name) + "; expected one of: " + JoinNames(allowed));
      continue;
    }
    if (const Value* first = out->Get(name)) {
      Error(key_loc, Sub(v.path, name),
            "duplicate key " + Quote(name) + " (first at line " + std::to_string(first->loc.line) +
                ")");
      continue;
    }
    const YAML::Node value = it->second;
    Loc loc = value.IsNull() ? key_loc : LocOf(value.Mark());
    if (loc.line == 0) loc = key_loc;
    out->entries().push_back({name, Value{value, loc, Sub(v.path, name)}});
  }
  return true;
}

void Loader::Require(const Fields& f, const Value& parent, std::string_view key) {
  if (!f.Get(key))
    Error(parent.loc, Sub(parent.path, key), "missing required key '" + std::string(key) + "'");
}

bool Loader::ExpectList(const Value& v) {
  if (v.node.IsSequence()) return true;
  Error(v, "expected a list, got " + KindOf(v.node));
  return false;
}

Value Loader::Item(const Value& list, const YAML::Node& item, size_t i) const {
  Loc loc = LocOf(item.Mark());
  if (item.IsNull() || loc.line == 0) loc = list.loc;
  return Value{item, loc, Index(list.path, i)};
}

std::optional<std::string> Loader::String(const Value& v) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a string, got " + KindOf(v.node));
    return std::nullopt;
  }
  Parsed p = SubstituteEnv(v.node.Scalar(), options_.getenv);
  if (!p.ok()) {
    Error(v, p.error);
    return std::nullopt;
  }
  if (std::string bad = CheckText(p.value); !bad.empty()) {
    Error(v, "value " + bad);
    return std::nullopt;
  }
  return std::move(p.value);
}

std::optional<uint64_t> Loader::Integer(const Value& v, uint64_t min, uint64_t max) {
  if (!v.node.IsScalar()) {
    Error(v, "expected an integer, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  if (s->empty() || ptr != s->data() + s->size() || ec == std::errc::invalid_argument) {
    Error(v, "expected an integer " + range + ", got " + Quote(*s));
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || n < min || n > max) {
    Error(v, "must be " + range + ", got " + *s);
    return std::nullopt;
  }
  return n;
}

std::optional<Duration> Loader::DurationIn(const Value& v, Duration min, Duration max) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a duration like 250ms or 2s, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::optional<Duration> d = ParseDuration(*s);
  if (!d) {
    Error(v, "expected a duration like 250ms or 2s, got " + Quote(*s));
    return std::nullopt;
  }
  if (*d < min || *d > max) {
    Error(v,
          "must be between " + FormatDuration(min) + " and " + FormatDuration(max) + ", got " + *s);
    return std::nullopt;
  }
  return d;
}

std::optional<uint64_t> Loader::SizeIn(const Value& v, uint64_t min, uint64_t max) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a size like 64KiB or 1MiB, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::optional<uint64_t> n = ParseSize(*s);
  if (!n) {
    Error(v, "expected a size like 64KiB or 1MiB, got " + Quote(*s));
    return std::nullopt;
  }
  if (*n < min || *n > max) {
    Error(v, "must be between " + FormatSize(min) + " and " + FormatSize(max) + ", got " + *s);
    return std::nullopt;
  }
  return n;
}

std::optional<bool> Loader::Bool(const Value& v) {
  if (v.node.IsScalar()) {
    std::optional<std::string> s = String(v);
    if (!s) return std::nullopt;
    if (*s == "true" || *s == "True" || *s == "TRUE") return true;
    if (*s == "false" || *s == "False" || *s == "FALSE") return false;
  }
  Error(v, "expected true or false, got " + KindOf(v.node));
  return std::nullopt;
}

std::optional<std::string> Loader::Name(const Value& v) {
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  if (std::string bad = CheckName(*s); !bad.empty()) {
    Error(v, "name " + bad);
    return std::nullopt;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Sections

void Loader::ReadTimeouts(const Value& v, Timeouts* t) {
  Fields f;
  if (!ReadMap(v, {"connect", "request_head", "idle", "upstream_response", "request", "drain"},
               &f)) {
    return;
  }
  using std::chrono::hours;
  using std::chrono::minutes;
  const Duration ms1{1}, zero{0};
  struct Spec {
    const char* key;
    Duration* out;
    Duration min, max;
  };
  const Spec specs[] = {
      {"connect", &t->connect, ms1, minutes(10)},
      {"request_head", &t->request_head, ms1, minutes(10)},
      {"idle", &t->idle, ms1, hours(24)},
      {"upstream_response", &t->upstream_response, ms1, hours(24)},
      {"request", &t->request, zero, hours(24)},
      {"drain", &t->drain, zero, hours(1)},
  };
  for (const Spec& s : specs) {
    if (const Value* x = f.Get(s.key)) {
      if (auto d = DurationIn(*x, s.min, s.max)) *s.out = *d;
    }
  }
}

void Loader::ReadLimits(const Value& v, Limits* l) {
  Fields f;
  if (!ReadMap(v,
               {"max_head_bytes", "max_header_count", "max_body_bytes", "max_connections",
                "headers_with_underscores"},
               &f)) {
    return;
  }
  if (const Value* x = f.Get("headers_with_underscores")) {
    if (auto s = String(*x)) {
      if (*s == "allow") {
        l->headers_with_underscores = UnderscoreAction::kAllow;
      } else if (*s == "drop") {
        l->headers_with_underscores = UnderscoreAction::kDrop;
      } else if (*s == "reject") {
        l->headers_with_underscores = UnderscoreAction::kReject;
      } else {
        Error(*x, "unknown action " + Quote(*s) + "; known: allow, drop, reject");
      }
    }
  }
  if (const Value* x = f.Get("max_head_bytes")) {
    if (auto n = SizeIn(*x, 1024, 1 << 20)) l->max_head_bytes = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("max_header_count")) {
    // The proxy sizes per-connection header storage from this: keep it bounded.
    if (auto n = Integer(*x, 1, 1000)) l->max_header_count = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("max_body_bytes")) {
    if (auto n = SizeIn(*x, 0, 1ull << 40)) l->max_body_bytes = *n;
  }
  if (const Value* x = f.Get("max_connections")) {
    if (auto n = Integer(*x, 1, 10'000'000)) l->max_connections = static_cast<uint32_t>(*n);
  }
}

void Loader::ReadTelemetry(const Value& v, Telemetry* t) {
  Fields f;
  if (!ReadMap(v, {"max_size", "error_samples_per_route", "slo_interval", "repeat_sample"}, &f))
    return;
  if (const Value* x = f.Get("max_size")) {
    // Below 1 MiB the WAL allowance and a day of 10 s rows for one route do not fit.
    if (auto n = SizeIn(*x, 1 << 20, 1ull << 40)) t->max_size = *n;
  }
  if (const Value* x = f.Get("error_samples_per_route")) {
    if (auto n = Integer(*x, 1, 1000)) t->error_samples_per_route = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("slo_interval")) {
    if (auto d = DurationIn(*x, Duration(100), std::chrono::minutes(10))) t->slo_interval = *d;
  }
  if (const Value* x = f.Get("repeat_sample")) {
    if (auto n = Integer(*x, 0, 1'000'000)) t->repeat_sample = static_cast<uint32_t>(*n);
  }
}

bool Loader::ReadListen(const Value& v, std::string* address, uint16_t* port, int* family) {
  if (v.node.IsSequence()) {
    // `listen: [::1]:8080` unquoted is a YAML list: say how to write it.
    Error(v,
          "expected a string like 0.0.0.0:8080, got a list (quote IPv6 addresses: "
          "\"[::1]:8080\")");
    return false;
  }
  std::optional<std::string> s = String(v);
  if (!s) return false;
  HostPort hp;
  std::string error;
  if (!ParseHostPort(*s, &hp, &error)) {
    Error(v, Quote(*s) + ": " + error);
    return false;
  }
  std::optional<std::string> ip = CanonicalIp(hp.host, family);
  if (!ip) {
    Error(v, "host must be an IP address (like 0.0.0.0, 127.0.0.1 or [::]), got " + Quote(hp.host));
    return false;
  }
  if (hp.bracketed != (*family == AF_INET6)) {
    Error(v, "brackets are for IPv6 addresses only, got " + Quote(*s));
    return false;
  }
  *address = *ip;
  *port = hp.port;
  return true;
}

void Loader::ReadAdmin(const Value& v, Admin* admin) {
  Fields f;
  if (!ReadMap(v, {"listen", "token"}, &f)) return;
  const Value* listen = f.Get("listen");
  int family = AF_INET;
  bool listen_ok = true;
  if (listen) listen_ok = ReadListen(*listen, &admin->address, &admin->port, &family);
  if (const Value* token = f.Get("token")) {
    if (auto s = String(*token)) {
      admin->token = *s;
      if (!s->empty() && s->size() < 16) {
        Warn(token->loc, token->path, "the admin token is shorter than 16 characters");
      }
    }
  }
  if (listen && listen_ok) {
    bindings_.push_back({"admin", admin->address, family, admin->port, listen->loc, listen->path});
  }
}

// A share: a number 0..1 ("0.25") or a percentage ("25%").
std::optional<double> Loader::Ratio(const Value& v) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a ratio (0..1 or 0%..100%), got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::string_view text = *s;
  double scale = 1.0;
  if (text.ends_with('%')) {
    text.remove_suffix(1);
    scale = 100.0;
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !(d >= 0) ||
      d > scale) {
    Error(v, "expected a ratio 0..1 or a percentage 0%..100%, got " + Quote(*s));
    return std::nullopt;
  }
  return d / scale;
}

void Loader::ReadAccessLog(const Value& v, AccessLog* log) {
  Fields f;
  if (!ReadMap(v, {"path", "fields", "sample"}, &f)) return;
  log->enabled = true;
  Require(f, v, "path");
  if (const Value* p = f.Get("path")) {
    if (auto s = String(*p)) {
      if (s->empty()) {
        Error(*p, "must not be empty (a file path, or stdout)");
      } else {
        log->path = *s;
      }
    }
  }
  if (const Value* fl = f.Get("fields")) {
    if (ExpectList(*fl)) {
      std::vector<std::string> known(std::begin(kAccessLogFields), std::end(kAccessLogFields));
      size_t i = 0;
      for (auto it = fl->node.begin(); it != fl->node.end(); ++it, ++i) {
        const Value item = Item(*fl, *it, i);
        auto s = String(item);
        if (!s) continue;
        if (std::find(known.begin(), known.end(), *s) == known.end()) {
          Error(item,
                "unknown access log field " + Quote(*s) + "; expected one of: " + JoinNames(known));
        } else if (std::find(log->fields.begin(), log->fields.end(), *s) != log->fields.end()) {
          Error(item, "field " + Quote(*s) + " listed twice");
        } else {
          log->fields.push_back(*s);
        }
      }
      if (fl->node.size() == 0) Error(*fl, "at least one field (or leave `fields` out for all)");
    }
  }
  if (const Value* s = f.Get("sample")) {
    if (auto r = Ratio(*s)) log->sample = *r;
  }
}

void Loader::ReadTracing(const Value& v, Tracing* t) {
  Fields f;
  if (!ReadMap(v, {"endpoint", "sample", "service_name", "batch_size", "flush_interval", "timeout"},
               &f)) {
    return;
  }
  t->enabled = true;
  Require(f, v, "endpoint");
  if (const Value* e = f.Get("endpoint")) {
    if (auto s = String(*e)) {
      // http://host:port/path: the collector runs beside ficus; https is not supported.
      std::string_view rest = *s;
      if (!rest.starts_with("http://") || rest.size() == 7) {
        Error(*e,
              "expected an http:// URL of an OTLP/HTTP collector (like "
              "http://127.0.0.1:4318/v1/traces), got " +
                  Quote(*s));
      } else {
        rest.remove_prefix(7);
        std::string authority(rest.substr(0, rest.find('/')));
        HostPort hp;
        std::string error;
        if (authority.find(':') == std::string::npos || !ParseHostPort(authority, &hp, &error)) {
          Error(*e, Quote(*s) + ": expected host:port after http://" +
                        (error.empty() ? std::string() : std::string(" (") + error + ")"));
        } else {
          t->endpoint = *s;
        }
      }
    }
  }
  if (const Value* s = f.Get("sample")) {
    if (auto r = Ratio(*s)) t->sample = *r;
  }
  if (const Value* s = f.Get("service_name")) {
    if (auto name = String(*s)) {
      if (name->empty()) {
        Error(*s, "must not be empty");
      } else {
        t->service_name = *name;
      }
    }
  }
  if (const Value* b = f.Get("batch_size")) {
    if (auto n = Integer(*b, 1, 10000)) t->batch_size = static_cast<uint32_t>(*n);
  }
  if (const Value* d = f.Get("flush_interval")) {
    if (auto ms = DurationIn(*d, Duration(10), Duration(60000))) t->flush_interval = *ms;
  }
  if (const Value* d = f.Get("timeout")) {
    if (auto ms = DurationIn(*d, Duration(10), Duration(60000))) t->timeout = *ms;
  }
}

void Loader::ReadListeners(const Value& v) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "at least one listener is required");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item, {"name", "listen"}, &f)) continue;
    Listener l;
    l.name = "listener-" + std::to_string(i);
    Loc name_loc = item.loc;
    if (const Value* name = f.Get("name")) {
      if (auto s = Name(*name)) l.name = *s;
      name_loc = name->loc;
    }
    for (size_t k = 0; k < config_.listeners.size(); ++k) {
      if (config_.listeners[k].name == l.name) {
        Error(name_loc, Sub(item.path, "name"),
              "duplicate listener name " + Quote(l.name) + " (also listeners[" + std::to_string(k) +
                  "])");
      }
    }
    Require(f, item, "listen");
    if (const Value* listen = f.Get("listen")) {
      int family = 0;
      if (ReadListen(*listen, &l.address, &l.port, &family)) {
        bindings_.push_back(
            {"listener " + Quote(l.name), l.address, family, l.port, listen->loc, listen->path});
      }
    }
    config_.listeners.push_back(std::move(l));
  }
}

std::optional<std::string> Loader::Resolve(const Value& v, const std::string& name) {
  auto it = resolved_.find(name);
  if (it == resolved_.end()) {
    std::string error;
    std::optional<std::string> ip = options_.resolve(name, &error);
    it = resolved_.emplace(name, std::make_pair(ip, error)).first;
  }
  if (!it->second.first) {
    Error(v, "cannot resolve host " + Quote(name) + ": " + it->second.second);
    return std::nullopt;
  }
  std::optional<std::string> ip = CanonicalIp(*it->second.first);
  if (!ip) {
    Error(v, "host " + Quote(name) + " resolved to " + Quote(*it->second.first) +
                 ", which is not an IP address");
  }
  return ip;
}

std::optional<Endpoint> Loader::ReadEndpoint(const Value& v) {
  Endpoint e;
  const Value* address = &v;
  Fields f;
  if (v.node.IsMap()) {
    if (!ReadMap(v, {"address", "weight"}, &f)) return std::nullopt;
    Require(f, v, "address");
    if (const Value* w = f.Get("weight")) {
      if (auto n = Integer(*w, 1, 1000)) e.weight = static_cast<uint32_t>(*n);
    }
    address = f.Get("address");
    if (!address) return std::nullopt;
  } else if (!v.node.IsScalar()) {
    Error(v, "expected an address like 127.0.0.1:3000 or a map {address, weight}, got " +
                 KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(*address);
  if (!s) return std::nullopt;
  HostPort hp;
  std::string error;
  if (!ParseHostPort(*s, &hp, &error)) {
    Error(*address, Quote(*s) + ": " + error);
    return std::nullopt;
  }
  int family = 0;
  if (std::optional<std::string> ip = CanonicalIp(hp.host, &family)) {
    if (hp.bracketed != (family == AF_INET6)) {
      Error(*address, "brackets are for IPv6 addresses only, got " + Quote(*s));
      return std::nullopt;
    }
    e.host = *ip;
  } else if (hp.bracketed) {
    Error(*address, Quote(hp.host) + " is not an IPv6 address");
    return std::nullopt;
  } else if (!IsValidHostName(hp.host)) {
    Error(*address, "invalid host name " + Quote(hp.host));
    return std::nullopt;
  } else {
    std::optional<std::string> ip = Resolve(*address, hp.host);
    if (!ip) return std::nullopt;
    e.host = *ip;
    e.hostname = hp.host;
  }
  e.port = hp.port;
  return e;
}

void Loader::ReadClusters(const Value& v) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "at least one cluster is required");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item,
                 {"name", "endpoints", "load_balancer", "connect_timeout", "pool", "retry",
                  "outlier_detection", "health_check", "circuit_breakers", "hash_key", "affinity",
                  "panic_threshold", "dns_refresh"},
                 &f)) {
      continue;
    }
    Cluster c;
    c.line = item.loc.line;
    c.connect_timeout = config_.timeouts.connect;
    Require(f, item, "name");
    bool ok = true;
    Loc name_loc = item.loc;
    if (const Value* name = f.Get("name")) {
      name_loc = name->loc;
      c.line = name->loc.line;
      // Remember the name even when it is invalid, so routes naming it do not cascade.
      if (name->node.IsScalar()) declared_clusters_.push_back(name->node.Scalar());
      if (auto s = Name(*name)) {
        c.name = *s;
        if (name->node.Scalar() != c.name) declared_clusters_.push_back(c.name);
        for (size_t k = 0; k < config_.clusters.size(); ++k) {
          if (config_.clusters[k].name == c.name) {
            Error(*name, "duplicate cluster name " + Quote(c.name) + " (also clusters[" +
                             std::to_string(k) + "] at line " +
                             std::to_string(cluster_locs_[k].line) + ")");
            ok = false;
          }
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    Require(f, item, "endpoints");
    if (const Value* eps = f.Get("endpoints")) {
      if (ExpectList(*eps)) {
        if (eps->node.size() == 0) Error(*eps, "at least one endpoint is required");
        size_t j = 0;
        std::vector<std::string> seen;
        for (auto e = eps->node.begin(); e != eps->node.end(); ++e, ++j) {
          const Value ev = Item(*eps, *e, j);
          std::optional<Endpoint> endpoint = ReadEndpoint(ev);
          if (!endpoint) continue;
          const std::string addr = endpoint->Address();
          auto dup = std::find(seen.begin(), seen.end(), addr);
          if (dup != seen.end()) {
            std::string how = endpoint->hostname.empty()
                                  ? ""
                                  : " (" + endpoint->hostname + " resolves to " + addr + ")";
            Error(ev, "endpoint " + addr + " is listed twice (also endpoints[" +
                          std::to_string(dup - seen.begin()) + "])" + how +
                          "; use weight to send it more traffic");
          }
          seen.push_back(addr);
          c.endpoints.push_back(std::move(*endpoint));
        }
      }
    }
    if (const Value* lb = f.Get("load_balancer")) {
      if (auto s = String(*lb)) {
        if (std::find(kHashBalancers.begin(), kHashBalancers.end(), *s) != kHashBalancers.end()) {
          c.load_balancer = *s;
          if (!f.Get("hash_key")) {
            Error(*lb, "load balancer " + Quote(*s) +
                           " needs a `hash_key` (header, cookie, query or client_address)");
          }
        } else if (std::find(kLoadBalancers.begin(), kLoadBalancers.end(), *s) ==
                   kLoadBalancers.end()) {
          std::vector<std::string> known = kLoadBalancers;
          known.insert(known.end(), kHashBalancers.begin(), kHashBalancers.end());
          Error(*lb, "unknown load balancer " + Quote(*s) + "; known: " + JoinNames(known));
        } else {
          c.load_balancer = *s;
        }
      }
    }
    if (const Value* ct = f.Get("connect_timeout")) {
      if (auto d = DurationIn(*ct, Duration{1}, std::chrono::minutes(10))) c.connect_timeout = *d;
    }
    if (const Value* pool = f.Get("pool")) {
      Fields pf;
      if (ReadMap(*pool, {"max_idle", "idle_timeout"}, &pf)) {
        if (const Value* x = pf.Get("max_idle")) {
          if (auto n = Integer(*x, 0, 10000)) c.pool.max_idle = static_cast<uint32_t>(*n);
        }
        if (const Value* x = pf.Get("idle_timeout")) {
          if (auto d = DurationIn(*x, Duration{1}, std::chrono::hours(1))) c.pool.idle_timeout = *d;
        }
      }
    }
    ReadResilience(f, &c);
    if (ok) {
      cluster_locs_.push_back(name_loc);
      config_.clusters.push_back(std::move(c));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Upstream resilience (issue 3): retry, outlier_detection, health_check, circuit_breakers,
// hash_key, affinity, panic_threshold, dns_refresh. See docs/config.md.

void Loader::ReadResilience(const Fields& f, Cluster* c) {
  if (const Value* v = f.Get("retry")) ReadRetry(*v, &c->retry);
  if (const Value* v = f.Get("outlier_detection")) ReadOutlier(*v, &c->outlier_detection);
  if (const Value* v = f.Get("health_check")) ReadHealthCheck(*v, &c->health_check);
  if (const Value* v = f.Get("circuit_breakers")) ReadBreakers(*v, &c->circuit_breakers);
  if (const Value* v = f.Get("hash_key")) {
    ReadHashKey(*v, &c->hash_key);
    if (std::find(kHashBalancers.begin(), kHashBalancers.end(), c->load_balancer) ==
        kHashBalancers.end()) {
      Error(*v, "hash_key is used only by load_balancer ring_hash or maglev (this cluster uses " +
                    Quote(c->load_balancer) + ")");
    }
  }
  if (const Value* v = f.Get("affinity")) ReadAffinity(*v, &c->affinity);
  if (const Value* v = f.Get("panic_threshold")) {
    if (auto n = Integer(*v, 0, 100)) c->panic_threshold = static_cast<uint32_t>(*n);
  }
  if (const Value* v = f.Get("dns_refresh")) {
    if (auto d = DurationIn(*v, Duration{0}, std::chrono::hours(24))) c->dns_refresh = *d;
  }
}

void Loader::ReadRetry(const Value& v, RetryPolicy* r) {
  Fields f;
  if (!ReadMap(v, {"on", "max_tries", "per_try_timeout", "backoff", "budget"}, &f)) return;
  r->max_tries = 2;  // a retry section without max_tries means one retry
  if (const Value* x = f.Get("max_tries")) {
    if (auto n = Integer(*x, 1, 10)) r->max_tries = static_cast<uint32_t>(*n);
  }
  if (const Value* on = f.Get("on")) {
    if (ExpectList(*on)) {
      size_t i = 0;
      for (auto it = on->node.begin(); it != on->node.end(); ++it, ++i) {
        const Value item = Item(*on, *it, i);
        std::optional<std::string> s = String(item);
        if (!s) continue;
        uint16_t code = 0;
        auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), code);
        if (*s == "connect_failure") {
          r->on_connect_failure = true;
        } else if (*s == "reset") {
          r->on_reset = true;
        } else if (*s == "timeout") {
          r->on_timeout = true;
        } else if (ec == std::errc() && ptr == s->data() + s->size() && code >= 500 &&
                   code <= 599) {
          r->on_status.push_back(code);
        } else {
          Error(item, "unknown retry condition " + Quote(*s) +
                          "; expected connect_failure, reset, timeout or a status 500..599");
        }
      }
    }
  } else {
    Require(f, v, "on");
  }
  if (const Value* x = f.Get("per_try_timeout")) {
    if (auto d = DurationIn(*x, Duration{0}, std::chrono::hours(1))) r->per_try_timeout = *d;
  }
  if (const Value* b = f.Get("backoff")) {
    Fields bf;
    if (ReadMap(*b, {"base", "max"}, &bf)) {
      // Capped at 1s: a session sleeping in back-off must not hold up a shutdown for long.
      if (const Value* x = bf.Get("base")) {
        if (auto d = DurationIn(*x, Duration{0}, Duration{1000})) r->backoff_base = *d;
      }
      if (const Value* x = bf.Get("max")) {
        if (auto d = DurationIn(*x, Duration{0}, Duration{1000})) r->backoff_max = *d;
      }
      if (r->backoff_max < r->backoff_base) {
        Error(*b, "backoff.max (" + FormatDuration(r->backoff_max) + ") is below backoff.base (" +
                      FormatDuration(r->backoff_base) + ")");
      }
    }
  }
  if (const Value* b = f.Get("budget")) ReadRetryBudget(*b, r);
}

// `budget: 20%` (the ratio alone) or a map. The budget is a rate over a sliding window; the
// concurrency floor it replaced (`min_concurrency`) is still read, as the per-second floor,
// with a warning.
void Loader::ReadRetryBudget(const Value& b, RetryPolicy* r) {
  if (b.node.IsScalar()) {
    if (auto d = Ratio(b)) r->budget_ratio = *d;
    return;
  }
  Fields bf;
  if (!ReadMap(b, {"ratio", "min_per_second", "window", "min_concurrency"}, &bf)) return;
  if (const Value* x = bf.Get("ratio")) {
    if (auto d = Ratio(*x)) r->budget_ratio = *d;
  }
  if (const Value* x = bf.Get("min_per_second")) {
    if (auto n = Integer(*x, 0, 100000)) r->budget_min_per_second = static_cast<uint32_t>(*n);
  }
  if (const Value* x = bf.Get("min_concurrency")) {
    if (bf.Get("min_per_second")) {
      Error(*x, "min_concurrency is the old name of min_per_second; give only min_per_second");
    } else if (auto n = Integer(*x, 0, 100000)) {
      r->budget_min_per_second = static_cast<uint32_t>(*n);
      Warn(x->loc, x->path,
           "the retry budget is a rate now: min_concurrency is read as min_per_second: " +
               std::to_string(*n) + " (retries per second always allowed); rename it");
    }
  }
  if (const Value* x = bf.Get("window")) {
    if (auto d = DurationIn(*x, Duration{1000}, Duration{60000})) r->budget_window = *d;
  }
}

void Loader::ReadOutlier(const Value& v, OutlierDetection* o) {
  Fields f;
  if (!ReadMap(v,
               {"consecutive_5xx", "consecutive_gateway_failures", "base_ejection_time",
                "max_ejection_time", "max_ejection_percent"},
               &f)) {
    return;
  }
  o->enabled = true;
  if (const Value* x = f.Get("consecutive_5xx")) {
    if (auto n = Integer(*x, 0, 1000)) o->consecutive_5xx = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("consecutive_gateway_failures")) {
    if (auto n = Integer(*x, 0, 1000)) o->consecutive_gateway_failures = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("base_ejection_time")) {
    if (auto d = DurationIn(*x, Duration{100}, std::chrono::hours(1))) o->base_ejection_time = *d;
  }
  if (const Value* x = f.Get("max_ejection_time")) {
    if (auto d = DurationIn(*x, Duration{100}, std::chrono::hours(24))) o->max_ejection_time = *d;
  }
  if (const Value* x = f.Get("max_ejection_percent")) {
    if (auto n = Integer(*x, 0, 100)) o->max_ejection_percent = static_cast<uint32_t>(*n);
  }
  if (o->max_ejection_time < o->base_ejection_time) {
    Error(v, "max_ejection_time (" + FormatDuration(o->max_ejection_time) +
                 ") is below base_ejection_time (" + FormatDuration(o->base_ejection_time) + ")");
  }
}

void Loader::ReadHealthCheck(const Value& v, HealthCheck* h) {
  Fields f;
  if (!ReadMap(v,
               {"path", "host", "interval", "jitter", "timeout", "expected_statuses",
                "healthy_threshold", "unhealthy_threshold"},
               &f)) {
    return;
  }
  h->enabled = true;
  if (const Value* x = f.Get("path")) {
    if (auto p = String(*x)) {
      if (!p->starts_with('/') || p->find_first_of(" \t") != std::string::npos) {
        Error(*x, "must start with '/' and contain no spaces, got " + Quote(*p));
      } else {
        h->path = *p;
      }
    }
  }
  if (const Value* x = f.Get("host")) {
    if (auto s = String(*x)) {
      if (!IsValidHostName(*s) && !CanonicalIp(*s)) {
        Error(*x, "invalid host name " + Quote(*s));
      } else {
        h->host = *s;
      }
    }
  }
  if (const Value* x = f.Get("interval")) {
    if (auto d = DurationIn(*x, Duration{10}, std::chrono::hours(1))) h->interval = *d;
  }
  if (const Value* x = f.Get("jitter")) {
    if (auto d = DurationIn(*x, Duration{0}, std::chrono::hours(1))) h->jitter = *d;
  }
  if (const Value* x = f.Get("timeout")) {
    if (auto d = DurationIn(*x, Duration{1}, std::chrono::minutes(10))) h->timeout = *d;
  }
  if (const Value* x = f.Get("healthy_threshold")) {
    if (auto n = Integer(*x, 1, 100)) h->healthy_threshold = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("unhealthy_threshold")) {
    if (auto n = Integer(*x, 1, 100)) h->unhealthy_threshold = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("expected_statuses")) {
    if (ExpectList(*x)) {
      h->expected_statuses.clear();
      size_t i = 0;
      for (auto it = x->node.begin(); it != x->node.end(); ++it, ++i) {
        const Value item = Item(*x, *it, i);
        std::optional<std::string> s = String(item);
        if (!s) continue;
        // "200" or "200-299"
        std::string_view text = *s;
        size_t dash = text.find('-');
        std::string_view a = text.substr(0, dash);
        std::string_view b = dash == std::string_view::npos ? a : text.substr(dash + 1);
        uint16_t lo = 0, hi = 0;
        auto r1 = std::from_chars(a.data(), a.data() + a.size(), lo);
        auto r2 = std::from_chars(b.data(), b.data() + b.size(), hi);
        if (a.empty() || b.empty() || r1.ec != std::errc() || r1.ptr != a.data() + a.size() ||
            r2.ec != std::errc() || r2.ptr != b.data() + b.size() || lo < 100 || hi > 599 ||
            lo > hi) {
          Error(item, "expected a status 100..599 or a range like 200-399, got " + Quote(*s));
          continue;
        }
        h->expected_statuses.emplace_back(lo, hi);
      }
      if (h->expected_statuses.empty() && x->node.size() == 0) {
        Error(*x, "at least one expected status is required");
      }
    }
  }
}

void Loader::ReadBreakers(const Value& v, CircuitBreakers* b) {
  Fields f;
  if (!ReadMap(v, {"max_connections", "max_pending", "max_requests", "max_retries"}, &f)) return;
  struct Spec {
    const char* key;
    uint32_t* out;
  };
  const Spec specs[] = {{"max_connections", &b->max_connections},
                        {"max_pending", &b->max_pending},
                        {"max_requests", &b->max_requests},
                        {"max_retries", &b->max_retries}};
  for (const Spec& s : specs) {
    if (const Value* x = f.Get(s.key)) {
      if (auto n = Integer(*x, 0, 10'000'000)) *s.out = static_cast<uint32_t>(*n);
    }
  }
}

void Loader::ReadHashKey(const Value& v, HashKey* k) {
  Fields f;
  if (!ReadMap(v, {"header", "cookie", "query", "client_address"}, &f)) return;
  if (f.entries().size() != 1) {
    Error(v, "expected exactly one of header, cookie, query, client_address");
    return;
  }
  const auto& e = f.entries().front();
  if (e.key == "client_address") {
    if (auto b = Bool(e.value)) {
      if (!*b) {
        Error(e.value, "client_address: false hashes nothing; name a header, cookie or query");
      } else {
        k->kind = HashKey::Kind::kClientAddress;
      }
    }
    return;
  }
  std::optional<std::string> s = String(e.value);
  if (!s) return;
  if (s->empty() || !IsToken(*s)) {
    Error(e.value, "expected a " + e.key + " name (a token), got " + Quote(*s));
    return;
  }
  if (e.key == "header") {
    k->kind = HashKey::Kind::kHeader;
    k->name = ToLower(*s);
  } else {
    k->kind = e.key == "cookie" ? HashKey::Kind::kCookie : HashKey::Kind::kQuery;
    k->name = *s;
  }
}

void Loader::ReadAffinity(const Value& v, Affinity* a) {
  Fields f;
  if (!ReadMap(v, {"cookie", "ttl"}, &f)) return;
  Require(f, v, "cookie");
  if (const Value* x = f.Get("cookie")) {
    if (auto s = String(*x)) {
      if (s->empty() || !IsToken(*s)) {
        Error(*x, "expected a cookie name (a token), got " + Quote(*s));
      } else {
        a->cookie = *s;
      }
    }
  }
  if (const Value* x = f.Get("ttl")) {
    if (auto d = DurationIn(*x, Duration{0}, std::chrono::hours(24 * 400))) a->ttl = *d;
  }
}

std::optional<std::string> Loader::ReadPath(const Value& v) {
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  if (!s->starts_with('/')) {
    Error(v, "must start with '/', got " + Quote(*s));
    return std::nullopt;
  }
  if (s->find_first_of(" \t") != std::string::npos) {
    Error(v, "must not contain spaces (a request path never does), got " + Quote(*s));
    return std::nullopt;
  }
  if (s->find_first_of("?#") != std::string::npos) {
    Error(v, "must not contain '?' or '#': paths are matched without the query string, got " +
                 Quote(*s));
    return std::nullopt;
  }
  return s;
}

void Loader::ReadHosts(const Value& v, std::vector<std::string>* hosts) {
  std::vector<Value> items;
  if (v.node.IsSequence()) {
    if (v.node.size() == 0) {
      Error(v, "must list at least one host (leave 'host' out to match any host)");
      return;
    }
    size_t i = 0;
    for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) items.push_back(Item(v, *it, i));
  } else if (v.node.IsScalar()) {
    items.push_back(v);
  } else {
    Error(v, "expected a host name or a list of host names, got " + KindOf(v.node));
    return;
  }
  for (const Value& item : items) {
    std::optional<std::string> s = String(item);
    if (!s) continue;
    std::string host = ToLower(*s);
    if (host == "*") {
      hosts->push_back(host);
      continue;
    }
    if (host.starts_with('[')) {
      // An IPv6 literal, as it appears in a Host header.
      std::optional<std::string> ip;
      if (host.ends_with(']')) ip = CanonicalIp(std::string_view(host).substr(1, host.size() - 2));
      if (!ip || ip->find(':') == std::string::npos) {
        Error(item, "expected an IPv6 address in brackets like [::1], got " + Quote(*s));
      } else {
        hosts->push_back("[" + *ip + "]");
      }
      continue;
    }
    if (host.find(':') != std::string::npos) {
      Error(item, "must not include a port (the Host header is compared without its port), got " +
                      Quote(*s));
      continue;
    }
    if (host.ends_with('.')) host.pop_back();
    std::string_view name = host;
    const bool wildcard = name.starts_with("*.");
    if (wildcard) name.remove_prefix(2);
    if (!IsValidHostName(name) || name.ends_with('.')) {
      Error(item, "expected a host name like example.com or *.example.com, got " + Quote(*s));
      continue;
    }
    if (std::find(hosts->begin(), hosts->end(), host) == hosts->end()) hosts->push_back(host);
  }
}

void Loader::ReadMethods(const Value& v, std::vector<std::string>* methods) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "must list at least one method (leave 'methods' out to match any method)");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    std::optional<std::string> s = String(item);
    if (!s) continue;
    if (!IsToken(*s)) {
      Error(item, Quote(*s) + " is not a valid method name");
      continue;
    }
    std::string m = ToUpper(*s);
    if (std::find(methods->begin(), methods->end(), m) == methods->end()) methods->push_back(m);
  }
}

void Loader::ReadHeaders(const Value& v, std::vector<HeaderMatcher>* headers) {
  if (!ExpectList(v)) return;
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item, {"name", "value", "present", "invert"}, &f)) continue;
    HeaderMatcher h;
    bool ok = true;
    Require(f, item, "name");
    if (const Value* name = f.Get("name")) {
      std::optional<std::string> s = String(*name);
      if (s && !IsToken(*s)) {
        Error(*name, Quote(*s) + " is not a valid header name");
        s.reset();
      }
      if (s) h.name = ToLower(*s);
      ok = ok && s.has_value();
    } else {
      ok = false;
    }
    const Value* value = f.Get("value");
    const Value* present = f.Get("present");
    if (value && present) {
      Error(*present, "use either 'value' or 'present', not both");
      ok = false;
    }
    if (value) {
      std::optional<std::string> s = String(*value);
      if (s && (s->starts_with(' ') || s->starts_with('\t') || s->ends_with(' ') ||
                s->ends_with('\t'))) {
        Error(*value,
              "has leading or trailing whitespace, which a received header value never "
              "has, got " +
                  Quote(*s));
        s.reset();
      }
      if (s) h.exact = *s;
      ok = ok && s.has_value();
    }
    bool want_present = true;
    if (present) {
      std::optional<bool> b = Bool(*present);
      if (b) want_present = *b;
      ok = ok && b.has_value();
    }
    if (const Value* invert = f.Get("invert")) {
      std::optional<bool> b = Bool(*invert);
      if (b) h.invert = *b;
      ok = ok && b.has_value();
    }
    if (!want_present) h.invert = !h.invert;  // "present: false" = must be absent
    if (ok) headers->push_back(std::move(h));
  }
}

void Loader::ReadMatch(const Value& v, RouteMatch* m) {
  Fields f;
  if (!ReadMap(v, {"path", "path_prefix", "path_regex", "host", "methods", "headers"}, &f)) return;
  const Value* first_path = nullptr;
  std::string first_key;
  for (const char* key : {"path", "path_prefix", "path_regex"}) {
    const Value* p = f.Get(key);
    if (!p) continue;
    if (first_path) {
      const bool later =
          p->loc.line > first_path->loc.line ||
          (p->loc.line == first_path->loc.line && p->loc.column > first_path->loc.column);
      const Value* report = later ? p : first_path;
      const std::string other = later ? first_key : key;
      Error(*report, "use only one of path, path_prefix, path_regex (" + other + " is also set)");
      continue;
    }
    first_path = p;
    first_key = key;
    if (first_key == "path_regex") {
      if (auto s = String(*p)) {
        if (std::string bad = CheckRegex(*s); !bad.empty()) {
          Error(*p, bad);
        } else {
          m->path_regex = *s;
        }
      }
    } else if (auto s = ReadPath(*p)) {
      (first_key == "path" ? m->path : m->path_prefix) = *s;
    }
  }
  if (const Value* host = f.Get("host")) ReadHosts(*host, &m->hosts);
  if (const Value* methods = f.Get("methods")) ReadMethods(*methods, &m->methods);
  if (const Value* headers = f.Get("headers")) ReadHeaders(*headers, &m->headers);
}

void Loader::ReadRecord(const Value& v, std::optional<Record>* out) {
  Fields f;
  if (!ReadMap(v, {"path", "sample", "max_body_bytes", "redact_headers"}, &f)) return;
  Record rec;
  bool ok = true;
  Require(f, v, "path");
  if (const Value* p = f.Get("path")) {
    auto s = String(*p);
    if (s && s->empty()) Error(*p, "must not be empty");
    if (s && !s->empty())
      rec.path = *s;
    else
      ok = false;
  } else {
    ok = false;
  }
  if (const Value* p = f.Get("sample")) {
    auto s = String(*p);
    double x = -1;
    if (s && !s->empty()) {
      std::string t = *s;
      const bool percent = t.back() == '%';
      if (percent) t.pop_back();
      char* end = nullptr;
      x = std::strtod(t.c_str(), &end);
      if (t.empty() || end != t.c_str() + t.size()) x = -1;
      if (percent) x /= 100;
    }
    if (s && !(x >= 0 && x <= 1)) {
      Error(*p, "expected a ratio 0..1 or a percentage such as 10%, got " + Quote(*s));
      ok = false;
    } else if (s) {
      rec.sample = x;
    }
  }
  if (const Value* p = f.Get("max_body_bytes")) {
    if (auto n = SizeIn(*p, 0, 64ull << 20))
      rec.max_body_bytes = *n;
    else
      ok = false;
  }
  if (const Value* p = f.Get("redact_headers")) {
    if (ExpectList(*p)) {
      rec.redact_headers.clear();
      size_t i = 0;
      for (auto it = p->node.begin(); it != p->node.end(); ++it, ++i) {
        const Value item = Item(*p, *it, i);
        auto s = String(item);
        if (s && (s->empty() || s->find_first_of(" :\t") != std::string::npos)) {
          Error(item, "expected a header name, got " + Quote(*s));
          ok = false;
        } else if (s) {
          rec.redact_headers.push_back(ToLower(*s));
        }
      }
    }
  }
  if (ok) *out = std::move(rec);
}

void Loader::ReadRoutes(const Value& v) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "at least one route is required");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item, {"name", "match", "cluster", "timeout", "upstream_timeout", "record"}, &f))
      continue;
    Route r;
    r.name = "route-" + std::to_string(i);
    r.line = item.loc.line;
    Loc name_loc = item.loc;
    if (const Value* name = f.Get("name")) {
      if (auto s = Name(*name)) r.name = *s;
      name_loc = name->loc;
    }
    for (size_t k = 0; k < config_.routes.size(); ++k) {
      if (config_.routes[k].name == r.name) {
        Error(name_loc, Sub(item.path, "name"),
              "duplicate route name " + Quote(r.name) + " (also routes[" + std::to_string(k) +
                  "] at line " + std::to_string(config_.routes[k].line) + ")");
      }
    }
    if (const Value* match = f.Get("match")) ReadMatch(*match, &r.match);
    Require(f, item, "cluster");
    const Value* cluster = f.Get("cluster");
    bool cluster_ok = false;
    if (cluster) {
      if (auto s = String(*cluster)) {
        r.cluster = *s;
        cluster_ok = true;
      }
    }
    route_locs_.push_back(item.loc);
    route_cluster_locs_.push_back(cluster ? cluster->loc : item.loc);
    route_cluster_paths_.push_back(Sub(item.path, "cluster"));
    route_cluster_ok_.push_back(cluster_ok);
    if (const Value* t = f.Get("timeout")) {
      if (auto d = DurationIn(*t, Duration{0}, std::chrono::hours(24))) r.timeout = *d;
    }
    if (const Value* t = f.Get("upstream_timeout")) {
      if (auto d = DurationIn(*t, Duration{1}, std::chrono::hours(24))) r.upstream_timeout = *d;
    }
    if (const Value* rec = f.Get("record")) ReadRecord(*rec, &r.record);
    config_.routes.push_back(std::move(r));
  }
}

// ---------------------------------------------------------------------------------------------
// SLOs (issue 6): objectives over groups of routes; the slo module does the math.

std::optional<double> Loader::Percent(const Value& v) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a percentage like 99.9%, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::string error;
  std::optional<double> p = ParsePercent(*s, &error);
  if (!p) Error(v, error);
  return p;
}

void Loader::ReadSlos(const Value& v) {
  if (!ExpectList(v)) return;
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(
            item,
            {"name", "routes", "availability", "latency", "window", "min_requests", "webhooks"},
            &f)) {
      continue;
    }
    Slo slo;
    slo.line = item.loc.line;
    bool ok = true;
    Require(f, item, "name");
    if (const Value* name = f.Get("name")) {
      if (auto s = Name(*name)) {
        slo.name = *s;
        for (size_t k = 0; k < config_.slos.size(); ++k) {
          if (config_.slos[k].name == slo.name) {
            Error(*name, "duplicate SLO name " + Quote(slo.name) + " (also slos[" +
                             std::to_string(k) + "] at line " +
                             std::to_string(config_.slos[k].line) + ")");
            ok = false;
          }
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    if (const Value* routes = f.Get("routes")) {
      if (ExpectList(*routes)) {
        if (routes->node.size() == 0) {
          Error(*routes, "must list at least one route name, or \"*\" for every route");
          ok = false;
        }
        bool all = false;
        size_t j = 0;
        for (auto r = routes->node.begin(); r != routes->node.end(); ++r, ++j) {
          const Value rv = Item(*routes, *r, j);
          std::optional<std::string> name = String(rv);
          if (!name) {
            ok = false;
            continue;
          }
          if (*name == "*") {
            all = true;
            continue;
          }
          const bool declared =
              std::any_of(config_.routes.begin(), config_.routes.end(),
                          [&](const Route& route) { return route.name == *name; });
          if (!declared) {
            std::vector<std::string> names;
            for (const Route& route : config_.routes) names.push_back(route.name);
            Error(rv, "route " + Quote(*name) + " is not declared (declared: " +
                          (names.empty() ? std::string("none") : JoinNames(names)) +
                          "; \"*\" means every route)");
            ok = false;
          } else if (std::find(slo.routes.begin(), slo.routes.end(), *name) != slo.routes.end()) {
            Error(rv, "route " + Quote(*name) + " is listed twice");
            ok = false;
          } else {
            slo.routes.push_back(*name);
          }
        }
        if (all && !slo.routes.empty()) {
          Error(*routes, "\"*\" already means every route: list either \"*\" or route names");
          ok = false;
        }
        if (all) slo.routes.clear();
      } else {
        ok = false;
      }
    }
    if (const Value* a = f.Get("availability")) {
      slo.availability = Percent(*a);
      ok = ok && slo.availability.has_value();
    }
    if (const Value* lat = f.Get("latency")) {
      Fields lf;
      if (ReadMap(*lat, {"threshold", "objective"}, &lf)) {
        SloLatency l;
        Require(lf, *lat, "threshold");
        Require(lf, *lat, "objective");
        const Value* threshold = lf.Get("threshold");
        const Value* objective = lf.Get("objective");
        std::optional<Duration> t;
        std::optional<double> o;
        if (threshold) t = DurationIn(*threshold, Duration{1}, std::chrono::minutes(10));
        if (objective) o = Percent(*objective);
        if (t && o) {
          l.threshold = *t;
          l.objective = *o;
          slo.latency = l;
        } else {
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    if (!f.Get("availability") && !f.Get("latency")) {
      Error(item.loc, item.path,
            "an SLO needs an objective: availability (like 99.9%), latency "
            "({ threshold: 300ms, objective: 99% }), or both");
      ok = false;
    }
    if (const Value* w = f.Get("window")) {
      if (auto d = DurationIn(*w, std::chrono::hours(24), std::chrono::hours(24 * 90))) {
        slo.window = *d;
      } else {
        ok = false;
      }
    }
    if (const Value* m = f.Get("min_requests")) {
      if (auto n = Integer(*m, 0, 1'000'000'000)) {
        slo.min_requests = *n;
      } else {
        ok = false;
      }
    }
    if (const Value* hooks = f.Get("webhooks")) {
      if (ExpectList(*hooks)) {
        size_t j = 0;
        for (auto h = hooks->node.begin(); h != hooks->node.end(); ++h, ++j) {
          const Value hv = Item(*hooks, *h, j);
          std::optional<std::string> url = String(hv);
          if (!url) {
            ok = false;
            continue;
          }
          Webhook hook;
          std::string error;
          if (!ParseHttpUrl(*url, &hook, &error)) {
            Error(hv, Quote(*url) + ": " + error);
            ok = false;
            continue;
          }
          hook.url = *url;
          slo.webhooks.push_back(std::move(hook));
        }
      } else {
        ok = false;
      }
    }
    // The page alert needs an error rate of 14.4x the budget: with a loose objective that is
    // over 100 %, so it can never fire. Legal, but worth saying.
    for (const auto& [what, objective] :
         {std::pair<const char*, std::optional<double>>{"availability", slo.availability},
          {"latency",
           slo.latency ? std::optional<double>(slo.latency->objective) : std::nullopt}}) {
      if (objective && 14.4 * (1 - *objective) > 1) {
        Warn(item.loc, Sub(item.path, what),
             "with an objective of " + FormatPercent(*objective) +
                 " the fast-burn page alert (14.4x the error budget) can never fire");
      }
    }
    if (ok) config_.slos.push_back(std::move(slo));
  }
}

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
                "timeouts", "limits", "access_log", "tracing", "slos", "telemetry"},
               &f)) {
    result.errors = std::move(errors_);
    return result;
  }
  config_.source = file_;
  // Timeouts first: clusters inherit timeouts.connect.
  if (const Value* v = f.Get("timeouts")) ReadTimeouts(*v, &config_.timeouts);
  if (const Value* v = f.Get("limits")) ReadLimits(*v, &config_.limits);
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

  if (!IsLoopbackIp(config_.admin.address) && config_.admin.token.empty()) {
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

  std::stable_sort(errors_.begin(), errors_.end(), ByPosition);
  std::stable_sort(warnings_.begin(), warnings_.end(), ByPosition);
  result.warnings = std::move(warnings_);
  result.errors = std::move(errors_);
  if (result.errors.empty()) result.config = std::make_shared<const Config>(std::move(config_));
  return result;
}

}  // namespace

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
