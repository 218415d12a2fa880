// access_log and tracing sections: defaults, good values, and every error with its position.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/internal/access_log_fields.h"

namespace ficus::config {
namespace {

using testing::HasSubstr;

constexpr std::string_view kBase = R"(listeners: [{ listen: 127.0.0.1:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ cluster: app }]
)";

LoadResult Load(std::string_view extra) {
  return LoadString(std::string(kBase) + std::string(extra), "t.yaml");
}

void ExpectError(std::string_view extra, const std::string& field, const std::string& reason) {
  LoadResult r = Load(extra);
  EXPECT_EQ(r.config, nullptr) << extra;
  ASSERT_EQ(r.errors.size(), 1u) << extra << (r.errors.empty() ? "" : r.errors[0].ToString());
  EXPECT_EQ(r.errors[0].field, field);
  EXPECT_THAT(r.errors[0].reason, HasSubstr(reason));
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_GT(r.errors[0].column, 0);
}

TEST(ObserveConfig, OffByDefault) {
  LoadResult r = Load("");
  ASSERT_TRUE(r.config);
  EXPECT_FALSE(r.config->access_log.enabled);
  EXPECT_FALSE(r.config->tracing.enabled);
}

TEST(ObserveConfig, AccessLogValues) {
  LoadResult r = Load("access_log: { path: /tmp/a.log }\n");
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_TRUE(r.config->access_log.enabled);
  EXPECT_EQ(r.config->access_log.path, "/tmp/a.log");
  EXPECT_TRUE(r.config->access_log.fields.empty());
  EXPECT_EQ(r.config->access_log.sample, 1.0);
  r = Load("access_log: { path: stdout, fields: [status, path], sample: 0.25 }\n");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->access_log.fields, (std::vector<std::string>{"status", "path"}));
  EXPECT_EQ(r.config->access_log.sample, 0.25);
  r = Load("access_log: { path: x, sample: 5% }\n");
  ASSERT_TRUE(r.config);
  EXPECT_DOUBLE_EQ(r.config->access_log.sample, 0.05);
  for (const std::string& f : internal::AccessLogFieldNames()) {
    r = Load("access_log: { path: x, fields: [" + f + "] }\n");
    EXPECT_TRUE(r.config) << f;
  }
}

TEST(ObserveConfig, AccessLogErrors) {
  ExpectError("access_log: { fields: [status] }\n", "access_log.path", "missing required key");
  ExpectError("access_log: { path: \"\" }\n", "access_log.path", "must not be empty");
  ExpectError("access_log: { path: x, fields: [status, cookie] }\n", "access_log.fields[1]",
              "unknown access log field 'cookie'");
  ExpectError("access_log: { path: x, fields: [status, status] }\n", "access_log.fields[1]",
              "listed twice");
  ExpectError("access_log: { path: x, fields: [] }\n", "access_log.fields", "at least one field");
  ExpectError("access_log: { path: x, sample: 1.5 }\n", "access_log.sample",
              "expected a ratio 0..1 or a percentage 0%..100%, got '1.5'");
  ExpectError("access_log: { path: x, sample: -0.1 }\n", "access_log.sample", "expected a ratio");
  ExpectError("access_log: { path: x, sample: 101% }\n", "access_log.sample", "expected a ratio");
  ExpectError("access_log: { path: x, sample: half }\n", "access_log.sample", "expected a ratio");
  ExpectError("access_log: { path: x, format: json }\n", "access_log.format", "unknown key");
  ExpectError("access_log: [x]\n", "access_log", "expected a map");
}

