// Tests for ficus::config: the full example, defaults, every kind of error (with exact
// file:line:col and field path), env substitution, Describe and ToRedactedYaml.
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace ficus::config {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// DNS without the network: two known names, everything else fails like getaddrinfo would.
LoadOptions TestOptions() {
  LoadOptions o;
  o.resolve = [](const std::string& name, std::string* error) -> std::optional<std::string> {
    if (name == "localhost") return "127.0.0.1";
    if (name == "db.internal") return "10.0.0.5";
    if (name == "v6.internal") return "fd00::5";
    *error = "Name or service not known";
    return std::nullopt;
  };
  return o;
}

LoadResult Load(std::string_view yaml) { return LoadString(yaml, "test.yaml", TestOptions()); }

std::vector<std::string> Errors(const LoadResult& r) {
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.ToString());
  return out;
}
std::vector<std::string> Warnings(const LoadResult& r) {
  std::vector<std::string> out;
  for (const ConfigError& e : r.warnings) out.push_back(e.ToString());
  return out;
}

// Loads and expects success; returns the config.
std::shared_ptr<const Config> LoadOk(std::string_view yaml) {
  LoadResult r = Load(yaml);
  EXPECT_THAT(Errors(r), IsEmpty()) << yaml;
  EXPECT_TRUE(r.config != nullptr);
  return r.config;
}

// Loads and expects exactly these errors (ToString form).
void ExpectErrors(std::string_view yaml, const std::vector<std::string>& expected) {
  LoadResult r = Load(yaml);
  EXPECT_EQ(r.config, nullptr);
  EXPECT_EQ(Errors(r), expected) << yaml;
}

// Loads and expects one error containing `reason` at `field`.
void ExpectError(std::string_view yaml, const std::string& field, const std::string& reason) {
  LoadResult r = Load(yaml);
  EXPECT_EQ(r.config, nullptr) << yaml;
  ASSERT_EQ(r.errors.size(), 1u) << yaml << "\n" << testing::PrintToString(Errors(r));
  EXPECT_EQ(r.errors[0].field, field) << yaml;
  EXPECT_THAT(r.errors[0].reason, HasSubstr(reason)) << yaml;
  EXPECT_EQ(r.errors[0].file, "test.yaml");
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_GT(r.errors[0].column, 0);
}

constexpr std::string_view kMinimal = R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)";

// A minimal config with `extra` appended as more top-level keys.
std::string Minimal(std::string_view extra) { return std::string(kMinimal) + std::string(extra); }

// The brief's example, verbatim apart from the token variable.
constexpr std::string_view kFull = R"(workers: 2                  # 0 or absent = number of cores
data_dir: ./ficus-data
log_level: info             # trace|debug|info|warn|error
admin:
  listen: 127.0.0.1:9901
  token: ${FICUS_TEST_TOKEN}
listeners:
  - name: public
    listen: 0.0.0.0:8080    # "host:port", IPv6 as [::1]:8080
clusters:
  - name: shop
    endpoints: [127.0.0.1:3000, { address: 127.0.0.1:3001, weight: 2 }]
    load_balancer: round_robin
    connect_timeout: 1s
    pool: { max_idle: 64, idle_timeout: 4s }
routes:
  - name: products
    match: { host: shop.example.com, path_prefix: /api, methods: [GET, HEAD], headers: [{ name: x-env, value: canary }, { name: x-debug, present: true }, { name: x-beta, value: "1", invert: true }] }
    cluster: shop
    timeout: 30s
    upstream_timeout: 10s
timeouts: { connect: 2s, request_head: 10s, idle: 60s, upstream_response: 30s, request: 0s, drain: 15s }
limits: { max_head_bytes: 64KiB, max_header_count: 100, max_body_bytes: 1GiB, max_connections: 10000 }
)";

class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvGuard() { unsetenv(name_); }

 private:
  const char* name_;
};

// ---------------------------------------------------------------------------------------------
// Valid configs

TEST(ConfigLoad, FullExample) {
  EnvGuard token("FICUS_TEST_TOKEN", "s3cret-token-0123456789");
  auto c = LoadOk(kFull);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->source, "test.yaml");
  EXPECT_EQ(c->workers, 2u);
  EXPECT_EQ(c->data_dir, "./ficus-data");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->admin.address, "127.0.0.1");
  EXPECT_EQ(c->admin.port, 9901);
  EXPECT_EQ(c->admin.token, "s3cret-token-0123456789");
  EXPECT_EQ(c->admin.Address(), "127.0.0.1:9901");

  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].name, "public");
  EXPECT_EQ(c->listeners[0].address, "0.0.0.0");
  EXPECT_EQ(c->listeners[0].port, 8080);

  ASSERT_EQ(c->clusters.size(), 1u);
  const Cluster& shop = c->clusters[0];
  EXPECT_EQ(shop.name, "shop");
  EXPECT_EQ(shop.line, 11);
  ASSERT_EQ(shop.endpoints.size(), 2u);
  EXPECT_EQ(shop.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(shop.endpoints[0].port, 3000);
  EXPECT_EQ(shop.endpoints[0].weight, 1u);
  EXPECT_EQ(shop.endpoints[1].Address(), "127.0.0.1:3001");
  EXPECT_EQ(shop.endpoints[1].weight, 2u);
  EXPECT_EQ(shop.endpoints[1].hostname, "");
  EXPECT_EQ(shop.load_balancer, "round_robin");
  EXPECT_EQ(shop.connect_timeout, Duration{1000});
  EXPECT_EQ(shop.pool.max_idle, 64u);
  EXPECT_EQ(shop.pool.idle_timeout, Duration{4000});

  ASSERT_EQ(c->routes.size(), 1u);
  const Route& r = c->routes[0];
  EXPECT_EQ(r.name, "products");
  EXPECT_EQ(r.line, 17);
  EXPECT_EQ(r.cluster, "shop");
  EXPECT_EQ(r.cluster_index, 0u);
  EXPECT_EQ(r.timeout, Duration{30000});
  EXPECT_EQ(r.upstream_timeout, Duration{10000});
  EXPECT_THAT(r.match.hosts, ElementsAre("shop.example.com"));
  EXPECT_EQ(r.match.path_prefix, "/api");
  EXPECT_EQ(r.match.path, "");
  EXPECT_EQ(r.match.path_regex, "");
  EXPECT_THAT(r.match.methods, ElementsAre("GET", "HEAD"));
  ASSERT_EQ(r.match.headers.size(), 3u);
  EXPECT_EQ(r.match.headers[0].name, "x-env");
  EXPECT_EQ(r.match.headers[0].exact, "canary");
  EXPECT_FALSE(r.match.headers[0].invert);
  EXPECT_EQ(r.match.headers[1].name, "x-debug");
  EXPECT_EQ(r.match.headers[1].exact, std::nullopt);
  EXPECT_FALSE(r.match.headers[1].invert);
  EXPECT_EQ(r.match.headers[2].name, "x-beta");
  EXPECT_EQ(r.match.headers[2].exact, "1");
  EXPECT_TRUE(r.match.headers[2].invert);

  EXPECT_EQ(c->timeouts.connect, Duration{2000});
  EXPECT_EQ(c->timeouts.request_head, Duration{10000});
  EXPECT_EQ(c->timeouts.idle, Duration{60000});
  EXPECT_EQ(c->timeouts.upstream_response, Duration{30000});
  EXPECT_EQ(c->timeouts.request, Duration{0});
  EXPECT_EQ(c->timeouts.drain, Duration{15000});
  EXPECT_EQ(c->limits.max_head_bytes, 64u * 1024);
  EXPECT_EQ(c->limits.max_header_count, 100u);
  EXPECT_EQ(c->limits.max_body_bytes, 1ull << 30);
  EXPECT_EQ(c->limits.max_connections, 10000u);
}

