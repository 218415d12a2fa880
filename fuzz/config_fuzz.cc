// Fuzzes config::LoadString (and, on success, Describe, ToRedactedYaml and RouteTable) twice per
// input: the bytes as a YAML file, and the bytes as one value in a valid template (so that odd
// strings — regexes, hosts, header values, names, request paths — get past the schema and reach
// the round trip and the router). Beyond "never crashes, never throws" it checks:
//  - a result has a config xor errors; every error has a file, a reason and a sane position;
//  - a loaded config is resolved (workers 1..64, every route's cluster_index valid);
//  - ToRedactedYaml of a loaded config loads again into the same config (compared through
//    Describe, ignoring the token and resolved names), and is a fixed point after that; the
//    token comes back as "<redacted>";
//  - the route table built from it answers a few requests with -1 or a valid index.
// DNS and the environment are fakes, so runs are deterministic and offline.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"
#include "fuzz/fuzz_check.h"
#include "http/http.h"
#include "route/route.h"

namespace {

using namespace ficus;

const config::LoadOptions& Options() {
  static const config::LoadOptions options = [] {
    config::LoadOptions o;
    o.resolve = [](const std::string& name, std::string* error) -> std::optional<std::string> {
      if (name == "localhost" || name.starts_with("ok")) return "127.0.0.1";
      if (name.starts_with("six")) return "fd00::1";
      *error = "Name or service not known";
      return std::nullopt;
    };
    o.getenv = [](const std::string& name) -> std::optional<std::string> {
      if (name == "SET") return "value";
      if (name == "EMPTY") return "";
      if (name == "PORT") return "8080";
      if (name == "ADDR") return "127.0.0.1:3000";
      if (name == "NL") return "a\nb";
      return std::nullopt;
    };
    return o;
  }();
  return options;
}

void CheckResult(const config::LoadResult& r, std::string_view source) {
  FUZZ_CHECK((r.config == nullptr) != r.errors.empty());
  for (const config::ConfigError& e : r.errors) {
    FUZZ_CHECK(e.file == source);
    FUZZ_CHECK(!e.reason.empty());
    FUZZ_CHECK(e.line >= 0 && e.column >= 0);
    FUZZ_CHECK(!e.ToString().empty());
  }
  for (const config::ConfigError& w : r.warnings) FUZZ_CHECK(!w.reason.empty());
}

// Describe without what a round trip through ToRedactedYaml changes on purpose.
std::string Comparable(const config::Config& c) {
  config::Config copy = c;
  copy.source.clear();
  copy.admin.token.clear();
  for (config::Cluster& cl : copy.clusters) {
    for (config::Endpoint& e : cl.endpoints) e.hostname.clear();
  }
  return config::Describe(copy);
}

// Every invariant of a successfully loaded config; `probe` is a request to route.
void CheckLoaded(const config::Config& c, const http::RequestHead& probe) {
  FUZZ_CHECK(c.workers >= 1 && c.workers <= 64);
  FUZZ_CHECK(!c.listeners.empty() && !c.clusters.empty() && !c.routes.empty());
  for (const config::Route& route : c.routes) {
    FUZZ_CHECK(route.cluster_index < c.clusters.size());
    FUZZ_CHECK(c.clusters[route.cluster_index].name == route.cluster);
  }
  FUZZ_CHECK(!config::Describe(c).empty());

  const std::string yaml = config::ToRedactedYaml(c);
  const config::LoadResult again = config::LoadString(yaml, "roundtrip", Options());
  CheckResult(again, "roundtrip");
  if (!again.config) {
    std::fprintf(stderr, "round trip failed:\n%s\n", yaml.c_str());
    for (const auto& e : again.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  }
  FUZZ_CHECK(again.config != nullptr);
  // The token comes back as the redaction marker, never as itself.
  FUZZ_CHECK(again.config->admin.token == (c.admin.token.empty() ? "" : "<redacted>"));
  if (Comparable(*again.config) != Comparable(c)) {
    std::fprintf(stderr, "round trip changed the config:\n%s\n---\n%s\n", Comparable(c).c_str(),
                 Comparable(*again.config).c_str());
    std::abort();
  }
  const std::string yaml2 = config::ToRedactedYaml(*again.config);
  const config::LoadResult third = config::LoadString(yaml2, "roundtrip", Options());
  FUZZ_CHECK(third.config != nullptr);
  FUZZ_CHECK(config::ToRedactedYaml(*third.config) == yaml2);

  route::RouteTable table(c);
  FUZZ_CHECK(table.size() == c.routes.size());
  const config::RouteMatch& first = c.routes[0].match;
  std::string host = first.hosts.empty() ? "example.com" : first.hosts[0];
  if (host.starts_with("*.")) host = std::string("a").append(host, 1);
  const std::string path =
      !first.path.empty() ? first.path : (!first.path_prefix.empty() ? first.path_prefix : "/");
  http::Header field{"x-env", "canary", http::HeaderRole::kOther};
  for (const std::string_view method : {"GET", "POST"}) {
    for (const std::string_view p : {std::string_view(path), std::string_view("/")}) {
      http::RequestHead head;
      head.method_text = method;
      head.path = p;
      head.target = p;
      head.host = host;
      head.headers = std::span<http::Header>(&field, 1);
      const int m = table.Match(head);
      FUZZ_CHECK(m >= -1 && m < static_cast<int>(c.routes.size()));
    }
  }
  const int m = table.Match(probe);
  FUZZ_CHECK(m >= -1 && m < static_cast<int>(c.routes.size()));
}

// A YAML double-quoted scalar holding exactly `s` (non-ASCII bytes pass through as they are).
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out.append(buf);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

// The template with one value taken from the input: the first byte picks which one, the rest is
// the value. One value at a time, so that most inputs still load and reach the round trip.
void FuzzTemplate(std::string_view input) {
  enum Field {
    kListener,
    kCluster,
    kEndpoint,
    kHost,
    kRegex,
    kMethod,
    kHeaderName,
    kHeaderValue,
    kTimeout,
    kPrefix,
    kDataDir,
    kToken,
    kRequestPath,
    kFieldCount
  };
  static const char* const kDefaults[kFieldCount] = {
      "l", "c", "127.0.0.1:1", "a.com", "/[a-z]+/(\\d+)?.*", "GET", "x", "v", "1s", "/",
      "d", "",  "/ab/12x"};
  if (input.empty()) return;
  std::string f[kFieldCount];
  for (int i = 0; i < kFieldCount; ++i) f[i] = kDefaults[i];
  f[static_cast<unsigned char>(input[0]) % kFieldCount] = std::string(input.substr(1));
  std::string yaml;
  yaml.append("listeners: [{ name: ").append(Quoted(f[kListener]));
  yaml.append(", listen: \"127.0.0.1:8080\" }]\nclusters: [{ name: ").append(Quoted(f[kCluster]));
  yaml.append(", endpoints: [").append(Quoted(f[kEndpoint])).append("] }]\nroutes:\n");
  yaml.append("  - { name: r0, match: { host: [").append(Quoted(f[kHost]));
  yaml.append("], path_regex: ").append(Quoted(f[kRegex]));
  yaml.append(", methods: [").append(Quoted(f[kMethod]));
  yaml.append("], headers: [{ name: ").append(Quoted(f[kHeaderName]));
  yaml.append(", value: ").append(Quoted(f[kHeaderValue]));
  yaml.append(" }] }, cluster: ").append(Quoted(f[kCluster]));
  yaml.append(", timeout: ").append(Quoted(f[kTimeout])).append(" }\n");
  yaml.append("  - { match: { path_prefix: ").append(Quoted(f[kPrefix]));
  yaml.append(" }, cluster: ").append(Quoted(f[kCluster])).append(" }\n");
  yaml.append("data_dir: ").append(Quoted(f[kDataDir])).append("\n");
  yaml.append("admin: { token: ").append(Quoted(f[kToken])).append(" }\n");

  const config::LoadResult r = config::LoadString(yaml, "template.yaml", Options());
  CheckResult(r, "template.yaml");
  if (!r.config) return;
  http::Header field{f[kHeaderName], f[kHeaderValue], http::HeaderRole::kOther};
  http::RequestHead probe;
  probe.method_text = f[kMethod];
  probe.host = f[kHost];
  probe.path = f[kRequestPath];
  probe.target = probe.path;
  probe.headers = std::span<http::Header>(&field, 1);
  CheckLoaded(*r.config, probe);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const config::LoadResult r = config::LoadString(input, "fuzz.yaml", Options());
  CheckResult(r, "fuzz.yaml");
  if (r.config) CheckLoaded(*r.config, http::RequestHead{});
  FuzzTemplate(input);
  return 0;
}
