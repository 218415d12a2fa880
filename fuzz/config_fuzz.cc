// Fuzzes config::LoadString (and, on success, Describe, ToRedactedYaml and RouteTable). Beyond
// "never crashes, never throws" it checks, for every input:
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
#include "http/http.h"
#include "route/route.h"

namespace {

using namespace ficus;

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const config::LoadResult r = config::LoadString(input, "fuzz.yaml", Options());
  CheckResult(r, "fuzz.yaml");
  if (!r.config) return 0;

  const config::Config& c = *r.config;
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
  return 0;
}
