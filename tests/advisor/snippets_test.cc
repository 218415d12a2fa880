// Every config snippet the report prints is valid config: merged into the config it speaks of
// (lists of named entries merged by name), the result loads without an error.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "advisor/internal/rules.h"
#include "config/config.h"
#include "route_rules.h"

namespace ficus::advisor::internal {
namespace {

constexpr const char* kBase = R"(
listeners: [{ listen: 127.0.0.1:8080 }]
clusters: [{ name: shop, endpoints: ["127.0.0.1:9"] }]
routes:
  - { name: catalog, match: { path_prefix: /catalog }, cluster: shop }
  - { name: signup, match: { path: /signup, methods: [POST] }, cluster: shop }
  - { name: ROUTE, match: { path_prefix: / }, cluster: shop }
)";

// The snippet's keys into `base`: a list of maps with `name`s merges entry by entry (keys added
// to the entry of the same name, new names appended); anything else is set.
void Merge(YAML::Node base, const YAML::Node& snippet) {
  for (const auto& kv : snippet) {
    const std::string key = kv.first.as<std::string>();
    YAML::Node into = base[key];
    if (!kv.second.IsSequence() || !into || !into.IsSequence()) {
      base[key] = kv.second;
      continue;
    }
    for (const YAML::Node& entry : kv.second) {
      bool merged = false;
      for (YAML::Node existing : into) {
        if (entry["name"] && existing["name"] &&
            existing["name"].as<std::string>() == entry["name"].as<std::string>()) {
          for (const auto& field : entry) existing[field.first.as<std::string>()] = field.second;
          merged = true;
        }
      }
      if (!merged) into.push_back(entry);
    }
  }
}

void ExpectValid(const Finding& f) {
  ASSERT_FALSE(f.snippet.empty()) << f.kind;
  EXPECT_TRUE(f.in_ficus) << f.kind;
  YAML::Node base = YAML::Load(kBase);
  Merge(base, YAML::Load(f.snippet));
  YAML::Emitter out;
  out << base;
  config::LoadResult r = config::LoadString(out.c_str(), "merged.yaml");
  EXPECT_TRUE(r.config) << f.kind << "\n"
                        << f.snippet << "\n"
                        << (r.errors.empty() ? "" : r.errors[0].ToString());
}

RouteReport Route(const char* name) {
  RouteReport rr;
  rr.name = name;
  rr.requests = 1000;
  rr.p50_ms = 5;
  rr.p90_ms = 10;
  rr.p99_ms = 20;
  rr.threshold_ms = 250;
  rr.share = 0.5;
  return rr;
}

TEST(SnippetsTest, CacheAndSlowReadSnippetsLoad) {
  RouteReport rr = Route("catalog");
  rr.repeat_ratio = 0.97;
  rr.repeat_samples = 40;
  rr.peak_rps = 10;
  rr.p90_ms = 400;
  rr.p99_ms = 500;
  std::vector<Finding> f = OnRoute(rr, /*cacheable=*/true, /*worth_caching=*/true);
  ASSERT_FALSE(f.empty());
  for (const Finding& one : f) {
    if (!one.snippet.empty()) ExpectValid(one);
  }
  rr.repeat_ratio.reset();  // a slow read that does not repeat: the short-TTL cache snippet
  for (const Finding& one : OnRoute(rr, false)) {
    if (!one.snippet.empty()) ExpectValid(one);
  }
}

TEST(SnippetsTest, OffloadSnippetsLoad) {
  RouteReport rr = Route("signup");
  rr.reads = false;
  rr.p90_ms = 300;
  rr.p99_ms = 400;
  rr.mean_bytes_out = 100;
  std::vector<Finding> f = OnRoute(rr, false);
  ASSERT_EQ(f.size(), 2u);
  for (const Finding& one : f) ExpectValid(one);
}

TEST(SnippetsTest, ErrorsAndCapacitySnippetsLoad) {
  RouteReport rr = Route("catalog");
  rr.errors = 50;
  rr.error_statuses = {{503, 20}, {502, 5}};  // the retry part of the snippet too
  rr.capacity_rps = 100;
  rr.assessed = "knee";
  rr.peak_rps = 90;
  std::vector<Finding> f = OnRoute(rr, false);
  ASSERT_GE(f.size(), 2u);
  for (const Finding& one : f) {
    if (one.kind == "trigger.capacity") {
      EXPECT_TRUE(one.snippet.empty());  // new instances' addresses are the team's to give
      continue;
    }
    ExpectValid(one);
  }
  // Errors at any load: the retry alone, without the route's concurrency limit.
  rr.load_varied = true;
  rr.errors_busy_over_quiet = 1.0;
  rr.capacity_rps.reset();
  f = OnRoute(rr, false);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].snippet.find("concurrency"), std::string::npos);
  ExpectValid(f[0]);
}

TEST(SnippetsTest, NoisyClientSnippetsLoad) {
  Report report;
  for (const char* key : {"key:scraper", "user:bob", "10.0.0.7"}) {
    NoisyClient n;
    n.key = key;
    n.requests = 5000;
    n.share = 0.5;
    n.rps = 40;
    n.suggested_rate = 10;
    std::vector<Finding> out;
    ApplyRules(Subject::kClient, Facts{.report = report, .client = &n}, out);
    ASSERT_EQ(out.size(), 1u);
    ExpectValid(out[0]);
    // A looser limit already in place on a route it uses: the lowered one loads too.
    n.limit_rate = 50;
    n.limit_spec = "50/1s";
    n.limit_burst = 100;
    n.limit_routes = {"catalog"};
    out.clear();
    ApplyRules(Subject::kClient, Facts{.report = report, .client = &n}, out);
    ASSERT_EQ(out.size(), 1u);
    ExpectValid(out[0]);
  }
}

TEST(SnippetsTest, QueueBacklogSnippetsLoad) {
  Report report;
  QueueReport q;
  q.name = "signup";
  q.route = "signup";
  q.cluster = "shop";
  q.concurrency = 4;
  q.enqueue_rps = 10;
  q.delivery_rps = 5;
  q.backlog_end = 3000;
  q.growing = true;
  for (uint32_t rate : {0u, 5u}) {  // bound by the origin; held at the queue's own rate
    q.rate = rate;
    std::vector<Finding> out;
    ApplyRules(Subject::kQueue, Facts{.report = report, .queue = &q}, out);
    ASSERT_EQ(out.size(), 1u);
    ExpectValid(out[0]);
  }
}

}  // namespace
}  // namespace ficus::advisor::internal