TEST(ConfigLoad, EveryDefault) {
  auto c = LoadOk(kMinimal);
  ASSERT_TRUE(c);
  const uint32_t cores = std::thread::hardware_concurrency();
  EXPECT_EQ(c->workers, std::clamp<uint32_t>(cores, 1, 64));
  EXPECT_EQ(c->data_dir, "./ficus-data");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->admin.address, "127.0.0.1");
  EXPECT_EQ(c->admin.port, 9901);
  EXPECT_EQ(c->admin.token, "");
  EXPECT_EQ(c->listeners[0].name, "listener-0");
  EXPECT_EQ(c->listeners[0].Address(), "0.0.0.0:8080");
  const Cluster& app = c->clusters[0];
  EXPECT_EQ(app.load_balancer, "round_robin");
  EXPECT_EQ(app.connect_timeout, Duration{2000});  // = timeouts.connect
  EXPECT_EQ(app.pool.max_idle, 1024u);
  EXPECT_EQ(app.pool.idle_timeout, Duration{4000});
  EXPECT_EQ(app.endpoints[0].weight, 1u);
  const Route& r = c->routes[0];
  EXPECT_EQ(r.name, "route-0");
  EXPECT_TRUE(r.match.hosts.empty());
  EXPECT_TRUE(r.match.methods.empty());
  EXPECT_TRUE(r.match.headers.empty());
  EXPECT_EQ(r.match.path + r.match.path_prefix + r.match.path_regex, "");
  EXPECT_EQ(r.timeout, std::nullopt);
  EXPECT_EQ(r.upstream_timeout, std::nullopt);
  const Timeouts t;
  EXPECT_EQ(c->timeouts.connect, t.connect);
  EXPECT_EQ(c->timeouts.request_head, Duration{10000});
  EXPECT_EQ(c->timeouts.idle, Duration{60000});
  EXPECT_EQ(c->timeouts.upstream_response, Duration{30000});
  EXPECT_EQ(c->timeouts.request, Duration{0});
  EXPECT_EQ(c->timeouts.drain, Duration{15000});
  EXPECT_EQ(c->limits.max_head_bytes, 65536u);
  EXPECT_EQ(c->limits.max_header_count, 100u);
  EXPECT_EQ(c->limits.max_body_bytes, 1ull << 30);
  EXPECT_EQ(c->limits.max_connections, 10000u);
}

TEST(ConfigLoad, WorkersZeroMeansCores) {
  auto c = LoadOk(Minimal("workers: 0\n"));
  ASSERT_TRUE(c);
  EXPECT_GE(c->workers, 1u);
  EXPECT_LE(c->workers, 64u);
  c = LoadOk(Minimal("workers: 64\n"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->workers, 64u);
}

TEST(ConfigLoad, ClusterInheritsTimeoutsConnect) {
  auto c = LoadOk(Minimal("timeouts: { connect: 3s }\n"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->clusters[0].connect_timeout, Duration{3000});
  EXPECT_EQ(c->timeouts.connect, Duration{3000});
}

TEST(ConfigLoad, BlockStyleAndMultipleRoutes) {
  auto c = LoadOk(R"(
listeners:
  - name: a
    listen: 127.0.0.1:8080
  - name: b
    listen: "[::1]:8080"
  - name: c
    listen: "[::]:9090"
clusters:
  - name: api
    endpoints:
      - 10.0.0.1:80
      - address: "[fd00::1]:80"
        weight: 1000
  - name: web
    endpoints: [localhost:3000, "db.internal:5432"]
routes:
  - match: { path: /healthz }
    cluster: api
  - match: { path_regex: "/v[0-9]+/.*", host: [API.example.com, "*.api.example.com"] }
    cluster: api
  - match: { methods: [get, Post] }
    cluster: web
)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->listeners[1].address, "::1");
  EXPECT_EQ(c->listeners[1].Address(), "[::1]:8080");
  EXPECT_EQ(c->listeners[2].Address(), "[::]:9090");
  EXPECT_EQ(c->clusters[0].endpoints[1].host, "fd00::1");
  EXPECT_EQ(c->clusters[0].endpoints[1].Address(), "[fd00::1]:80");
  EXPECT_EQ(c->clusters[0].endpoints[1].weight, 1000u);
  EXPECT_EQ(c->clusters[1].endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(c->clusters[1].endpoints[0].hostname, "localhost");
  EXPECT_EQ(c->clusters[1].endpoints[1].Address(), "10.0.0.5:5432");
  EXPECT_EQ(c->routes[0].name, "route-0");
  EXPECT_EQ(c->routes[0].match.path, "/healthz");
  EXPECT_EQ(c->routes[1].name, "route-1");
  EXPECT_EQ(c->routes[1].match.path_regex, "/v[0-9]+/.*");
  EXPECT_THAT(c->routes[1].match.hosts, ElementsAre("api.example.com", "*.api.example.com"));
  EXPECT_THAT(c->routes[2].match.methods, ElementsAre("GET", "POST"));
  EXPECT_EQ(c->routes[2].cluster_index, 1u);
}

TEST(ConfigLoad, RealResolverResolvesLocalhost) {
  // The default resolver (getaddrinfo): localhost is in /etc/hosts on every test machine.
  LoadResult r = LoadString(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [localhost:3000] }]
routes: [{ cluster: app }]
)",
                            "t.yaml");
  ASSERT_THAT(Errors(r), IsEmpty());
  const Endpoint& e = r.config->clusters[0].endpoints[0];
  EXPECT_EQ(e.hostname, "localhost");
  EXPECT_TRUE(e.host == "127.0.0.1" || e.host == "::1") << e.host;
}

