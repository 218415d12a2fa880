// Config of upstream resilience: retry, outlier_detection, health_check,
// circuit_breakers, hash_key, affinity, panic_threshold, dns_refresh — good and bad values.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace ficus::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

LoadResult Load(const std::string& cluster_extra, const std::string& lb = "") {
  std::string yaml =
      "listeners: [{ listen: 0.0.0.0:8080 }]\nclusters:\n  - name: app\n"
      "    endpoints: [127.0.0.1:3000, 127.0.0.1:3001]\n";
  if (!lb.empty()) yaml += "    load_balancer: " + lb + "\n";
  yaml += cluster_extra;
  yaml += "routes: [{ cluster: app }]\n";
  return LoadString(yaml, "test.yaml");
}

// A copy: the LoadResult is usually a temporary.
Cluster Ok(const LoadResult& r) {
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].ToString());
  return r.config ? r.config->clusters[0] : Cluster{};
}

void ExpectError(const LoadResult& r, const std::string& field, const std::string& reason) {
  ASSERT_EQ(r.errors.size(), 1u) << (r.errors.empty() ? "none" : r.errors[0].ToString());
  EXPECT_EQ(r.errors[0].field, field) << r.errors[0].ToString();
  EXPECT_THAT(r.errors[0].reason, HasSubstr(reason));
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_GT(r.errors[0].column, 0);
}

TEST(ResilienceConfig, DefaultsAreOff) {
  const Cluster c = Ok(Load(""));
  EXPECT_FALSE(c.retry.enabled());
  EXPECT_FALSE(c.outlier_detection.enabled);
  EXPECT_FALSE(c.health_check.enabled);
  EXPECT_FALSE(c.circuit_breakers.any());
  EXPECT_EQ(c.hash_key.kind, HashKey::Kind::kNone);
  EXPECT_TRUE(c.affinity.cookie.empty());
  EXPECT_EQ(c.panic_threshold, 50u);
}

