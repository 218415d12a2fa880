// `ficus prove` results in the report: the JSON a proof event carries reads back the same, and
// every format shows the before/after section (and none when there is no proof).
#include "advisor/internal/proof.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "advisor/advisor.h"

namespace ficus::advisor {
namespace {

Proof Sample() {
  Proof p;
  p.ts_ms = 1'700'000'000'000;
  p.finding = "cache:catalog";
  p.route = "catalog";
  p.load = "step load of route catalog, 4 x 2s up to 120 req/s";
  p.change = "routes:\n  - name: catalog\n    cache: { ttl: 30s }\n";
  p.threshold_ms = 250;
  p.before = {120, 120, 120, true, 10.5, 50.7, 0.001, 1200, 72, 3.5};
  p.after = {120, 120, 120, true, 0.4, 5.2, 0, 1200, 2, 0.1};
  p.p_latency = 1e-100;
  p.p_errors = 0.3;
  p.outcome = "better";
  p.decision = "kept";
  p.why = "latency lower (Mann-Whitney p=2.7e-178, p99 50.7 -> 5.2 ms) <&>";
  return p;
}

TEST(ProofTest, JsonRoundTrip) {
  const Proof p = Sample();
  std::optional<Proof> q = ParseProof(ProofJson(p));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->ts_ms, p.ts_ms);
  EXPECT_EQ(q->finding, p.finding);
  EXPECT_EQ(q->change, p.change);
  EXPECT_EQ(q->why, p.why);
  EXPECT_EQ(q->decision, "kept");
  EXPECT_DOUBLE_EQ(q->before.p99_ms, 50.7);
  EXPECT_DOUBLE_EQ(q->after.origin_rps, 2);
  EXPECT_TRUE(q->after.rate_bounded);
  EXPECT_FALSE(ParseProof("{}"));
  EXPECT_FALSE(ParseProof("not json"));
}

TEST(ProofTest, EveryFormatHasTheSection) {
  Report r;
  r.period = "15m";
  EXPECT_EQ(FormatText(r).find("Proofs"), std::string::npos);
  EXPECT_NE(FormatJson(r).find("\"proofs\":[]"), std::string::npos);
  r.proofs.push_back(Sample());
  EXPECT_NE(FormatText(r).find("cache:catalog"), std::string::npos);
  EXPECT_NE(FormatMarkdown(r).find("## Proofs: before and after"), std::string::npos);
  EXPECT_NE(FormatJson(r).find("\"finding\":\"cache:catalog\""), std::string::npos);
  const std::string html = FormatHtml(r);
  EXPECT_NE(html.find("id=\"proofs\""), std::string::npos);
  EXPECT_NE(html.find("id=\"chart-proofs\""), std::string::npos);
  EXPECT_NE(html.find("&lt;&amp;&gt;"), std::string::npos);  // escaped
  EXPECT_EQ(html.find("<&>"), std::string::npos);
}

TEST(ProofTest, ReadBackFromTheTimeline) {
  const std::string dir = ::testing::TempDir() + "/proof_test_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  telemetry::StoreOptions so;
  so.path = dir + "/ficus.db";
  so.durable = false;
  telemetry::Store store(so);
  telemetry::Event e;
  e.ts_ms = 1000;
  e.kind = internal::kProofEvent;
  e.note = ProofJson(Sample());
  store.AppendEvent(e);
  e.ts_ms = 2000;
  e.note = "garbage";  // skipped
  store.AppendEvent(e);
  std::vector<Proof> got = internal::ReadProofs(store, 0, 10'000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].finding, "cache:catalog");
  EXPECT_TRUE(internal::ReadProofs(store, 5000, 10'000).empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ficus::advisor