TEST(ConfigLoad, HeaderMatcherForms) {
  auto c = LoadOk(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes:
  - match:
      headers:
        - { name: X-Env, value: canary }
        - { name: x-gone, present: false }
        - { name: x-gone2, present: false, invert: true }
        - { name: x-any }
    cluster: app
)");
  ASSERT_TRUE(c);
  const auto& h = c->routes[0].match.headers;
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].name, "x-env");  // lower-cased
  EXPECT_EQ(h[1].exact, std::nullopt);
  EXPECT_TRUE(h[1].invert);  // present: false == must be absent
  EXPECT_FALSE(h[2].invert);
  EXPECT_EQ(h[3].exact, std::nullopt);
  EXPECT_FALSE(h[3].invert);
}

// ---------------------------------------------------------------------------------------------
// Errors, with exact positions

TEST(ConfigErrors, ExactMessages) {
  EnvGuard unset("FICUS_TEST_UNSET_VAR", nullptr);
  ExpectErrors(R"(workers: 2
admin:
  token: ${FICUS_TEST_UNSET_VAR}
listeners:
  - listen: 0.0.0.0:8080
clusters:
  - name: shop
    endpoints: [127.0.0.1:3000, 127.0.0.1:0]
routes:
  - match: { pth: /api }
    cluster: shp
timeouts:
  idle: fast
)",
               {
                   "test.yaml:3:10: admin.token: environment variable FICUS_TEST_UNSET_VAR is "
                   "not set",
                   "test.yaml:8:33: clusters[0].endpoints[1]: '127.0.0.1:0': port must be "
                   "1..65535, got 0",
                   "test.yaml:10:14: routes[0].match.pth: unknown key 'pth'; expected one of: "
                   "path, path_prefix, path_regex, host, methods, headers",
                   "test.yaml:11:14: routes[0].cluster: cluster 'shp' is not declared "
                   "(declared: shop)",
                   "test.yaml:13:9: timeouts.idle: expected a number with a unit "
                   "(ns, us, ms, s, m, h, d), such as 250ms, 1.5s or 1h30m, got 'fast'",
               });
}

TEST(ConfigErrors, FieldFromStructToString) {
  ConfigError e{"f.yaml", 3, 7, "routes[2].match.path_prefix", "must start with '/'"};
  EXPECT_EQ(e.ToString(), "f.yaml:3:7: routes[2].match.path_prefix: must start with '/'");
  ConfigError no_pos{"f.yaml", 0, 0, "", "cannot open: No such file or directory"};
  EXPECT_EQ(no_pos.ToString(), "f.yaml: cannot open: No such file or directory");
}

TEST(ConfigErrors, MissingRequiredSections) {
  ExpectErrors("workers: 1\n",
               {
                   "test.yaml:1:1: listeners: missing required key 'listeners' (at least one "
                   "listener is required)",
                   "test.yaml:1:1: clusters: missing required key 'clusters' (at least one "
                   "cluster is required)",
                   "test.yaml:1:1: routes: missing required key 'routes' (at least one route is "
                   "required)",
               });
  ExpectErrors("listeners: []\nclusters: []\nroutes: []\n",
               {
                   "test.yaml:1:12: listeners: at least one listener is required",
                   "test.yaml:2:11: clusters: at least one cluster is required",
                   "test.yaml:3:9: routes: at least one route is required",
               });
}

TEST(ConfigErrors, MissingRequiredKeys) {
  ExpectErrors(R"(listeners:
  - name: a
clusters:
  - endpoints: [127.0.0.1:1]
  - name: b
routes:
  - match: { path: / }
)",
               {
                   "test.yaml:2:5: listeners[0].listen: missing required key 'listen'",
                   "test.yaml:4:5: clusters[0].name: missing required key 'name'",
                   "test.yaml:5:5: clusters[1].endpoints: missing required key 'endpoints'",
                   "test.yaml:7:5: routes[0].cluster: missing required key 'cluster'",
               });
}

TEST(ConfigErrors, EmptyValueIsReportedAtItsKey) {
  // yaml-cpp marks an empty value at the next token; the error must point at the key.
  ExpectErrors(Minimal("data_dir:\n\n\nlog_level: info\n"),
               {"test.yaml:4:1: data_dir: expected a string, got an empty value"});
}

TEST(ConfigErrors, CollectsAllErrorsInFileOrder) {
  LoadResult r = Load(R"(workers: many
log_level: loud
listeners: [{ listen: 1.2.3.4 }]
clusters: [{ name: a, endpoints: [x] }]
routes: [{ cluster: a, timeout: soon }]
limits: { max_header_count: -1 }
)");
  EXPECT_EQ(r.config, nullptr);
  ASSERT_EQ(r.errors.size(), 6u) << testing::PrintToString(Errors(r));
  for (size_t i = 1; i < r.errors.size(); ++i) {
    EXPECT_LE(r.errors[i - 1].line, r.errors[i].line);
  }
  EXPECT_EQ(r.errors[0].field, "workers");
  EXPECT_EQ(r.errors[1].field, "log_level");
  EXPECT_EQ(r.errors[1].reason,
            "unknown log level 'loud'; expected one of: trace, debug, info, warn, error");
  EXPECT_EQ(r.errors[2].field, "listeners[0].listen");
  EXPECT_EQ(r.errors[3].field, "clusters[0].endpoints[0]");
  EXPECT_EQ(r.errors[4].field, "routes[0].timeout");
  EXPECT_EQ(r.errors[5].field, "limits.max_header_count");
}

TEST(ConfigErrors, UnknownKeysAtEveryLevel) {
  ExpectError(
      Minimal("wrkers: 2\n"), "wrkers",
      "unknown key 'wrkers'; expected one of: workers, data_dir, log_level, admin, "
      "listeners, clusters, routes, timeouts, limits, access_log, tracing, slos, telemetry, "
      "overload, queues, postgres");
  ExpectError(Minimal("admin: { listen: 127.0.0.1:1, tokn: x }\n"), "admin.tokn",
              "unknown key 'tokn'; expected one of: listen, token");
  ExpectError(Minimal("timeouts: { idel: 1s }\n"), "timeouts.idel",
              "expected one of: connect, request_head, idle, upstream_response, request, drain");
  ExpectError(Minimal("limits: { max_body: 1 }\n"), "limits.max_body",
              "expected one of: max_head_bytes, max_header_count, max_body_bytes, "
              "max_connections");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080, port: 1 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)",
              "listeners[0].port", "unknown key 'port'; expected one of: name, listen");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000], lb: x }]
routes: [{ cluster: app }]
)",
              "clusters[0].lb",
              "expected one of: name, endpoints, load_balancer, connect_timeout, pool");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000], pool: { max: 1 } }]
routes: [{ cluster: app }]
)",
              "clusters[0].pool.max", "expected one of: max_idle, idle_timeout");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [{ address: 127.0.0.1:3000, wieght: 2 }] }]
