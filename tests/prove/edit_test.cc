// Remedies merged into a config: the result loads, keeps what was there, puts a new route where
// it can match, expands ROUTE; and the diff --dry-run prints.
#include "prove/internal/edit.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace ficus::prove::internal {
namespace {

constexpr const char* kShop = R"(
listeners: [{ listen: 127.0.0.1:8080 }]
admin: { listen: 127.0.0.1:9901, token: secret-token-123 }
clusters: [{ name: shop, endpoints: ["127.0.0.1:3000"] }]
routes:
  - { name: catalog, match: { path_prefix: /api/products, methods: [GET, HEAD] }, cluster: shop }
  - { name: signup, match: { path: /api/signup, methods: [POST] }, cluster: shop }
  - { name: other, cluster: shop }
)";

std::shared_ptr<const config::Config> Load(const std::string& yaml) {
  config::LoadResult r = config::LoadString(yaml, "merged.yaml");
  EXPECT_TRUE(r.config) << yaml << "\n" << (r.errors.empty() ? "" : r.errors[0].ToString());
  return r.config;
}

TEST(MergeSnippetTest, CacheOnARoute) {
  Outcome<std::string> m = MergeSnippet(
      kShop,
      "routes:\n  - name: catalog\n    # ... match and cluster as now\n    cache: { ttl: 30s, "
      "stale_while_revalidate: 60s }\n",
      {});
  ASSERT_TRUE(m) << m.message();
  auto cfg = Load(*m);
  ASSERT_TRUE(cfg);
  ASSERT_EQ(cfg->routes.size(), 3u);
  EXPECT_EQ(cfg->routes[0].name, "catalog");
  EXPECT_EQ(cfg->routes[0].match.path_prefix, "/api/products");
  EXPECT_EQ(cfg->admin.token, "secret-token-123");
  EXPECT_NE(*m, kShop);
}

TEST(MergeSnippetTest, OffloadAddsQueueAndAJobsRouteBeforeTheCatchAll) {
  const char* snippet =
      "queues:\n  - { name: signup, concurrency: 4 }\nroutes:\n  - name: signup\n    offload: { "
      "queue: signup, max_attempts: 5 }\n  - name: signup-jobs\n    match: { path_prefix: "
      "/jobs/signup/ }\n    cluster: shop\n    jobs: { queue: signup }\n";
  Outcome<std::string> m = MergeSnippet(std::string(kShop) + "data_dir: /tmp/x\n", snippet, {});
  ASSERT_TRUE(m) << m.message();
  auto cfg = Load(*m);
  ASSERT_TRUE(cfg);
  ASSERT_EQ(cfg->routes.size(), 4u);
  EXPECT_EQ(cfg->routes[2].name, "signup-jobs");  // before `other`, which matches everything
  EXPECT_EQ(cfg->routes[3].name, "other");
}

TEST(MergeSnippetTest, RoutePlaceholderStandsForEachRoute) {
  const char* snippet =
      "routes:\n  - name: ROUTE   # each route it uses\n    rate_limit: { key: "
      "\"header:X-Api-Key\", "
      "rate: 20/s, burst: 40 }\n";
  Outcome<std::string> m = MergeSnippet(kShop, snippet, {"catalog", "signup"});
  ASSERT_TRUE(m) << m.message();
  auto cfg = Load(*m);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->routes.size(), 3u);  // merged into the two, no route named ROUTE
  EXPECT_EQ(m->find("ROUTE"), std::string::npos);
  EXPECT_FALSE(MergeSnippet(kShop, snippet, {}));
}

TEST(MergeSnippetTest, BadInputIsAnError) {
  EXPECT_FALSE(MergeSnippet("routes: [", "a: 1", {}));
  Outcome<std::string> m = MergeSnippet(kShop, "- just a list", {});
  ASSERT_FALSE(m);
  EXPECT_NE(m.message().find("snippet"), std::string::npos);
}

TEST(LineDiffTest, ShowsChangedLinesWithContext) {
  const std::string a = "a\nb\nc\nd\ne\nf\ng\nh\n", b = "a\nb\nc\nd\nE\nf\ng\nh\nI\n";
  const std::string d = LineDiff(a, b, 1);
  EXPECT_NE(d.find("- e\n+ E\n"), std::string::npos) << d;
  EXPECT_NE(d.find("+ I\n"), std::string::npos) << d;
  EXPECT_NE(d.find("  ...\n"), std::string::npos) << d;
  EXPECT_EQ(d.find("  a\n"), std::string::npos) << d;
  EXPECT_EQ(LineDiff(a, a), "");
}

}  // namespace
}  // namespace ficus::prove::internal
