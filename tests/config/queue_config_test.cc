// `queues[]`, route `offload:` and `jobs:`: defaults, every key, cross-references, the errors
// for bad values (file, line, field), and the redacted YAML round trip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

namespace ficus::config {
namespace {

using ::testing::HasSubstr;

LoadResult Load(const std::string& queues, const std::string& route_extra) {
  return LoadString(
      "listeners: [{ listen: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
      "routes:\n"
      "  - match: { path: /signup }\n"
      "    cluster: app\n" +
          route_extra +
          "  - match: { path_prefix: /jobs/signup/ }\n"
          "    cluster: app\n"
          "    jobs: { queue: signup }\n" +
          queues,
      "test.yaml");
}

std::string Errors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.ToString() + "\n";
  return out;
}

TEST(QueueConfig, Defaults) {
  LoadResult r = Load("queues: [{ name: signup }]\n", "    offload: { queue: signup }\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  const Queue& q = r.config->queues.at(0);
  EXPECT_EQ(q.name, "signup");
  EXPECT_EQ(q.jobs_path, "/jobs/signup");
  EXPECT_EQ(q.concurrency, 4u);
  EXPECT_EQ(q.rate, 0u);
  EXPECT_EQ(q.retry_on, (std::vector<uint16_t>{429, 502, 503, 504}));
  ASSERT_TRUE(r.config->routes[0].offload);
  EXPECT_EQ(r.config->routes[0].offload->queue, "signup");
  EXPECT_EQ(r.config->routes[0].offload->max_attempts, 5u);
  ASSERT_TRUE(r.config->routes[1].jobs);
  EXPECT_EQ(r.config->routes[1].jobs->queue, "signup");
}

TEST(QueueConfig, EveryKeyAndTheRoundTrip) {
  LoadResult r = Load(
      "queues:\n"
      "  - { name: signup, max_jobs: 10, max_bytes: 1MiB, max_body: 4KiB, concurrency: 2,\n"
      "      rate: 50/s, attempt_timeout: 2s, backoff: 100ms, max_backoff: 5s,\n"
      "      retry_on: [500, 503], retention: 1h, jobs_path: /j/s, retry_after: 3s,\n"
      "      result_body: 1KiB }\n",
      "    offload: { queue: signup, max_attempts: 3 }\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  const Queue& q = r.config->queues.at(0);
  EXPECT_EQ(q.max_jobs, 10u);
  EXPECT_EQ(q.max_bytes, 1u << 20);
  EXPECT_EQ(q.max_body, 4096u);
  EXPECT_EQ(q.concurrency, 2u);
  EXPECT_EQ(q.rate, 50u);
  EXPECT_EQ(q.attempt_timeout, Duration{2000});
  EXPECT_EQ(q.backoff, Duration{100});
  EXPECT_EQ(q.max_backoff, Duration{5000});
  EXPECT_EQ(q.retry_on, (std::vector<uint16_t>{500, 503}));
  EXPECT_EQ(q.retention, std::chrono::hours(1));
  EXPECT_EQ(q.jobs_path, "/j/s");
  EXPECT_EQ(q.retry_after, Duration{3000});
  EXPECT_EQ(q.result_body, 1024u);
  EXPECT_EQ(r.config->routes[0].offload->max_attempts, 3u);
  EXPECT_THAT(Describe(*r.config), HasSubstr("offload to queue signup"));
  LoadResult again = LoadString(ToRedactedYaml(*r.config), "again.yaml");
  ASSERT_TRUE(again.errors.empty()) << Errors(again);
  std::vector<Queue> before = r.config->queues, after = again.config->queues;
  for (Queue& q : before) q.line = 0;  // the emitted YAML has its own lines
  for (Queue& q : after) q.line = 0;
  EXPECT_EQ(after, before);
  EXPECT_EQ(again.config->routes[0].offload, r.config->routes[0].offload);
  EXPECT_EQ(again.config->routes[1].jobs, r.config->routes[1].jobs);
}

TEST(QueueConfig, ACallbackAndTheRetentionInBytes) {
  LoadResult r = Load(
      "queues:\n"
      "  - name: signup\n"
      "    retention_bytes: 64MiB\n"
      "    callback:\n"
      "      url: http://127.0.0.1:9000/hooks\n"
      "      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
      "      request_header: Callback-Url\n"
      "      allowed_origins: [http://127.0.0.1:9000, 'https://Hooks.Example.com']\n"
      "      max_attempts: 3\n"
      "      timeout: 2s\n",
      "    offload: { queue: signup }\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  const Queue& q = r.config->queues.at(0);
  EXPECT_EQ(q.retention_bytes, 64u << 20);
  ASSERT_TRUE(q.callback);
  ASSERT_TRUE(q.callback->url);
  EXPECT_EQ(q.callback->url->host, "127.0.0.1");
  EXPECT_EQ(q.callback->url->port, 9000);
  EXPECT_EQ(q.callback->url->target, "/hooks");
  EXPECT_EQ(q.callback->request_header, "callback-url");
  EXPECT_EQ(q.callback->allowed_origins,
            (std::vector<std::string>{"http://127.0.0.1:9000", "https://hooks.example.com:443"}));
  EXPECT_EQ(q.callback->max_attempts, 3u);
  EXPECT_EQ(q.callback->timeout, Duration{2000});
  // The secret never leaves: the running config shows it redacted.
  const std::string yaml = ToRedactedYaml(*r.config);
  EXPECT_THAT(yaml, ::testing::Not(HasSubstr("MfKQ9r8")));
  EXPECT_THAT(yaml, HasSubstr("secret: <redacted>"));
  EXPECT_THAT(yaml, HasSubstr("retention_bytes: 64MiB"));
}

TEST(QueueConfig, ACallbackThatCouldPostAnywhereIsRefused) {
  struct Case {
    std::string callback;
    std::string error;
  };
  const Case cases[] = {
      {"{ url: 'ftp://x/y', secret: 0123456789abcdef }", "queues[0].callback.url"},
      {"{ url: 'http://127.0.0.1:9/h' }", "queues[0].callback.secret: missing"},
      {"{ url: 'http://127.0.0.1:9/h', secret: short }", "queues[0].callback.secret"},
      {"{ url: 'http://127.0.0.1:9/h', secret: 'whsec_not base64!!!!' }",
       "queues[0].callback.secret"},
      {"{ secret: 0123456789abcdef, request_header: Callback-Url }", "allowed_origins"},
      {"{ secret: 0123456789abcdef }", "needs a url"},
      {"{ secret: 0123456789abcdef, request_header: X, allowed_origins: ['http://a/path'] }",
       "without a path"},
  };
  for (const Case& c : cases) {
    LoadResult r = Load("queues: [{ name: signup, callback: " + c.callback + " }]\n",
                        "    offload: { queue: signup }\n");
    ASSERT_FALSE(r.errors.empty()) << c.callback;
    EXPECT_THAT(Errors(r), HasSubstr(c.error)) << c.callback;
  }
}

TEST(QueueConfig, AnUndeclaredQueueIsAnErrorAtTheRoutesKey) {
  LoadResult r = Load("queues: [{ name: other }]\n", "    offload: { queue: signup }\n");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_THAT(Errors(r), HasSubstr("test.yaml:6:"));
  EXPECT_THAT(Errors(r), HasSubstr("routes[0].offload.queue: queue 'signup' is not declared"));
  EXPECT_THAT(Errors(r), HasSubstr("routes[1].jobs.queue"));
}

TEST(QueueConfig, BadValuesNameTheirField) {
  struct Case {
    std::string queue;
    std::string field;
  };
  const Case cases[] = {
      {"{ name: signup, concurrency: 0 }", "queues[0].concurrency"},
      {"{ name: signup, rate: fast }", "queues[0].rate"},
      {"{ name: signup, max_body: 1TiB }", "queues[0].max_body"},
      {"{ name: signup, retry_on: [200] }", "queues[0].retry_on[0]"},
      {"{ name: signup, jobs_path: jobs }", "queues[0].jobs_path"},
      {"{ name: signup, jobs_path: /jobs/ }", "queues[0].jobs_path"},
      {"{ name: signup, backoff: 10s, max_backoff: 1s }", "queues[0].max_backoff"},
      {"{ name: signup, colour: blue }", "queues[0]"},
      {"{ max_jobs: 3 }", "queues[0].name"},
  };
  for (const Case& c : cases) {
    LoadResult r = Load("queues: [" + c.queue + "]\n", "    offload: { queue: signup }\n");
    ASSERT_FALSE(r.errors.empty()) << c.queue;
    EXPECT_THAT(Errors(r), HasSubstr(c.field)) << c.queue;
  }
  LoadResult dup = Load("queues: [{ name: signup }, { name: signup }]\n", "");
  EXPECT_THAT(Errors(dup), HasSubstr("duplicate queue name"));
  LoadResult attempts =
      Load("queues: [{ name: signup }]\n", "    offload: { queue: signup, max_attempts: 0 }\n");
  EXPECT_THAT(Errors(attempts), HasSubstr("routes[0].offload.max_attempts"));
  LoadResult both = Load("queues: [{ name: signup }]\n",
                         "    offload: { queue: signup }\n    jobs: { queue: signup }\n");
  EXPECT_THAT(Errors(both), HasSubstr("cannot both offload"));
}

}  // namespace
}  // namespace ficus::config
