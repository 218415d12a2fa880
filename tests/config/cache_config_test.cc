// Route `cache:` settings: defaults, every key, the round trip, and the errors for bad values.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

namespace ficus::config {
namespace {

using ::testing::HasSubstr;

LoadResult Load(const std::string& cache) {
  return LoadString(std::string("listeners: [{ listen: 127.0.0.1:8080 }]\n"
                                "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
                                "routes:\n  - cluster: app\n    cache: ") +
                        cache + "\n",
                    "test.yaml");
}

TEST(CacheConfig, DefaultsAndEveryKey) {
  LoadResult r = Load("{}");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const Cache& d = *r.config->routes[0].cache;
  EXPECT_EQ(d.ttl, Duration{0});
  EXPECT_EQ(d.max_size, 64u << 20);
  EXPECT_EQ(d.max_object_size, 1u << 20);
  EXPECT_FALSE(d.force_ttl);
  r = Load(
      "{ ttl: 30s, stale_while_revalidate: 1m, stale_if_error: 5m, max_size: 16MiB, "
      "max_object_size: 64KiB, query_sort: true, query_ignore: [utm_source, fbclid], "
      "force_ttl: true }");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const Cache& c = *r.config->routes[0].cache;
  EXPECT_EQ(c.ttl, Duration{30000});
  EXPECT_EQ(c.stale_while_revalidate, Duration{60000});
  EXPECT_EQ(c.stale_if_error, Duration{300000});
  EXPECT_EQ(c.max_size, 16u << 20);
  EXPECT_EQ(c.max_object_size, 64u << 10);
  EXPECT_TRUE(c.query_sort);
  EXPECT_EQ(c.query_ignore, (std::vector<std::string>{"utm_source", "fbclid"}));
  EXPECT_TRUE(c.force_ttl);
  EXPECT_THAT(Describe(*r.config), HasSubstr("cache ttl 30s"));
  LoadResult again = LoadString(ToRedactedYaml(*r.config), "again.yaml");
  ASSERT_TRUE(again.errors.empty()) << again.errors[0].ToString();
  EXPECT_EQ(*again.config->routes[0].cache, c);
}

void ExpectError(const std::string& cache, const std::string& field, const std::string& why) {
  LoadResult r = Load(cache);
  EXPECT_EQ(r.config, nullptr) << cache;
  ASSERT_EQ(r.errors.size(), 1u) << cache;
  EXPECT_EQ(r.errors[0].field, field) << cache;
  EXPECT_THAT(r.errors[0].reason, HasSubstr(why)) << cache;
  EXPECT_EQ(r.errors[0].line, 5);
}

TEST(CacheConfig, Errors) {
  ExpectError("{ ttl: soon }", "routes[0].cache.ttl", "a number with a unit");
  ExpectError("{ max_size: 1KiB }", "routes[0].cache.max_size", "must be between");
  ExpectError("{ max_size: 1MiB, max_object_size: 1MiB }", "routes[0].cache.max_object_size",
              "max_size / 16");
  ExpectError("{ force_ttl: true }", "routes[0].cache.force_ttl", "needs a ttl");
  ExpectError("{ query_ignore: ['a&b'] }", "routes[0].cache.query_ignore[0]", "parameter name");
  ExpectError("{ query_sort: maybe }", "routes[0].cache.query_sort", "");
  ExpectError("{ size: 1 }", "routes[0].cache.size", "unknown key 'size'");
}

}  // namespace
}  // namespace ficus::config