routes: [{ cluster: app }]
)",
              "clusters[0].endpoints[0].wieght", "expected one of: address, weight");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app, retry: 3 }]
)",
              "routes[0].retry",
              "expected one of: name, match, cluster, timeout, upstream_timeout");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app, match: { headers: [{ name: a, regex: b }] } }]
)",
              "routes[0].match.headers[0].regex", "expected one of: name, value, present, invert");
}

TEST(ConfigErrors, WrongTypes) {
  ExpectErrors(R"(listeners: public
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)",
               {"test.yaml:1:12: listeners: expected a list, got 'public'"});
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: { a: 1 } }]
routes: [{ cluster: app }]
)",
              "clusters[0].endpoints", "expected a list, got a map");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [[127.0.0.1:3000]] }]
routes: [{ cluster: app }]
)",
              "clusters[0].endpoints[0]",
              "expected an address like 127.0.0.1:3000 or a map {address, weight}, got a list");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app, match: { methods: GET } }]
)",
              "routes[0].match.methods", "expected a list, got 'GET'");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app, match: [/api] }]
)",
              "routes[0].match",
              "expected a map with keys path, path_prefix, path_regex, host, methods, headers, "
              "got a list");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: [app] }]
)",
              "routes[0].cluster", "expected a string, got a list");
  ExpectError(Minimal("workers: many\n"), "workers", "expected an integer 0..64, got 'many'");
  ExpectError(Minimal("workers: [1]\n"), "workers", "expected an integer, got a list");
  ExpectError(Minimal("timeouts: [1s]\n"), "timeouts", "expected a map with keys connect");
  ExpectError(Minimal("admin: 127.0.0.1:9901\n"), "admin",
              "expected a map with keys listen, token, public_paths, got '127.0.0.1:9901'");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app, match: { headers: [{ name: a, invert: maybe }] } }]
)",
              "routes[0].match.headers[0].invert", "expected true or false, got 'maybe'");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [{ address: 127.0.0.1:3000, weight: [2] }] }]
routes: [{ cluster: app }]
)",
              "clusters[0].endpoints[0].weight", "expected an integer, got a list");
  ExpectError(Minimal("limits: { max_body_bytes: lots }\n"), "limits.max_body_bytes",
              "expected a size like 64KiB or 1MiB, got 'lots'");
  ExpectErrors("- a\n- b\n",
               {"test.yaml:1:1: expected a map with keys workers, data_dir, log_level, admin, "
                "listeners, clusters, routes, timeouts, limits, access_log, tracing, slos, "
                "telemetry, overload, queues, postgres, got a list"});
}

TEST(ConfigLoad, Telemetry) {
  auto c = LoadOk(Minimal(""));
  EXPECT_EQ(c->telemetry.max_size, 256ull << 20);
  EXPECT_EQ(c->telemetry.error_samples_per_route, 20u);
  c = LoadOk(Minimal("telemetry: { max_size: 64MiB, error_samples_per_route: 5 }\n"));
  EXPECT_EQ(c->telemetry.max_size, 64ull << 20);
  EXPECT_EQ(c->telemetry.error_samples_per_route, 5u);
  EXPECT_EQ(c->telemetry.slo_interval, std::chrono::seconds(10));
  EXPECT_NE(ToRedactedYaml(*c).find("max_size: 64MiB"), std::string::npos);
  c = LoadOk(Minimal("telemetry: { slo_interval: 500ms }\n"));
  EXPECT_EQ(c->telemetry.slo_interval, std::chrono::milliseconds(500));
  EXPECT_NE(ToRedactedYaml(*c).find("slo_interval: 500ms"), std::string::npos);
  EXPECT_EQ(c->telemetry.repeat_sample, 32u);  // the default
  c = LoadOk(Minimal("telemetry: { repeat_sample: 1 }\n"));
  EXPECT_EQ(c->telemetry.repeat_sample, 1u);
  EXPECT_NE(ToRedactedYaml(*c).find("repeat_sample: 1\n"), std::string::npos);
  c = LoadOk(Minimal("telemetry: { repeat_sample: 0 }\n"));  // off
  EXPECT_EQ(c->telemetry.repeat_sample, 0u);
}

TEST(ConfigErrors, Telemetry) {
  ExpectError(Minimal("telemetry: { max_size: 100KB }\n"), "telemetry.max_size",
              "must be between 1MiB and 1TiB, got 100KB");
  ExpectError(Minimal("telemetry: { error_samples_per_route: 0 }\n"),
              "telemetry.error_samples_per_route", "must be 1..1000, got 0");
  ExpectError(Minimal("telemetry: { slo_interval: 50ms }\n"), "telemetry.slo_interval",
              "must be between");
  ExpectError(Minimal("telemetry: { max_sise: 1MiB }\n"), "telemetry.max_sise",
              "unknown key 'max_sise'; expected one of: max_size, error_samples_per_route");
  ExpectError(Minimal("telemetry: 5\n"), "telemetry", "expected a map");
  ExpectError(Minimal("telemetry: { repeat_sample: -1 }\n"), "telemetry.repeat_sample",
              "expected an integer 0..1000000, got '-1'");
  ExpectError(Minimal("telemetry: { repeat_sample: 1000001 }\n"), "telemetry.repeat_sample",
              "must be 0..1000000, got 1000001");
  ExpectError(Minimal("telemetry: { repeat_sample: often }\n"), "telemetry.repeat_sample",
              "expected an integer");
}

TEST(ConfigErrors, Ranges) {
  ExpectError(Minimal("workers: 65\n"), "workers", "must be 0..64, got 65");
  ExpectError(Minimal("workers: -1\n"), "workers", "expected an integer 0..64, got '-1'");
  ExpectError(Minimal("limits: { max_head_bytes: 512 }\n"), "limits.max_head_bytes",
              "must be between 1KiB and 1MiB, got 512");
  ExpectError(Minimal("limits: { max_header_count: 0 }\n"), "limits.max_header_count",
              "must be 1..1000, got 0");
  ExpectError(Minimal("limits: { max_connections: 99999999999999999999999 }\n"),
              "limits.max_connections", "must be 1..10000000, got 99999999999999999999999");
  ExpectError(Minimal("timeouts: { connect: 0s }\n"), "timeouts.connect",
              "must be between 1ms and 10m, got 0s");
  ExpectError(Minimal("timeouts: { drain: 2h }\n"), "timeouts.drain",
              "must be between 0s and 1h, got 2h");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [{ address: 127.0.0.1:3000, weight: 0 }] }]
routes: [{ cluster: app }]
)",
              "clusters[0].endpoints[0].weight", "must be 1..1000, got 0");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:70000 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)",
              "listeners[0].listen", "port must be 1..65535, got 70000");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:0 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)",
              "listeners[0].listen", "port must be 1..65535, got 0");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000], pool: { max_idle: 10001 } }]
routes: [{ cluster: app }]
)",
              "clusters[0].pool.max_idle", "must be 0..10000, got 10001");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app, upstream_timeout: 0s }]
)",
              "routes[0].upstream_timeout", "must be between 1ms and 24h, got 0s");
}

