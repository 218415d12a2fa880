// Better, worse or inconclusive: Mann-Whitney U on the latencies of the steps both phases ran,
// a two-proportion z-test on their errors, the bootstrap intervals of the sustainable rate; a
// change is better only when some test says so beyond its interval (and a practical effect
// size) and none says worse.
#include "prove/internal/decide.h"

#include <algorithm>
#include <vector>

#include "base/text.h"
#include "prove/internal/stats.h"

namespace ficus::prove::internal {
namespace {

std::vector<double> BinValuesMs() {
  std::vector<double> v(load::Histogram::BucketCount());
  for (size_t i = 0; i < v.size(); ++i)
    v[i] =
        static_cast<double>(load::Histogram::LowestOf(i) + load::Histogram::WidthOf(i) / 2) / 1e6;
  return v;
}

struct Compared {
  load::Histogram latency;
  uint64_t requests = 0, errors = 0;
};

Compared Merge(const Phase& p, size_t steps) {
  Compared c;
  for (size_t i = 0; i < steps && i < p.steps.size(); ++i) {
    c.latency.Merge(p.steps[i].latency);
    c.requests += p.steps[i].requests;
    c.errors += p.steps[i].errors;
  }
  return c;
}

RateInterval RateOf(const Phase& p, std::span<const double> bins, const DecideParams& params) {
  std::vector<StepSample> steps;
  for (const StepResult& s : p.steps)
    steps.push_back({s.rate, s.latency.counts(), s.requests, s.errors});
  return BootstrapRate(steps, bins, params.threshold_ms, kMaxErrorRatio, params.replicates,
                       params.confidence, params.seed);
}

advisor::ProofPhase Figures(const Phase& p, const Compared& c) {
  advisor::ProofPhase f;
  f.p50_ms = static_cast<double>(c.latency.Percentile(0.5)) / 1e6;
  f.p99_ms = static_cast<double>(c.latency.Percentile(0.99)) / 1e6;
  f.requests = c.requests;
  f.error_ratio =
      static_cast<double>(c.errors) / static_cast<double>(std::max<uint64_t>(c.requests, 1));
  f.origin_rps = p.origin_rps;
  f.origin_concurrency = p.origin_concurrency;
  return f;
}

}  // namespace

Verdict Decide(const Phase& before, const Phase& after, const DecideParams& params) {
  Verdict v;
  const size_t common = std::min(before.steps.size(), after.steps.size());
  const Compared b = Merge(before, common), a = Merge(after, common);
  v.before = Figures(before, b);
  v.after = Figures(after, a);
  std::vector<std::string> better, worse, neutral;

  // Latency: is "after" stochastically smaller (or larger) than "before"?
  const RankTest rank = MannWhitney(a.latency.counts(), b.latency.counts());
  v.p_latency = rank.p_two_sided;
  const double p99_change = v.before.p99_ms > 0 ? v.after.p99_ms / v.before.p99_ms - 1 : 0;
  const double a_lower = 1 - rank.a_greater;  // P(after < before)
  if (rank.p_a_less < params.alpha && a_lower >= 0.6 && p99_change <= -params.min_effect) {
    better.push_back(
        Format("latency lower (Mann-Whitney p=%.2g, P(after<before)=%.2f, p99 %.1f "
               "-> %.1f ms)",
               rank.p_a_less, a_lower, v.before.p99_ms, v.after.p99_ms));
  } else if (rank.p_a_greater < params.alpha && rank.a_greater >= 0.6 &&
             v.after.p99_ms > std::max(v.before.p99_ms, params.threshold_ms)) {
    worse.push_back(
        Format("latency higher and over the %.0f ms target (Mann-Whitney p=%.2g, "
               "p99 %.1f -> %.1f ms)",
               params.threshold_ms, rank.p_a_greater, v.before.p99_ms, v.after.p99_ms));
  } else {
    neutral.push_back(Format("latency: no difference that counts (p=%.2g, p99 %.1f -> %.1f ms)",
                             rank.p_two_sided, v.before.p99_ms, v.after.p99_ms));
  }

  // Errors: two-proportion z-test.
  const ProportionTest errs = TwoProportions(b.errors, b.requests, a.errors, a.requests);
  v.p_errors = errs.p_two_sided;
  if (errs.p_b_lower < params.alpha && errs.ratio_b <= errs.ratio_a * (1 - params.min_effect)) {
    better.push_back(Format("errors lower (z-test p=%.2g, %.2f%% -> %.2f%%)", errs.p_b_lower,
                            errs.ratio_a * 100, errs.ratio_b * 100));
  } else if (errs.p_b_higher < params.alpha && errs.ratio_b > errs.ratio_a + 0.005) {
    worse.push_back(Format("errors higher (z-test p=%.2g, %.2f%% -> %.2f%%)", errs.p_b_higher,
                           errs.ratio_a * 100, errs.ratio_b * 100));
  } else {
    neutral.push_back(Format("errors: no difference that counts (%.2f%% -> %.2f%%)",
                             errs.ratio_a * 100, errs.ratio_b * 100));
  }

  // The sustainable rate, each phase with its bootstrap interval.
  if (params.step_load) {
    const std::vector<double> bins = BinValuesMs();
    const RateInterval rb = RateOf(before, bins, params), ra = RateOf(after, bins, params);
    v.before.rate = rb.rate;
    v.before.rate_low = rb.low;
    v.before.rate_high = rb.high;
    v.before.rate_bounded = !before.steps.empty() && before.steps.back().ok;
    v.after.rate = ra.rate;
    v.after.rate_low = ra.low;
    v.after.rate_high = ra.high;
    v.after.rate_bounded = !after.steps.empty() && after.steps.back().ok;
    const int pct = static_cast<int>(params.confidence * 100 + 0.5);
    if (ra.low > rb.high) {
      better.push_back(
          Format("sustainable rate higher: %.0f [%.0f-%.0f] -> %s%.0f [%.0f-%.0f] "
                 "req/s (%d%% bootstrap intervals apart)",
                 rb.rate, rb.low, rb.high, v.after.rate_bounded ? ">=" : "", ra.rate, ra.low,
                 ra.high, pct));
    } else if (ra.high < rb.low) {
      worse.push_back(Format("sustainable rate lower: %.0f [%.0f-%.0f] -> %.0f [%.0f-%.0f] req/s",
                             rb.rate, rb.low, rb.high, ra.rate, ra.low, ra.high));
    } else {
      neutral.push_back(Format("sustainable rate: intervals overlap (%s%.0f -> %s%.0f req/s)",
                               v.before.rate_bounded ? ">=" : "", rb.rate,
                               v.after.rate_bounded ? ">=" : "", ra.rate));
    }
  }

  v.outcome = !worse.empty() ? "worse" : !better.empty() ? "better" : "inconclusive";
  auto join = [](const std::vector<std::string>& parts) {
    std::string s;
    for (const std::string& p : parts) s += (s.empty() ? "" : "; ") + p;
    return s;
  };
  v.why = join(!worse.empty() ? worse : !better.empty() ? better : neutral);
  if (!worse.empty() && !better.empty()) v.why += " (though " + join(better) + ")";
  return v;
}

}  // namespace ficus::prove::internal
