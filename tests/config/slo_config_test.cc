// Tests for the `slos:` section of the config: good values and defaults, every error with its
// exact position and field path, the warning for unreachable page alerts, the round trip
// through ToRedactedYaml, and the scalar grammars (percentages, webhook URLs).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "config/internal/slo_values.h"

namespace ficus::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::string_view kBase = R"(listeners: [{ listen: 127.0.0.1:8080 }]
clusters: [{ name: shop, endpoints: [127.0.0.1:3000] }]
routes:
  - { name: products, match: { path_prefix: /api/products }, cluster: shop }
  - { name: checkout, match: { path: /api/checkout }, cluster: shop }
  - { name: rest, cluster: shop }
)";

LoadResult Load(std::string_view slos) {
  return LoadString(std::string(kBase) + std::string(slos), "test.yaml");
}

std::vector<std::string> Errors(const LoadResult& r) {
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.ToString());
  return out;
}

TEST(SloConfig, FullSpec) {
  LoadResult r = Load(R"(slos:
  - name: api
    routes: [products, checkout]
    availability: 99.9%
    latency: { threshold: 300ms, objective: 99% }
    window: 28d
    min_requests: 50
    webhooks: [http://127.0.0.1:9000/hook, "http://alerts.example.com/x?key=1"]
)");
  ASSERT_THAT(Errors(r), IsEmpty());
  ASSERT_EQ(r.config->slos.size(), 1u);
  const Slo& s = r.config->slos[0];
  EXPECT_EQ(s.name, "api");
  EXPECT_THAT(s.routes, ElementsAre("products", "checkout"));
  ASSERT_TRUE(s.availability);
  EXPECT_DOUBLE_EQ(*s.availability, 0.999);
  ASSERT_TRUE(s.latency);
  EXPECT_EQ(s.latency->threshold, Duration{300});
  EXPECT_DOUBLE_EQ(s.latency->objective, 0.99);
  EXPECT_EQ(s.window, std::chrono::hours(24 * 28));
  EXPECT_EQ(s.min_requests, 50u);
  ASSERT_EQ(s.webhooks.size(), 2u);
  EXPECT_EQ(s.webhooks[0].host, "127.0.0.1");
  EXPECT_EQ(s.webhooks[0].port, 9000);
  EXPECT_EQ(s.webhooks[0].target, "/hook");
  EXPECT_EQ(s.webhooks[1].host, "alerts.example.com");
  EXPECT_EQ(s.webhooks[1].port, 80);
  EXPECT_EQ(s.webhooks[1].target, "/x?key=1");
  EXPECT_EQ(s.webhooks[1].url, "http://alerts.example.com/x?key=1");
}

TEST(SloConfig, Defaults) {
  LoadResult r = Load("slos: [{ name: all, availability: 99.5% }]\n");
  ASSERT_THAT(Errors(r), IsEmpty());
  const Slo& s = r.config->slos[0];
  EXPECT_TRUE(s.routes.empty());  // every route
  EXPECT_FALSE(s.latency);
  EXPECT_EQ(s.window, std::chrono::hours(24 * 30));
  EXPECT_EQ(s.min_requests, 100u);
  EXPECT_TRUE(s.webhooks.empty());
  // No slos key at all: none.
  EXPECT_TRUE(LoadString(kBase, "test.yaml").config->slos.empty());
  // "*" is the same as leaving routes out.
  LoadResult star = Load(
      "slos: [{ name: all, routes: [\"*\"], latency: { threshold: 1s, "
      "objective: 95% } }]\n");
  ASSERT_THAT(Errors(star), IsEmpty());
  EXPECT_TRUE(star.config->slos[0].routes.empty());
}

struct BadCase {
  std::string slos;
  std::string error;  // the whole ToString() of the one error
};

TEST(SloConfig, Errors) {
  const BadCase cases[] = {
      {"slos: [{ name: a, availability: 99.9 }]\n",
       "test.yaml:7:33: slos[0].availability: expected a percentage like 99.9%, got '99.9'"},
      {"slos: [{ name: a, availability: 100% }]\n",
       "test.yaml:7:33: slos[0].availability: must be between 0% and 100% (exclusive): an "
       "objective of 100% leaves no error budget"},
      {"slos: [{ name: a, availability: 99.99999% }]\n",
       "test.yaml:7:33: slos[0].availability: at most 4 decimals (99.9999%)"},
      {"slos: [{ name: a }]\n",
       "test.yaml:7:8: slos[0]: an SLO needs an objective: availability (like 99.9%), latency ({ "
       "threshold: 300ms, objective: 99% }), or both"},
      {"slos: [{ availability: 99% }]\n",
       "test.yaml:7:8: slos[0].name: missing required key 'name'"},
      {"slos: [{ name: a, availability: 99%, routes: [prodcts] }]\n",
       "test.yaml:7:47: slos[0].routes[0]: route 'prodcts' is not declared (declared: products, "
       "checkout, rest; \"*\" means every route)"},
      {"slos: [{ name: a, availability: 99%, routes: [] }]\n",
       "test.yaml:7:46: slos[0].routes: must list at least one route name, or \"*\" for every "
       "route"},
      {"slos: [{ name: a, availability: 99%, routes: [\"*\", rest] }]\n",
       "test.yaml:7:46: slos[0].routes: \"*\" already means every route: list either \"*\" or "
       "route names"},
      {"slos: [{ name: a, availability: 99%, routes: [rest, rest] }]\n",
       "test.yaml:7:53: slos[0].routes[1]: route 'rest' is listed twice"},
      {"slos: [{ name: a, latency: { threshold: 300ms } }]\n",
       "test.yaml:7:28: slos[0].latency.objective: missing required key 'objective'"},
      {"slos: [{ name: a, latency: { threshold: fast, objective: 99% } }]\n",
       "test.yaml:7:41: slos[0].latency.threshold: expected a number with a unit (ns, "
       "us, ms, s, m, h, d), such as 250ms, 1.5s or 1h30m, got 'fast'"},
      {"slos: [{ name: a, latency: { threshold: 350ms, objective: 99% } }]\n",
       "test.yaml:7:41: slos[0].latency.threshold: 350ms is not a bucket edge of ficus's latency "
       "histogram ({1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8} x 10^k: 250ms, 300ms, 1s, 2s, ...); the "
       "nearest are 300ms and 400ms (an edge is counted exactly by /metrics, GET /slo and `ficus "
       "slo rules` alike)"},
      {"slos: [{ name: a, latency: { threshold: 9ms, objective: 99% } }]\n",
       "test.yaml:7:41: slos[0].latency.threshold: 9ms is not a bucket edge of ficus's latency "
       "histogram ({1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8} x 10^k: 250ms, 300ms, 1s, 2s, ...); the "
       "nearest are 8ms and 10ms (an edge is counted exactly by /metrics, GET /slo and `ficus "
       "slo rules` alike)"},
      {"slos: [{ name: a, latency: { threshold: 1h, objective: 99% } }]\n",
       "test.yaml:7:41: slos[0].latency.threshold: must be between 1ms and 10m, got 1h"},
      {"slos: [{ name: a, availability: 99%, window: 1h }]\n",
       "test.yaml:7:46: slos[0].window: must be between 24h and 2160h, got 1h"},
      {"slos: [{ name: a, availability: 99%, min_requests: -1 }]\n",
       "test.yaml:7:52: slos[0].min_requests: expected an integer 0..1000000000, got '-1'"},
      {"slos: [{ name: a, availability: 99%, webhooks: [ftp://x.example.com/] }]\n",
       "test.yaml:7:49: slos[0].webhooks[0]: 'ftp://x.example.com/': expected a URL like "
       "http://127.0.0.1:9000/hook or https://hooks.example.com/x"},
      {"slos: [{ name: a, availability: 99%, ca_file: /nonexistent/ca.pem }]\n",
       "test.yaml:7:47: slos[0].ca_file: '/nonexistent/ca.pem' is not a readable file"},
      {"slos: [{ name: a, availability: 99%, webhooks: http://x/ }]\n",
       "test.yaml:7:48: slos[0].webhooks: expected a list, got 'http://x/'"},
      {"slos: [{ name: a, availability: 99%, objective: 99% }]\n",
       "test.yaml:7:38: slos[0].objective: unknown key 'objective'; expected one of: name, "
       "routes, availability, latency, window, min_requests, webhooks, ca_file"},
      {"slos: [{ name: a, availability: 99% }, { name: a, availability: 98% }]\n",
       "test.yaml:7:48: slos[1].name: duplicate SLO name 'a' (also slos[0] at line 7)"},
      {"slos: { name: a }\n", "test.yaml:7:7: slos: expected a list, got a map"},
  };
  for (const BadCase& c : cases) {
    LoadResult r = Load(c.slos);
    EXPECT_EQ(r.config, nullptr) << c.slos;
    EXPECT_THAT(Errors(r), ElementsAre(c.error)) << c.slos;
  }
}

TEST(SloConfig, WarnsWhenThePageAlertCannotFire) {
  // 14.4 x 10 % > 100 %: the fast-burn page can never fire.
  LoadResult r = Load(
      "slos: [{ name: loose, availability: 90%, latency: { threshold: 1s, "
      "objective: 93% } }]\n");
  ASSERT_THAT(Errors(r), IsEmpty());
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_EQ(r.warnings[0].field, "slos[0].availability");
  EXPECT_THAT(r.warnings[0].reason, HasSubstr("90%"));
  EXPECT_THAT(r.warnings[0].reason, HasSubstr("can never fire"));
  EXPECT_EQ(r.warnings[1].field, "slos[0].latency");
  // 99 % is fine: 14.4 x 1 % = 14.4 %.
  EXPECT_THAT(Load("slos: [{ name: ok, availability: 99% }]\n").warnings, IsEmpty());
}

TEST(SloConfig, RoundTripsThroughRedactedYaml) {
  LoadResult r = Load(R"(slos:
  - name: api
    routes: [products]
    availability: 99.95%
    latency: { threshold: 250ms, objective: 99.5% }
    window: 7d
    min_requests: 0
    webhooks: [http://127.0.0.1:9000/hook]
  - name: all
    availability: 99%
)");
  ASSERT_THAT(Errors(r), IsEmpty());
  const std::string yaml = ToRedactedYaml(*r.config);
  EXPECT_THAT(yaml, HasSubstr("availability: 99.95%"));
  LoadResult again = LoadString(yaml, "again.yaml");
  ASSERT_THAT(Errors(again), IsEmpty()) << yaml;
  EXPECT_EQ(Describe(*again.config).substr(Describe(*again.config).find("routes")),
            Describe(*r.config).substr(Describe(*r.config).find("routes")));
  EXPECT_THAT(Describe(*r.config),
              HasSubstr("  api: routes products, window 168h, min_requests 0, availability "
                        "99.95%, latency 99.5% within 250ms\n    webhook "
                        "http://127.0.0.1:9000/hook\n"));
}

TEST(SloValues, Percent) {
  std::string error;
  EXPECT_DOUBLE_EQ(*internal::ParsePercent("99.9%", &error), 0.999);
  EXPECT_DOUBLE_EQ(*internal::ParsePercent("50%", &error), 0.5);
  EXPECT_DOUBLE_EQ(*internal::ParsePercent("0.0001%", &error), 0.000001);
  EXPECT_DOUBLE_EQ(*internal::ParsePercent("99.9999%", &error), 0.999999);
  for (const char* bad : {"", "%", "99", "99.%", ".9%", "99.9 %", "-1%", "0%", "0.0000%", "100%",
                          "100.0%", "1000%", "1e2%", "99,9%", "99.99999%", "0x10%"}) {
    EXPECT_FALSE(internal::ParsePercent(bad, &error)) << bad;
  }
  for (const char* text : {"99.9%", "99%", "99.95%", "0.0001%", "99.9999%", "12.3456%"}) {
    EXPECT_EQ(internal::FormatPercent(*internal::ParsePercent(text, &error)), text);
  }
}

TEST(SloValues, HttpUrl) {
  Webhook w;
  std::string error;
  ASSERT_TRUE(internal::ParseHttpUrl("http://127.0.0.1:9000/a/b?c=d", &w, &error)) << error;
  EXPECT_EQ(w.host, "127.0.0.1");
  EXPECT_EQ(w.port, 9000);
  EXPECT_EQ(w.target, "/a/b?c=d");
  ASSERT_TRUE(internal::ParseHttpUrl("http://[::1]:81", &w, &error)) << error;
  EXPECT_EQ(w.host, "::1");
  EXPECT_EQ(w.port, 81);
  EXPECT_EQ(w.target, "/");
  ASSERT_TRUE(internal::ParseHttpUrl("HTTP://[::1]", &w, &error)) << error;
  EXPECT_EQ(w.port, 80);
  ASSERT_TRUE(internal::ParseHttpUrl("http://hooks.local?x=1", &w, &error)) << error;
  EXPECT_EQ(w.host, "hooks.local");
  EXPECT_EQ(w.target, "/?x=1");
  EXPECT_FALSE(w.https);
  ASSERT_TRUE(internal::ParseHttpUrl("https://hooks.example.com/x", &w, &error)) << error;
  EXPECT_TRUE(w.https);
  EXPECT_EQ(w.port, 443);
  EXPECT_EQ(w.target, "/x");
  ASSERT_TRUE(internal::ParseHttpUrl("HTTPS://[::1]:8443", &w, &error)) << error;
  EXPECT_TRUE(w.https);
  EXPECT_EQ(w.port, 8443);
  for (const char* bad :
       {"", "http://", "http:///x", "https://", "ftp://a/", "http://a b/", "http://u@a/",
        "http://a/#frag", "http://a:0/", "http://a:99999/", "http://[::1/", "http://[1.2.3.4]/",
        "http://::1/", "http://-a-/", "http://a/\x01", "127.0.0.1:9000/hook"}) {
    EXPECT_FALSE(internal::ParseHttpUrl(bad, &w, &error)) << bad;
  }
}

}  // namespace
}  // namespace ficus::config