TEST(ConfigErrors, Duplicates) {
  ExpectErrors(R"(listeners:
  - { name: a, listen: 0.0.0.0:8080 }
  - { name: a, listen: 0.0.0.0:8081 }
  - { name: b, listen: 0.0.0.0:8080 }
clusters:
  - { name: app, endpoints: [127.0.0.1:3000, 127.0.0.1:3000] }
  - { name: app, endpoints: [127.0.0.1:3001] }
routes:
  - { name: r, cluster: app }
  - { name: r, cluster: app }
)",
               {
                   "test.yaml:3:13: listeners[1].name: duplicate listener name 'a' (also "
                   "listeners[0])",
                   "test.yaml:4:24: listeners[2].listen: address 0.0.0.0:8080 is already used "
                   "by listener 'a' (listeners[0].listen, line 2)",
                   "test.yaml:6:46: clusters[0].endpoints[1]: endpoint 127.0.0.1:3000 is listed "
                   "twice (also endpoints[0]); use weight to send it more traffic",
                   "test.yaml:7:13: clusters[1].name: duplicate cluster name 'app' (also "
                   "clusters[0] at line 6)",
                   "test.yaml:10:13: routes[1].name: duplicate route name 'r' (also routes[0] at "
                   "line 9)",
               });
  ExpectError(Minimal("workers: 1\nworkers: 2\n"), "workers",
              "duplicate key 'workers' (first at line 4)");
  // The same endpoint through a DNS name.
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000, localhost:3000] }]
routes: [{ cluster: app }]
)",
              "clusters[0].endpoints[1]", "(localhost resolves to 127.0.0.1:3000)");
}

TEST(ConfigErrors, OverlappingAddresses) {
  ExpectError(R"(listeners:
  - { name: any, listen: 0.0.0.0:8080 }
  - { name: lo, listen: 127.0.0.1:8080 }
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)",
              "listeners[1].listen",
              "address 127.0.0.1:8080 overlaps listener 'any' on 0.0.0.0:8080");
  // Same port, different families: fine. Canonical forms compare equal.
  LoadOk(R"(listeners:
  - { listen: 0.0.0.0:8080 }
  - { listen: "[::]:8080" }
  - { listen: "[0:0::1]:8081" }
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)");
  ExpectError(R"(listeners:
  - { listen: "[::1]:8080" }
  - { listen: "[0:0::1]:8080" }
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)",
              "listeners[1].listen", "address [::1]:8080 is already used");
  // The default admin address collides with a listener.
  ExpectError(R"(listeners: [{ listen: 127.0.0.1:9901 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)",
              "listeners[0].listen", "address 127.0.0.1:9901 is already used by admin (admin)");
  ExpectError(R"(listeners: [{ listen: 127.0.0.1:9901 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
admin: { token: abcdefghijklmnopq }
)",
              "listeners[0].listen", "address 127.0.0.1:9901 is already used by admin (admin)");
  ExpectError(Minimal("admin: { listen: 0.0.0.0:8080, token: abcdefghijklmnopq }\n"),
              "listeners[0].listen", "address 0.0.0.0:8080 is already used by admin");
}

TEST(ConfigErrors, AdminWithoutToken) {
  ExpectErrors(Minimal("admin: { listen: 0.0.0.0:9901 }\n"),
               {"test.yaml:4:18: admin.listen: admin listens on 0.0.0.0 without a token: set "
                "admin.token"});
  ExpectError(Minimal("admin: { listen: \"[::]:9901\" }\n"), "admin.listen",
              "admin listens on :: without a token: set admin.token");
  ExpectError(Minimal("admin: { listen: 10.1.2.3:9901, token: \"\" }\n"), "admin.listen",
              "admin listens on 10.1.2.3 without a token");
  LoadOk(Minimal("admin: { listen: 0.0.0.0:9901, token: abcdefghijklmnopqrstuvwxyz }\n"));
  LoadOk(Minimal("admin: { listen: 127.0.0.2:9901 }\n"));
  LoadOk(Minimal("admin: { listen: \"[::1]:9901\" }\n"));
}

TEST(ConfigErrors, Addresses) {
  auto listener = [](std::string_view listen) {
    return "listeners: [{ listen: " + std::string(listen) +
           " }]\nclusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\nroutes: [{ cluster: "
           "app }]\n";
  };
  ExpectError(listener("localhost:8080"), "listeners[0].listen",
              "host must be an IP address (like 0.0.0.0, 127.0.0.1 or [::]), got 'localhost'");
  ExpectError(listener("8080"), "listeners[0].listen",
              "'8080': missing port: expected host:port like 127.0.0.1:8080");
  ExpectError(listener(":8080"), "listeners[0].listen", "missing host");
  ExpectError(listener("\"::1:8080\""), "listeners[0].listen",
              "an IPv6 address needs brackets: \"[::1]:8080\"");
  ExpectError(listener("\"[127.0.0.1]:8080\""), "listeners[0].listen",
              "brackets are for IPv6 addresses only");
  ExpectError(listener("0.0.0.0:http"), "listeners[0].listen",
              "port must be a number 1..65535, got 'http'");
  ExpectError(listener("0.0.0.0:+80"), "listeners[0].listen",
              "port must be a number 1..65535, got '+80'");
  // Unquoted IPv6 is YAML flow syntax: the syntax error carries a hint.
  LoadResult r = Load("listeners: [{ listen: [::1]:8080 }]\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_THAT(r.errors[0].reason, AllOf(HasSubstr("YAML syntax error"),
                                        HasSubstr("quote IPv6 addresses: \"[::1]:8080\"")));

  auto endpoint = [](std::string_view ep) {
    return "listeners: [{ listen: 0.0.0.0:8080 }]\nclusters: [{ name: app, endpoints: [" +
           std::string(ep) + "] }]\nroutes: [{ cluster: app }]\n";
  };
  ExpectErrors(endpoint("nope.invalid:80"),
               {"test.yaml:2:37: clusters[0].endpoints[0]: cannot resolve host 'nope.invalid': "
                "Name or service not known"});
  ExpectError(endpoint("bad_host!:80"), "clusters[0].endpoints[0]",
              "invalid host name 'bad_host!'");
  ExpectError(endpoint("\"[db.internal]:80\""), "clusters[0].endpoints[0]",
              "'db.internal' is not an IPv6 address");
  ExpectError(endpoint("127.0.0.1"), "clusters[0].endpoints[0]", "missing port");
  ExpectError(endpoint("{ weight: 2 }"), "clusters[0].endpoints[0].address",
              "missing required key 'address'");
  auto c = LoadOk(endpoint("v6.internal:80"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->clusters[0].endpoints[0].Address(), "[fd00::5]:80");
}

