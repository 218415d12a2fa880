// Route `record:` settings: defaults, every key, and the errors for bad values.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

namespace ficus::config {
namespace {

using ::testing::HasSubstr;

LoadResult Load(const std::string& record) {
  return LoadString(std::string("listeners: [{ listen: 127.0.0.1:8080 }]\n"
                                "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
                                "routes:\n  - cluster: app\n    record: ") +
                        record + "\n",
                    "test.yaml");
}

TEST(RecordConfig, Defaults) {
  LoadResult r = Load("{ path: /tmp/cap.jsonl }");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const auto& rec = r.config->routes[0].record;
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->path, "/tmp/cap.jsonl");
  EXPECT_EQ(rec->sample, 1.0);
  EXPECT_EQ(rec->max_body_bytes, 64u * 1024);
  EXPECT_EQ(rec->redact_headers, (std::vector<std::string>{"authorization", "cookie"}));
}

TEST(RecordConfig, EveryKey) {
  LoadResult r = Load(
      "{ path: cap.jsonl, sample: 10%, max_body_bytes: 1KiB, redact_headers: [X-Api-Key, "
      "Cookie] }");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const auto& rec = *r.config->routes[0].record;
  EXPECT_DOUBLE_EQ(rec.sample, 0.1);
  EXPECT_EQ(rec.max_body_bytes, 1024u);
  EXPECT_EQ(rec.redact_headers, (std::vector<std::string>{"x-api-key", "cookie"}));
  EXPECT_DOUBLE_EQ(Load("{ path: a, sample: 0.25 }").config->routes[0].record->sample, 0.25);
  EXPECT_FALSE(Load("{ path: a, sample: 0 }").config == nullptr);
  EXPECT_FALSE(LoadString("listeners: [{ listen: 127.0.0.1:8080 }]\n"
                          "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
                          "routes: [{ cluster: app }]\n",
                          "t.yaml")
                   .config->routes[0]
                   .record.has_value());
}

TEST(RecordConfig, DescribedAndRoundTripsThroughTheRedactedYaml) {
  LoadResult r =
      Load("{ path: /tmp/c.jsonl, sample: 0.5, max_body_bytes: 2KiB, redact_headers: [X-K] }");
  ASSERT_TRUE(r.errors.empty());
  EXPECT_THAT(Describe(*r.config), HasSubstr("record /tmp/c.jsonl"));
  LoadResult again = LoadString(ToRedactedYaml(*r.config), "again.yaml");
  ASSERT_TRUE(again.errors.empty()) << again.errors[0].ToString();
  const Record& rec = *again.config->routes[0].record;
  EXPECT_EQ(rec.path, "/tmp/c.jsonl");
  EXPECT_DOUBLE_EQ(rec.sample, 0.5);
  EXPECT_EQ(rec.max_body_bytes, 2048u);
  EXPECT_EQ(rec.redact_headers, std::vector<std::string>{"x-k"});
}

void ExpectError(const std::string& record, const std::string& field, const std::string& why) {
  LoadResult r = Load(record);
  EXPECT_EQ(r.config, nullptr) << record;
  ASSERT_EQ(r.errors.size(), 1u) << record;
  EXPECT_EQ(r.errors[0].field, field) << record;
  EXPECT_THAT(r.errors[0].reason, HasSubstr(why)) << record;
  EXPECT_EQ(r.errors[0].line, 5);
  EXPECT_GT(r.errors[0].column, 12);
}

TEST(RecordConfig, Errors) {
  ExpectError("{ sample: 1 }", "routes[0].record.path", "missing required key 'path'");
  ExpectError("{ path: '' }", "routes[0].record.path", "must not be empty");
  ExpectError("{ path: a, sample: 2 }", "routes[0].record.sample", "ratio 0..1");
  ExpectError("{ path: a, sample: lots }", "routes[0].record.sample", "ratio 0..1");
  ExpectError("{ path: a, sample: 150% }", "routes[0].record.sample", "ratio 0..1");
  ExpectError("{ path: a, max_body_bytes: huge }", "routes[0].record.max_body_bytes", "size");
  ExpectError("{ path: a, max_body_bytes: 1GiB }", "routes[0].record.max_body_bytes",
              "must be between");
  ExpectError("{ path: a, redact_headers: Cookie }", "routes[0].record.redact_headers",
              "expected a list");
  ExpectError("{ path: a, redact_headers: ['X Y'] }", "routes[0].record.redact_headers[0]",
              "header name");
  ExpectError("{ path: a, keep: all }", "routes[0].record.keep", "unknown key 'keep'");
}

}  // namespace
}  // namespace ficus::config
