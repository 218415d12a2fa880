// Options -> Plan: what each option becomes, and the message of each one that is wrong (no
// traffic: PlanFrom never connects).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "load/internal/capture.h"
#include "load/load.h"

namespace ficus::load {
namespace {

Options UrlOptions() {
  Options o;
  o.url = "http://127.0.0.1:8080/api?x=1";
  o.rate = 100;
  o.duration = "2s";
  return o;
}

TEST(PlanTest, AUrlRunSerializesItsRequestOnce) {
  Options o = UrlOptions();
  o.method = "POST";
  o.headers = {"X-Api-Key:  k1"};
  o.body = "{}";
  o.connections = 3;
  o.threads = 8;
  Outcome<Plan> plan = PlanFrom(o);
  ASSERT_TRUE(plan) << plan.message();
  EXPECT_EQ(plan->request,
            "POST /api?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: ficus-load\r\n"
            "X-Api-Key: k1\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(plan->url.port, 8080);
  EXPECT_EQ(plan->duration_ns, 2'000'000'000);
  EXPECT_EQ(plan->timeout_ns, 10'000'000'000);  // the default
  EXPECT_EQ(plan->threads, 3);                  // never more threads than connections
  EXPECT_DOUBLE_EQ(plan->profile.total(), 200);
  EXPECT_STREQ(plan->who, "ficus load");
}

TEST(PlanTest, StagesSetTheLength) {
  Options o = UrlOptions();
  o.rate = 0;
  o.duration.clear();
  o.stages = {"1s:constant:10", "2s:ramp:10..20"};
  Outcome<Plan> plan = PlanFrom(o);
  ASSERT_TRUE(plan) << plan.message();
  EXPECT_EQ(plan->duration_ns, 3'000'000'000);
  EXPECT_EQ(plan->profile_text, "1s:constant:10 2s:ramp:10..20");
}

TEST(PlanTest, EachBadOptionSaysWhich) {
  auto message = [](Options o) { return PlanFrom(o).message(); };
  Options o = UrlOptions();
  o.rate = 0;
  EXPECT_NE(message(o).find("--rate must be > 0"), std::string::npos);
  o = UrlOptions();
  o.profile = "constant:5";
  EXPECT_EQ(message(o), "give one of --rate, --profile and --stage");
  o = UrlOptions();
  o.closed = true;
  EXPECT_NE(message(o).find("--closed sends as fast"), std::string::npos);
  o = UrlOptions();
  o.duration = "soon";
  EXPECT_EQ(message(o).rfind("--duration: ", 0), 0u) << message(o);
  o = UrlOptions();
  o.method = "G T";
  EXPECT_EQ(message(o), "--method 'G T' is not an HTTP token");
  o = UrlOptions();
  o.headers = {"no colon"};
  EXPECT_EQ(message(o), "-H 'no colon': expected 'Name: value'");
  o = UrlOptions();
  o.target = "http://127.0.0.1:1";
  EXPECT_EQ(message(o), "--target is for a scenario file or a replay");
  o = UrlOptions();
  o.rate = 0.1;
  o.duration = "1s";
  EXPECT_EQ(message(o), "the load profile sends no requests (its rates are all 0 or too low)");
  o = UrlOptions();
  o.replay = "capture.jsonl";
  EXPECT_EQ(message(o), "--target http://HOST:PORT is required");
}

TEST(PlanTest, AScenarioFillsWhatTheCommandLineLeftUnset) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("plan_test_" + std::to_string(::getpid()) + ".yaml"))
                               .string();
  {
    std::ofstream(path) << "target: http://127.0.0.1:9000\nrate: 50\nduration: 4s\n"
                           "connections: 5\nthresholds: [\"p99<1s\"]\n"
                           "requests:\n  - { path: /a }\n";
  }
  Options o;
  o.url = path;
  o.thresholds = {"errors<1%"};
  Outcome<Plan> plan = PlanFrom(o);
  ASSERT_TRUE(plan) << plan.message();
  EXPECT_TRUE(plan->scenario);
  EXPECT_TRUE(plan->request.empty());  // built per request from the templates
  EXPECT_EQ(plan->url.port, 9000);
  EXPECT_EQ(plan->connections, 5);
  EXPECT_EQ(plan->duration_ns, 4'000'000'000);
  ASSERT_EQ(plan->thresholds.size(), 2u);
  EXPECT_EQ(plan->thresholds[0].text, "p99<1s");  // the file's first
  o.rate = 10;                                    // the command line wins
  plan = PlanFrom(o);
  ASSERT_TRUE(plan) << plan.message();
  EXPECT_DOUBLE_EQ(plan->profile.total(), 40);
  o.method = "POST";
  EXPECT_NE(PlanFrom(o).message().find("a scenario sets them per request"), std::string::npos);
  std::filesystem::remove(path);
}

// ficus's own load: the registered key goes on every request of a URL run and of a replayed
// capture (a captured, stale key is dropped); a scenario's requests get it from the builder.
TEST(PlanTest, TheSyntheticKeyGoesOnEveryRequest) {
  const std::string key = "0123456789abcdef0123456789abcdef";
  Options o = UrlOptions();
  o.synthetic_key = key;
  Outcome<Plan> plan = PlanFrom(o);
  ASSERT_TRUE(plan) << plan.message();
  EXPECT_NE(plan->request.find("\r\nX-Ficus-Synthetic: " + key + "\r\n"), std::string::npos);
  EXPECT_EQ(plan->extra_headers, "X-Ficus-Synthetic: " + key + "\r\n");
  o.synthetic_key = "short";
  EXPECT_EQ(PlanFrom(o).message(), "the synthetic key must be 32 hex digits");

  const std::string path = (std::filesystem::temp_directory_path() /
                            ("synthetic_capture_" + std::to_string(::getpid()) + ".jsonl"))
                               .string();
  std::ofstream(path) << R"({"t":0,"method":"GET","target":"/a","headers":[["Host","h"],)"
                      << R"(["X-Ficus-Synthetic","ffffffffffffffffffffffffffffffff"]]})"
                      << "\n";
  Options r;
  r.replay = path;
  r.target = "http://127.0.0.1:9000";
  r.synthetic_key = key;
  plan = PlanFrom(r);
  ASSERT_TRUE(plan) << plan.message();
  ASSERT_EQ(plan->capture->requests.size(), 1u);
  const std::string& bytes = plan->capture->requests[0].bytes;
  EXPECT_NE(bytes.find("X-Ficus-Synthetic: " + key), std::string::npos) << bytes;
  EXPECT_EQ(bytes.find("ffffffff"), std::string::npos) << bytes;
  std::filesystem::remove(path);
}

TEST(PlanTest, SetConstantRateReplacesTheLoad) {
  Outcome<Plan> plan = PlanFrom(UrlOptions());
  ASSERT_TRUE(plan);
  ASSERT_TRUE(plan->SetConstantRate(40, 500'000'000));
  EXPECT_EQ(plan->duration_ns, 500'000'000);
  EXPECT_DOUBLE_EQ(plan->profile.total(), 20);
  Outcome<> none = plan->SetConstantRate(1, 100'000'000);  // 0.1 requests
  EXPECT_FALSE(none);
  EXPECT_EQ(plan->duration_ns, 500'000'000);  // unchanged
}

}  // namespace
}  // namespace ficus::load