TEST(ConfigErrors, Names) {
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: "my app", endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: "my app" }]
)",
              "clusters[0].name", "name 'my app' is not a valid name");
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ name: "", cluster: app }]
)",
              "routes[0].name", "name must not be empty");
}

TEST(ConfigErrors, LoadBalancer) {
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000], load_balancer: random }]
routes: [{ cluster: app }]
)",
              "clusters[0].load_balancer",
              "unknown load balancer 'random'; known: round_robin, least_request, p2c_ewma");
  // Consistent hashing needs a hash key (tests/config/resilience_config_test.cc).
  for (const char* name : {"ring_hash", "maglev"}) {
    std::string yaml = R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000], load_balancer: )";
    yaml += name;
    yaml += " }]\nroutes: [{ cluster: app }]\n";
    ExpectError(yaml, "clusters[0].load_balancer", "needs a `hash_key`");
  }
}

TEST(ConfigLoad, LoadBalancersAccepted) {
  for (const char* name : {"round_robin", "least_request", "p2c_ewma"}) {
    std::string yaml = R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000], load_balancer: )";
    yaml += name;
    yaml += " }]\nroutes: [{ cluster: app }]\n";
    auto cfg = LoadOk(yaml);
    ASSERT_NE(cfg, nullptr);
    EXPECT_EQ(cfg->clusters[0].load_balancer, name);
  }
}

TEST(ConfigErrors, UndeclaredClusterListsDeclared) {
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters:
  - { name: shop, endpoints: [127.0.0.1:3000] }
  - { name: cart, endpoints: [127.0.0.1:3001] }
routes: [{ cluster: shop }, { cluster: cart }, { cluster: shp }]
)",
              "routes[2].cluster", "cluster 'shp' is not declared (declared: shop, cart)");
  // A cluster whose own definition is broken is still declared: one error, not two.
  ExpectError(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: "bad name", endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: "bad name" }]
)",
              "clusters[0].name", "is not a valid name");
}

TEST(ConfigErrors, PathMatchers) {
  auto route = [](std::string_view match) {
    return "listeners: [{ listen: 0.0.0.0:8080 }]\nclusters: [{ name: app, endpoints: "
           "[127.0.0.1:3000] }]\nroutes: [{ cluster: app, match: " +
           std::string(match) + " }]\n";
  };
  ExpectErrors(route("{ path: /a, path_prefix: /b }"),
               {"test.yaml:3:58: routes[0].match.path_prefix: use only one of path, "
                "path_prefix, path_regex (path is also set)"});
  ExpectError(route("{ path_regex: /a, path: /b }"), "routes[0].match.path",
              "use only one of path, path_prefix, path_regex (path_regex is also set)");
  ExpectError(route("{ path_prefix: api }"), "routes[0].match.path_prefix",
              "must start with '/', got 'api'");
  ExpectError(route("{ path: \"/a?b=1\" }"), "routes[0].match.path", "must not contain '?' or '#'");
  ExpectError(route("{ path: \"/a b\" }"), "routes[0].match.path", "must not contain spaces");
  ExpectError(route("{ path_regex: \"/a(\" }"), "routes[0].match.path_regex", "invalid regex: ");
  ExpectError(route("{ path_regex: \"/[a\" }"), "routes[0].match.path_regex", "invalid regex: ");
  ExpectError(route("{ path_regex: \"" + std::string(1100, 'a') + "\" }"),
              "routes[0].match.path_regex", "regex is longer than 1024 bytes");
  ExpectError(route("{ path_regex: \"" + std::string(40, '(') + std::string(40, ')') + "\" }"),
              "routes[0].match.path_regex", "regex nests groups deeper than 32");
  // Brackets and escapes do not count as groups.
  std::string escaped;
  for (int i = 0; i < 40; ++i) escaped += "\\(";  // \( is a literal parenthesis
  LoadOk(route("{ path_regex: '" + escaped + "[" + std::string(40, '(') + "]' }"));
}

TEST(ConfigErrors, HostsAndMethods) {
  auto route = [](std::string_view match) {
    return "listeners: [{ listen: 0.0.0.0:8080 }]\nclusters: [{ name: app, endpoints: "
           "[127.0.0.1:3000] }]\nroutes: [{ cluster: app, match: " +
           std::string(match) + " }]\n";
  };
  ExpectError(route("{ host: example.com:8080 }"), "routes[0].match.host",
              "must not include a port");
  ExpectError(route("{ host: [a.com, \"b .com\"] }"), "routes[0].match.host[1]",
              "expected a host name like example.com or *.example.com, got 'b .com'");
  ExpectError(route("{ host: \"*.\" }"), "routes[0].match.host", "expected a host name");
  ExpectError(route("{ host: \"a.*.com\" }"), "routes[0].match.host", "expected a host name");
  ExpectError(route("{ host: [] }"), "routes[0].match.host", "must list at least one host");
  ExpectError(route("{ host: { a: b } }"), "routes[0].match.host",
              "expected a host name or a list of host names, got a map");
  ExpectError(route("{ methods: [GET, \"GE T\"] }"), "routes[0].match.methods[1]",
              "'GE T' is not a valid method name");
  ExpectError(route("{ methods: [] }"), "routes[0].match.methods", "must list at least one method");
  ExpectError(route("{ headers: [{ name: \"x y\" }] }"), "routes[0].match.headers[0].name",
              "'x y' is not a valid header name");
  ExpectError(route("{ headers: [{ value: a }] }"), "routes[0].match.headers[0].name",
              "missing required key 'name'");
  ExpectError(route("{ headers: [{ name: a, value: b, present: true }] }"),
              "routes[0].match.headers[0].present", "use either 'value' or 'present', not both");
  ExpectError(route("{ headers: [{ name: a, value: \" b\" }] }"),
              "routes[0].match.headers[0].value", "has leading or trailing whitespace");
  auto c = LoadOk(route("{ host: [\"*\", \"Example.COM.\", \"[::1]\", \"*.Example.com\"] }"));
  ASSERT_TRUE(c);
  EXPECT_THAT(c->routes[0].match.hosts, ElementsAre("*", "example.com", "[::1]", "*.example.com"));
}

TEST(ConfigErrors, SyntaxError) {
  ExpectErrors("listeners: [1, 2\nclusters: x\n",
               {"test.yaml:2:9: YAML syntax error: end of sequence flow not found"});
  ExpectErrors("a: b\n  c: d\n", {"test.yaml:2:4: YAML syntax error: illegal map value"});
}

TEST(ConfigErrors, StrayTokenDoesNotHang) {
  // yaml-cpp 0.7's LoadAll never returns on these (found by the fuzzer).
  ExpectErrors(",a\n", {"test.yaml:1:1: YAML syntax error: unexpected ','"});
  ExpectErrors(
      "-\n-\n,--!`\x1a--!`\x1a\xa1"
      "0\n",
      {"test.yaml:3:1: YAML syntax error: unexpected ','"});
}