TEST(ObserveConfig, TracingValues) {
  LoadResult r = Load("tracing: { endpoint: \"http://127.0.0.1:4318/v1/traces\" }\n");
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  const Tracing& t = r.config->tracing;
  EXPECT_TRUE(t.enabled);
  EXPECT_EQ(t.endpoint, "http://127.0.0.1:4318/v1/traces");
  EXPECT_EQ(t.sample, 0.01);
  EXPECT_EQ(t.service_name, "ficus");
  EXPECT_EQ(t.batch_size, 512u);
  EXPECT_EQ(t.flush_interval, Duration(1000));
  r = Load(
      "tracing: { endpoint: \"http://[::1]:4318\", sample: 1%, service_name: edge, batch_size: "
      "64, flush_interval: 250ms, timeout: 1s }\n");
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_DOUBLE_EQ(r.config->tracing.sample, 0.01);
  EXPECT_EQ(r.config->tracing.service_name, "edge");
  EXPECT_EQ(r.config->tracing.batch_size, 64u);
  EXPECT_EQ(r.config->tracing.flush_interval, Duration(250));
  EXPECT_EQ(r.config->tracing.timeout, Duration(1000));
}

TEST(ObserveConfig, TracingErrors) {
  ExpectError("tracing: { sample: 1 }\n", "tracing.endpoint", "missing required key");
  ExpectError("tracing: { endpoint: \"ftp://c:4318/v1/traces\" }\n", "tracing.endpoint",
              "expected an http:// or https:// URL");
  ExpectError("tracing: { endpoint: \"https://collector/v1/traces\" }\n", "tracing.endpoint",
              "expected host:port after https://");
  ExpectError("tracing: { endpoint: \"https://c:4318/\", ca_file: /nonexistent/ca.pem }\n",
              "tracing.ca_file", "'/nonexistent/ca.pem' is not a readable file");
  ExpectError("tracing: { endpoint: \"http://collector/v1/traces\" }\n", "tracing.endpoint",
              "expected host:port");
  ExpectError("tracing: { endpoint: \"http://c:99999/\" }\n", "tracing.endpoint",
              "expected host:port");
  ExpectError("tracing: { endpoint: \"http://c:4318\", sample: 2 }\n", "tracing.sample",
              "expected a ratio");
  ExpectError("tracing: { endpoint: \"http://c:4318\", batch_size: 0 }\n", "tracing.batch_size",
              "must be 1..10000");
  ExpectError("tracing: { endpoint: \"http://c:4318\", flush_interval: 5ms }\n",
              "tracing.flush_interval", "must be between");
  ExpectError("tracing: { endpoint: \"http://c:4318\", service_name: \"\" }\n",
              "tracing.service_name", "must not be empty");
  ExpectError("tracing: { endpoint: \"http://c:4318\", exporter: zipkin }\n", "tracing.exporter",
              "exporter");
}

TEST(ObserveConfig, RunningConfigShowsAndRoundTripsThem) {
  LoadResult r = Load(
      "access_log: { path: /var/log/a.log, fields: [time, status], sample: 0.25 }\n"
      "tracing: { endpoint: \"http://127.0.0.1:4318/v1/traces\", sample: 0.01, batch_size: 7 }\n");
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  const std::string y = ToRedactedYaml(*r.config);
  EXPECT_THAT(y, HasSubstr("access_log:"));
  EXPECT_THAT(y, HasSubstr("tracing:"));
  LoadResult again = LoadString(y, "again.yaml");
  ASSERT_TRUE(again.config) << again.errors[0].ToString() << "\n" << y;
  EXPECT_EQ(again.config->access_log.path, "/var/log/a.log");
  EXPECT_EQ(again.config->access_log.fields, (std::vector<std::string>{"time", "status"}));
  EXPECT_DOUBLE_EQ(again.config->access_log.sample, 0.25);
  EXPECT_EQ(again.config->tracing.endpoint, "http://127.0.0.1:4318/v1/traces");
  EXPECT_DOUBLE_EQ(again.config->tracing.sample, 0.01);
  EXPECT_EQ(again.config->tracing.batch_size, 7u);
  EXPECT_EQ(ToRedactedYaml(*Load("").config).find("access_log"), std::string::npos);
}

}  // namespace
}  // namespace ficus::config
