// Route `compress:` settings and the cache's coalesce_timeout: defaults, every key, the round
// trip, and the errors for bad values.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

namespace ficus::config {
namespace {

using ::testing::HasSubstr;

LoadResult Load(const std::string& key, const std::string& value) {
  return LoadString(std::string("listeners: [{ listen: 127.0.0.1:8080 }]\n"
                                "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
                                "routes:\n  - cluster: app\n    ") +
                        key + ": " + value + "\n",
                    "test.yaml");
}

TEST(CompressConfig, DefaultsAndEveryKey) {
  LoadResult r = Load("compress", "{}");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const Compress& d = *r.config->routes[0].compress;
  EXPECT_EQ(d.codings, (std::vector<std::string>{"zstd", "br", "gzip"}));
  EXPECT_EQ(d.min_size, 1024u);
  EXPECT_EQ(d.gzip_level, 6);
  EXPECT_EQ(d.brotli_level, 4);
  EXPECT_EQ(d.zstd_level, 3);
  EXPECT_THAT(d.types, ::testing::Contains("application/json"));
  r = Load("compress",
           "{ codings: [gzip, BR], types: [text/*, Application/JSON], min_size: 2KiB, "
           "gzip_level: 1, brotli_level: 11, zstd_level: 19 }");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const Compress& c = *r.config->routes[0].compress;
  EXPECT_EQ(c.codings, (std::vector<std::string>{"gzip", "br"}));
  EXPECT_EQ(c.types, (std::vector<std::string>{"text/*", "application/json"}));
  EXPECT_EQ(c.min_size, 2048u);
  EXPECT_EQ(c.gzip_level, 1);
  EXPECT_EQ(c.brotli_level, 11);
  EXPECT_EQ(c.zstd_level, 19);
  EXPECT_THAT(Describe(*r.config), HasSubstr("compressed"));
  LoadResult again = LoadString(ToRedactedYaml(*r.config), "again.yaml");
  ASSERT_TRUE(again.errors.empty()) << again.errors[0].ToString();
  EXPECT_EQ(*again.config->routes[0].compress, c);
}

void ExpectError(const std::string& key, const std::string& value, const std::string& field,
                 const std::string& why) {
  LoadResult r = Load(key, value);
  EXPECT_EQ(r.config, nullptr) << value;
  ASSERT_EQ(r.errors.size(), 1u) << value;
  EXPECT_EQ(r.errors[0].field, field) << value;
  EXPECT_THAT(r.errors[0].reason, HasSubstr(why)) << value;
  EXPECT_EQ(r.errors[0].line, 5);
}

TEST(CompressConfig, Errors) {
  ExpectError("compress", "{ codings: [deflate] }", "routes[0].compress.codings[0]",
              "unknown coding 'deflate'");
  ExpectError("compress", "{ codings: [gzip, GZIP] }", "routes[0].compress.codings[1]",
              "listed twice");
  ExpectError("compress", "{ codings: [] }", "routes[0].compress.codings", "at least one");
  ExpectError("compress", "{ types: [json] }", "routes[0].compress.types[0]", "media type");
  ExpectError("compress", "{ types: ['*/json'] }", "routes[0].compress.types[0]", "media type");
  ExpectError("compress", "{ gzip_level: 10 }", "routes[0].compress.gzip_level", "");
  ExpectError("compress", "{ zstd_level: 0 }", "routes[0].compress.zstd_level", "");
  ExpectError("compress", "{ level: 1 }", "routes[0].compress.level", "unknown key 'level'");
}

TEST(CacheConfig, CoalesceTimeout) {
  LoadResult r = Load("cache", "{}");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  EXPECT_EQ(r.config->routes[0].cache->coalesce_timeout, Duration{5000});
  r = Load("cache", "{ coalesce_timeout: 250ms }");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  EXPECT_EQ(r.config->routes[0].cache->coalesce_timeout, Duration{250});
  LoadResult again = LoadString(ToRedactedYaml(*r.config), "again.yaml");
  ASSERT_TRUE(again.errors.empty()) << again.errors[0].ToString();
  EXPECT_EQ(again.config->routes[0].cache->coalesce_timeout, Duration{250});
  ExpectError("cache", "{ coalesce_timeout: never }", "routes[0].cache.coalesce_timeout", "");
}

}  // namespace
}  // namespace ficus::config