TEST(ConfigErrors, EmptyAndMultiDocument) {
  ExpectErrors("", {"test.yaml:1:1: the config is empty: it needs at least listeners, clusters "
                    "and routes"});
  ExpectErrors("# just a comment\n", {"test.yaml:1:1: the config is empty: it needs at least "
                                      "listeners, clusters and routes"});
  LoadResult r = Load(Minimal("---\nworkers: 1\n"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 4);  // the second document's '---'
  EXPECT_THAT(r.errors[0].reason, HasSubstr("more than one YAML document"));
}

TEST(ConfigErrors, TextChecks) {
  ExpectError(Minimal("data_dir: \"a\\x01b\"\n"), "data_dir", "value contains a control character");
  ExpectError(Minimal("data_dir: a\xff\n"), "data_dir", "value is not valid UTF-8");
  ExpectError(Minimal("data_dir: \"\"\n"), "data_dir", "must not be empty");
}

TEST(ConfigErrors, NeverThrowsOnGarbage) {
  const std::string inputs[] = {
      std::string("\0\0\0", 3),
      "{{{{",
      "]]]",
      "- - - -",
      "&a [*a]",
      "!!binary x",
      "\xff\xfe",
      "a: *unknown",
      std::string(5000, '['),
      "? [a]\n: b\n",
      "%YAML 9.9\n---\na: 1\n",
      "listeners: &l [{ listen: 0.0.0.0:1 }]\nclusters: *l\nroutes: *l\n",
  };
  for (const std::string& in : inputs) {
    LoadResult r = Load(in);
    EXPECT_EQ(r.config, nullptr) << in;
    EXPECT_FALSE(r.errors.empty()) << in;
  }
}

// ---------------------------------------------------------------------------------------------
// Environment substitution

TEST(ConfigEnv, Substitution) {
  EnvGuard a("FICUS_TEST_DIR", "/var/lib/ficus");
  EnvGuard b("FICUS_TEST_WORKERS", "3");
  EnvGuard c("FICUS_TEST_UNSET", nullptr);
  auto cfg =
      LoadOk(Minimal("data_dir: ${FICUS_TEST_DIR}/data\nworkers: ${FICUS_TEST_WORKERS}\nlog_level: "
                     "${FICUS_TEST_UNSET:-debug}\n"));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->data_dir, "/var/lib/ficus/data");
  EXPECT_EQ(cfg->workers, 3u);
  EXPECT_EQ(cfg->log_level, "debug");
}

TEST(ConfigEnv, DefaultWhenUnsetOrEmpty) {
  EnvGuard a("FICUS_TEST_EMPTY", "");
  auto cfg = LoadOk(Minimal("admin: { token: \"${FICUS_TEST_EMPTY:-fallback}\" }\n"));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->admin.token, "fallback");  // as in the shell: empty counts as unset for :-
  cfg = LoadOk(Minimal("admin: { token: \"${FICUS_TEST_EMPTY}\" }\n"));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->admin.token, "");  // set but empty, no default: empty
}

TEST(ConfigEnv, EscapeAndLiterals) {
  auto cfg = LoadOk(Minimal("data_dir: \"a$${HOME}b $x $ ${FICUS_TEST_NONE:-}end\"\n"));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->data_dir, "a${HOME}b $x $ end");
}

TEST(ConfigEnv, ValuesCannotInjectStructure) {
  EnvGuard a("FICUS_TEST_INJECT", "x\nlisteners: []\n");
  EnvGuard b("FICUS_TEST_FLOW", "{ a: 1 }");
  auto cfg = LoadOk(Minimal("data_dir: ${FICUS_TEST_FLOW}\n"));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->data_dir, "{ a: 1 }");
  // A newline from the environment stays inside the one value, where it is rejected.
  ExpectError(Minimal("data_dir: ${FICUS_TEST_INJECT}\n"), "data_dir",
              "value contains a control character");
}

TEST(ConfigEnv, Errors) {
  EnvGuard unset("FICUS_TEST_UNSET", nullptr);
  ExpectErrors(Minimal("data_dir: ${FICUS_TEST_UNSET}\n"),
               {"test.yaml:4:11: data_dir: environment variable FICUS_TEST_UNSET is not set"});
  ExpectError(Minimal("data_dir: ${FICUS_TEST_UNSET\n"), "data_dir",
              "unterminated '${' (write '$${' for a literal '${')");
  ExpectError(Minimal("data_dir: ${BAD-NAME}\n"), "data_dir",
              "invalid environment variable name 'BAD-NAME'");
  ExpectError(Minimal("data_dir: ${}\n"), "data_dir", "invalid environment variable name ''");
}

TEST(ConfigEnv, CustomLookup) {
  LoadOptions o = TestOptions();
  o.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "T") return "from-seam";
    return std::nullopt;
  };
  LoadResult r = LoadString(Minimal("data_dir: ${T}\n"), "x", o);
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->data_dir, "from-seam");
}

// ---------------------------------------------------------------------------------------------
// Warnings

TEST(ConfigWarnings, UnusedClusterAndUnreachableRoutes) {
  LoadResult r = Load(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters:
  - { name: app, endpoints: [127.0.0.1:3000] }
  - { name: spare, endpoints: [127.0.0.1:3001] }
routes:
  - { name: api, match: { path_prefix: /api }, cluster: app }
  - { name: api2, match: { path_prefix: /api }, cluster: app }
  - { name: all, match: { path_prefix: / }, cluster: app }
  - { name: never, match: { path: /x }, cluster: app }
admin: { token: short }
)");
  ASSERT_TRUE(r.config);
  EXPECT_THAT(Warnings(r),
              ElementsAre("test.yaml:4:13: clusters[1]: cluster 'spare' is not used by any route",
                          "test.yaml:7:5: routes[1]: route 'api2' can never match: route 'api' "
                          "(line 6) before it has the same match",
                          "test.yaml:9:5: routes[3]: route 'never' can never match: route 'all' "
                          "(line 8) before it matches every request",
                          "test.yaml:10:17: admin.token: the admin token is shorter than 16 "
                          "characters"));
}

// ---------------------------------------------------------------------------------------------
// Files

TEST(ConfigFile, MissingFile) {
  LoadResult r = LoadFile("/nonexistent/ficus.yaml");
  EXPECT_EQ(r.config, nullptr);
  EXPECT_THAT(Errors(r),
              ElementsAre("/nonexistent/ficus.yaml: cannot open: No such file or directory"));
}

TEST(ConfigFile, Directory) {
  LoadResult r = LoadFile("/tmp");
  EXPECT_EQ(r.config, nullptr);
  EXPECT_THAT(Errors(r), ElementsAre("/tmp: cannot read: Is a directory"));
}