TEST(ResilienceConfig, Retry) {
  const Cluster c = Ok(Load(R"(    retry:
      on: [connect_failure, reset, timeout, "502", 503]
      max_tries: 3
      per_try_timeout: 500ms
      backoff: { base: 10ms, max: 100ms }
      budget: { ratio: 0.25, min_per_second: 2, window: 30s }
)"));
  EXPECT_EQ(c.retry.max_tries, 3u);
  EXPECT_TRUE(c.retry.on_connect_failure && c.retry.on_reset && c.retry.on_timeout);
  EXPECT_THAT(c.retry.on_status, ElementsAre(502, 503));
  EXPECT_EQ(c.retry.per_try_timeout, Duration{500});
  EXPECT_EQ(c.retry.backoff_base, Duration{10});
  EXPECT_EQ(c.retry.backoff_max, Duration{100});
  EXPECT_DOUBLE_EQ(c.retry.budget_ratio, 0.25);
  EXPECT_EQ(c.retry.budget_min_per_second, 2u);
  EXPECT_EQ(c.retry.budget_window, Duration{30000});
  // A retry section without max_tries means one retry.
  EXPECT_EQ(Ok(Load("    retry: { on: [reset] }\n")).retry.max_tries, 2u);
}

TEST(ResilienceConfig, RetryBudgetDefaultsShorthandAndTheOldFloor) {
  const Cluster d = Ok(Load("    retry: { on: [reset] }\n"));
  EXPECT_DOUBLE_EQ(d.retry.budget_ratio, 0.2);
  EXPECT_EQ(d.retry.budget_min_per_second, 10u);
  EXPECT_EQ(d.retry.budget_window, Duration{10000});
  // `budget: 20%` is the ratio alone.
  const Cluster s = Ok(Load("    retry: { on: [reset], budget: 35% }\n"));
  EXPECT_DOUBLE_EQ(s.retry.budget_ratio, 0.35);
  EXPECT_EQ(s.retry.budget_min_per_second, 10u);
  // The concurrency floor the rate budget replaced still loads, as the per-second floor, and
  // says so.
  const LoadResult old = Load("    retry: { on: [reset], budget: { min_concurrency: 4 } }\n");
  EXPECT_EQ(Ok(old).retry.budget_min_per_second, 4u);
  ASSERT_EQ(old.warnings.size(), 1u);
  EXPECT_EQ(old.warnings[0].field, "clusters[0].retry.budget.min_concurrency");
  EXPECT_THAT(old.warnings[0].reason, HasSubstr("min_per_second"));
  ExpectError(
      Load("    retry: { on: [reset], budget: { min_concurrency: 4, min_per_second: 5 } }\n"),
      "clusters[0].retry.budget.min_concurrency", "old name of min_per_second");
  ExpectError(Load("    retry: { on: [reset], budget: { window: 100ms } }\n"),
              "clusters[0].retry.budget.window", "must be between");
  ExpectError(Load("    retry: { on: [reset], budget: 150% }\n"), "clusters[0].retry.budget",
              "expected a ratio");
}

TEST(ResilienceConfig, RetryErrors) {
  ExpectError(Load("    retry: { on: [teapot] }\n"), "clusters[0].retry.on[0]",
              "unknown retry condition 'teapot'");
  ExpectError(Load("    retry: { on: [\"404\"] }\n"), "clusters[0].retry.on[0]",
              "a status 500..599");
  ExpectError(Load("    retry: { max_tries: 3 }\n"), "clusters[0].retry.on",
              "missing required key 'on'");
  ExpectError(Load("    retry: { on: [reset], max_tries: 11 }\n"), "clusters[0].retry.max_tries",
              "must be 1..10");
  ExpectError(Load("    retry: { on: [reset], budget: { ratio: 1.5 } }\n"),
              "clusters[0].retry.budget.ratio", "expected a ratio 0..1 or a percentage 0%..100%");
  ExpectError(Load("    retry: { on: [reset], backoff: { base: 200ms, max: 100ms } }\n"),
              "clusters[0].retry.backoff", "below backoff.base");
  ExpectError(Load("    retry: { on: [reset], backoff: { base: 2s } }\n"),
              "clusters[0].retry.backoff.base", "must be between");
  ExpectError(Load("    retry: { on: [reset], tries: 2 }\n"), "clusters[0].retry.tries",
              "unknown key 'tries'");
}

TEST(ResilienceConfig, OutlierDetection) {
  const Cluster c = Ok(Load(R"(    outlier_detection:
      consecutive_5xx: 4
      consecutive_gateway_failures: 2
      base_ejection_time: 10s
      max_ejection_time: 1m
      max_ejection_percent: 34
)"));
  EXPECT_TRUE(c.outlier_detection.enabled);
  EXPECT_EQ(c.outlier_detection.consecutive_5xx, 4u);
  EXPECT_EQ(c.outlier_detection.consecutive_gateway_failures, 2u);
  EXPECT_EQ(c.outlier_detection.base_ejection_time, Duration{10000});
  EXPECT_EQ(c.outlier_detection.max_ejection_time, Duration{60000});
  EXPECT_EQ(c.outlier_detection.max_ejection_percent, 34u);
  EXPECT_TRUE(Ok(Load("    outlier_detection: {}\n")).outlier_detection.enabled);
  ExpectError(Load("    outlier_detection: { max_ejection_percent: 101 }\n"),
              "clusters[0].outlier_detection.max_ejection_percent", "must be 0..100");
  ExpectError(Load("    outlier_detection: { base_ejection_time: 1m, max_ejection_time: 10s }\n"),
              "clusters[0].outlier_detection", "below base_ejection_time");
}

TEST(ResilienceConfig, HealthCheck) {
  const Cluster c = Ok(Load(R"(    health_check:
      path: /healthz
      host: app.internal
      interval: 2s
      jitter: 200ms
      timeout: 500ms
      expected_statuses: [200, "204-299"]
      healthy_threshold: 1
      unhealthy_threshold: 2
)"));
  const HealthCheck& h = c.health_check;
  EXPECT_TRUE(h.enabled);
  EXPECT_EQ(h.path, "/healthz");
  EXPECT_EQ(h.host, "app.internal");
  EXPECT_EQ(h.interval, Duration{2000});
  EXPECT_EQ(h.jitter, Duration{200});
  EXPECT_EQ(h.timeout, Duration{500});
  EXPECT_THAT(h.expected_statuses, ElementsAre(Pair(200, 200), Pair(204, 299)));
  EXPECT_EQ(h.healthy_threshold, 1u);
  EXPECT_EQ(h.unhealthy_threshold, 2u);
  ExpectError(Load("    health_check: { path: healthz }\n"), "clusters[0].health_check.path",
              "must start with '/'");
  ExpectError(Load("    health_check: { expected_statuses: [\"300-200\"] }\n"),
              "clusters[0].health_check.expected_statuses[0]", "range like 200-399");
  ExpectError(Load("    health_check: { expected_statuses: [] }\n"),
              "clusters[0].health_check.expected_statuses", "at least one");
  ExpectError(Load("    health_check: { interval: 1ms }\n"), "clusters[0].health_check.interval",
              "must be between");
  ExpectError(Load("    health_check: { healthy_threshold: 0 }\n"),
              "clusters[0].health_check.healthy_threshold", "must be 1..100");
}

TEST(ResilienceConfig, CircuitBreakers) {
  const Cluster c =
      Ok(Load("    circuit_breakers: { max_connections: 10, max_pending: 5, max_requests: 100, "
              "max_retries: 3 }\n"));
  EXPECT_EQ(c.circuit_breakers.max_connections, 10u);
  EXPECT_EQ(c.circuit_breakers.max_pending, 5u);
  EXPECT_EQ(c.circuit_breakers.max_requests, 100u);
  EXPECT_EQ(c.circuit_breakers.max_retries, 3u);
  ExpectError(Load("    circuit_breakers: { max_requests: -1 }\n"),
              "clusters[0].circuit_breakers.max_requests", "expected an integer");
  ExpectError(Load("    circuit_breakers: { max_streams: 1 }\n"),
              "clusters[0].circuit_breakers.max_streams", "unknown key");
}

TEST(ResilienceConfig, HashKeyAndAffinity) {
  const Cluster h = Ok(Load("    hash_key: { header: X-User }\n", "ring_hash"));
  EXPECT_EQ(h.hash_key.kind, HashKey::Kind::kHeader);
  EXPECT_EQ(h.hash_key.name, "x-user");
  EXPECT_EQ(Ok(Load("    hash_key: { cookie: sid }\n", "maglev")).hash_key.kind,
            HashKey::Kind::kCookie);
  EXPECT_EQ(Ok(Load("    hash_key: { query: id }\n", "maglev")).hash_key.kind,
            HashKey::Kind::kQuery);
  EXPECT_EQ(Ok(Load("    hash_key: { client_address: true }\n", "ring_hash")).hash_key.kind,
            HashKey::Kind::kClientAddress);
  ExpectError(Load("", "ring_hash"), "clusters[0].load_balancer", "needs a `hash_key`");
  ExpectError(Load("    hash_key: { header: a, cookie: b }\n", "ring_hash"), "clusters[0].hash_key",
              "exactly one");
  ExpectError(Load("    hash_key: { header: X-User }\n"), "clusters[0].hash_key",
              "only by load_balancer ring_hash or maglev");
  ExpectError(Load("    hash_key: { header: \"a b\" }\n", "maglev"), "clusters[0].hash_key.header",
              "a token");
  ExpectError(Load("    hash_key: { client_address: false }\n", "maglev"),
              "clusters[0].hash_key.client_address", "hashes nothing");

  const Cluster a = Ok(Load("    affinity: { cookie: ficus_aff, ttl: 1h }\n"));
  EXPECT_EQ(a.affinity.cookie, "ficus_aff");
  EXPECT_EQ(a.affinity.ttl, Duration{3600000});
  ExpectError(Load("    affinity: { ttl: 1h }\n"), "clusters[0].affinity.cookie",
              "missing required key");
  ExpectError(Load("    affinity: { cookie: \"a;b\" }\n"), "clusters[0].affinity.cookie",
              "a cookie name");
}

TEST(ResilienceConfig, PanicThresholdAndDnsRefresh) {
  const Cluster c = Ok(Load("    panic_threshold: 30\n    dns_refresh: 30s\n"));
  EXPECT_EQ(c.panic_threshold, 30u);
  EXPECT_EQ(c.dns_refresh, Duration{30000});
  ExpectError(Load("    panic_threshold: 101\n"), "clusters[0].panic_threshold", "must be 0..100");
}

}  // namespace
}  // namespace ficus::config