TEST(ConfigFile, LoadsAFileAndNamesItInErrors) {
  const std::string dir = testing::TempDir();
  const std::string path = dir + "/ficus_config_test_" + std::to_string(getpid()) + ".yaml";
  {
    std::ofstream f(path);
    f << kMinimal;
  }
  LoadResult r = LoadFile(path, TestOptions());
  ASSERT_TRUE(r.config) << testing::PrintToString(Errors(r));
  EXPECT_EQ(r.config->source, path);
  {
    std::ofstream f(path);
    f << "workers: 100\n" << kMinimal;
  }
  r = LoadFile(path, TestOptions());
  EXPECT_THAT(Errors(r), ElementsAre(path + ":1:10: workers: must be 0..64, got 100"));
  std::filesystem::remove(path);
}

TEST(ConfigFile, ExampleConfigIsValid) {
  // examples/ficus.yaml is what users copy: it must always load.
  const std::filesystem::path root = FICUS_SOURCE_DIR;
  const std::string path = (root / "examples" / "ficus.yaml").string();
  EnvGuard unset("FICUS_ADMIN_TOKEN", nullptr);
  LoadResult r = LoadFile(path, TestOptions());
  EXPECT_THAT(Errors(r), IsEmpty());
  EXPECT_THAT(Warnings(r), IsEmpty());
}

// ---------------------------------------------------------------------------------------------
// Describe and ToRedactedYaml

TEST(ConfigDescribe, Summary) {
  EnvGuard token("FICUS_TEST_TOKEN", "s3cret-token-0123456789");
  auto c = LoadOk(kFull);
  ASSERT_TRUE(c);
  const std::string d = Describe(*c);
  EXPECT_EQ(d,
            "config test.yaml\n"
            "workers: 2, log_level: info, data_dir: ./ficus-data\n"
            "admin: 127.0.0.1:9901 (token set)\n"
            "listeners:\n"
            "  public: 0.0.0.0:8080\n"
            "routes (first match wins):\n"
            "  products: [shop.example.com] [GET,HEAD] prefix /api headers(x-env=canary, "
            "x-debug present, x-beta!=1) -> shop (timeout 30s, upstream_timeout 10s)\n"
            "clusters:\n"
            "  shop: round_robin, connect_timeout 1s, pool max_idle 64 idle_timeout 4s\n"
            "    127.0.0.1:3000 weight 1\n"
            "    127.0.0.1:3001 weight 2\n"
            "timeouts: connect 2s, request_head 10s, idle 1m, upstream_response 30s, request "
            "none, drain 15s\n"
            "limits: max_head_bytes 64KiB, max_header_count 100, max_body_bytes 1GiB, "
            "max_connections 10000, headers_with_underscores drop\n"
            "telemetry: ./ficus-data/ficus.db, max_size 256MiB, error_samples_per_route 20\n");
  EXPECT_THAT(d, Not(HasSubstr("s3cret")));
}

TEST(ConfigDescribe, RouteForms) {
  auto c = LoadOk(R"(listeners: [{ listen: 0.0.0.0:8080 }]
clusters: [{ name: app, endpoints: [localhost:3000] }]
routes:
  - { match: { path: /a }, cluster: app }
  - { match: { path_regex: "/b/.*", host: ["*.x.com", y.com] }, cluster: app }
  - { match: { headers: [{ name: x-a, invert: true }] }, cluster: app }
  - { cluster: app }
)");
  ASSERT_TRUE(c);
  const std::string d = Describe(*c);
  EXPECT_THAT(d, HasSubstr("  route-0: [*] [*] path /a -> app\n"));
  EXPECT_THAT(d, HasSubstr("  route-1: [*.x.com,y.com] [*] regex /b/.* -> app\n"));
  EXPECT_THAT(d, HasSubstr("  route-2: [*] [*] any path headers(x-a absent) -> app\n"));
  EXPECT_THAT(d, HasSubstr("  route-3: [*] [*] any path -> app\n"));
  EXPECT_THAT(d, HasSubstr("    127.0.0.1:3000 (localhost) weight 1\n"));
  EXPECT_THAT(d, HasSubstr("admin: 127.0.0.1:9901 (no token)\n"));
}

TEST(ConfigRedacted, TokenNeverAppears) {
  EnvGuard token("FICUS_TEST_TOKEN", "s3cret-token-0123456789");
  auto c = LoadOk(kFull);
  ASSERT_TRUE(c);
  const std::string y = ToRedactedYaml(*c);
  EXPECT_THAT(y, Not(HasSubstr("s3cret")));
  EXPECT_THAT(y, HasSubstr("token: <redacted>"));
  EXPECT_THAT(y, HasSubstr("connect_timeout: 1s"));
  EXPECT_THAT(y, HasSubstr("max_body_bytes: 1GiB"));
}

TEST(ConfigRedacted, RoundTrips) {
  // The effective config loads again into the same config (defaults filled in, names resolved).
  auto c = LoadOk(std::string(R"(listeners:
  - { listen: 0.0.0.0:8080 }
  - { name: v6, listen: "[::1]:8081" }
clusters:
  - { name: app, endpoints: [localhost:3000, { address: "[fd00::1]:80", weight: 7 }] }
  - { name: b, endpoints: [10.0.0.1:1], connect_timeout: 1500ms, pool: { max_idle: 0 } }
routes:
  - match:
      host: ["*", "*.a.com", "null", "true"]
      path_regex: "/x/$${literal}/[0-9]+"
      methods: [GET]
      headers: [{ name: a, value: "null" }, { name: b }, { name: c, value: "~", invert: true }]
    cluster: app
    timeout: 0s
  - { name: "n-1", match: { path: "/a:b" }, cluster: b, upstream_timeout: 90s }
data_dir: "has $${dollar} and : colon"
timeouts: { request: 1h, drain: 0s }
limits: { max_body_bytes: 0, max_head_bytes: 1000KB }
)"));
  ASSERT_TRUE(c);
  const std::string y = ToRedactedYaml(*c);
  EXPECT_THAT(y, HasSubstr("{address: 127.0.0.1:3000, weight: 1}  # localhost\n"));
  auto again = LoadOk(y);
  ASSERT_TRUE(again) << y;
  // Resolved names load back as their addresses: all else is the same.
  std::string before = Describe(*c);
  before.erase(before.find(" (localhost)"), 12);
  EXPECT_EQ(Describe(*again), before) << y;
  // Without DNS names, the output is a fixed point.
  const std::string y2 = ToRedactedYaml(*again);
  auto third = LoadOk(y2);
  ASSERT_TRUE(third);
  EXPECT_EQ(ToRedactedYaml(*third), y2);
  EXPECT_EQ(again->data_dir, "has ${dollar} and : colon");
  EXPECT_EQ(again->routes[0].match.path_regex, "/x/${literal}/[0-9]+");
  EXPECT_EQ(again->routes[0].match.headers[0].exact, "null");
}

}  // namespace
}  // namespace ficus::config
