// Mann-Whitney U, the two-proportion z-test and the bootstrap of the sustainable rate.
#include "prove/internal/stats.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace ficus::prove::internal {
namespace {

// A step passes when its resampled p99 and error ratio are within the limits.
bool Passes(std::span<const uint64_t> counts, std::span<const double> values, double threshold,
            uint64_t requests, uint64_t errors, double max_error_ratio) {
  const double ratio =
      static_cast<double>(errors) / static_cast<double>(std::max<uint64_t>(requests, 1));
  return QuantileOf(counts, values, 0.99) <= threshold && ratio < max_error_ratio;
}

double KneeOf(const std::vector<double>& rates, const std::vector<bool>& pass) {
  double knee = 0;
  for (size_t i = 0; i < rates.size(); ++i) {
    if (!pass[i]) break;
    knee = rates[i];
  }
  return knee;
}

}  // namespace

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

RankTest MannWhitney(std::span<const uint64_t> a, std::span<const uint64_t> b) {
  RankTest t;
  for (uint64_t c : a) t.n_a += c;
  for (uint64_t c : b) t.n_b += c;
  if (t.n_a == 0 || t.n_b == 0) return t;
  // Ranks 1..N in bin order; the values of one bin share the mean of their ranks.
  double rank_sum_a = 0, ties = 0, below = 0;
  const size_t bins = std::min(a.size(), b.size());
  for (size_t i = 0; i < bins; ++i) {
    const double ca = static_cast<double>(a[i]), cb = static_cast<double>(b[i]);
    const double tied = ca + cb;
    if (tied == 0) continue;
    rank_sum_a += ca * (below + (tied + 1) / 2);
    ties += tied * tied * tied - tied;
    below += tied;
  }
  const double na = static_cast<double>(t.n_a), nb = static_cast<double>(t.n_b), n = na + nb;
  t.u = rank_sum_a - na * (na + 1) / 2;
  t.a_greater = t.u / (na * nb);
  const double mean = na * nb / 2;
  const double var = na * nb / 12 * ((n + 1) - ties / (n * (n - 1)));
  if (!(var > 0)) return t;  // every value tied: no evidence either way
  const double sd = std::sqrt(var);
  const double d = t.u - mean;
  t.z = (d > 0 ? std::max(0.0, d - 0.5) : std::min(0.0, d + 0.5)) / sd;
  t.p_two_sided = std::min(1.0, 2 * NormalCdf(-std::abs(t.z)));
  t.p_a_greater = NormalCdf(-(d - 0.5) / sd);  // large U: a above b
  t.p_a_less = NormalCdf((d + 0.5) / sd);      // small U: a below b
  return t;
}

RankTest MannWhitney(std::vector<double> a, std::vector<double> b) {
  std::vector<double> all = a;
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<uint64_t> ca(all.size()), cb(all.size());
  auto bin = [&](double v) {
    return static_cast<size_t>(std::lower_bound(all.begin(), all.end(), v) - all.begin());
  };
  for (double v : a) ++ca[bin(v)];
  for (double v : b) ++cb[bin(v)];
  return MannWhitney(ca, cb);
}

ProportionTest TwoProportions(uint64_t x_a, uint64_t n_a, uint64_t x_b, uint64_t n_b) {
  ProportionTest t;
  if (n_a == 0 || n_b == 0) return t;
  const double na = static_cast<double>(n_a), nb = static_cast<double>(n_b);
  t.ratio_a = static_cast<double>(x_a) / na;
  t.ratio_b = static_cast<double>(x_b) / nb;
  const double pooled = static_cast<double>(x_a + x_b) / (na + nb);
  const double se = std::sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb));
  if (!(se > 0)) return t;  // no failure on either side (or nothing but failures)
  t.z = (t.ratio_b - t.ratio_a) / se;
  t.p_two_sided = std::min(1.0, 2 * NormalCdf(-std::abs(t.z)));
  t.p_b_lower = NormalCdf(t.z);
  t.p_b_higher = NormalCdf(-t.z);
  return t;
}

double QuantileOf(std::span<const uint64_t> counts, std::span<const double> bin_values, double q) {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  if (n == 0) return 0;
  const uint64_t want =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(n))));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= want) return bin_values[i];
  }
  return bin_values[counts.size() - 1];
}

RateInterval BootstrapRate(const std::vector<StepSample>& steps, std::span<const double> bin_values,
                           double threshold, double max_error_ratio, int replicates,
                           double confidence, uint64_t seed) {
  RateInterval out;
  std::vector<double> rates;
  std::vector<bool> pass;
  for (const StepSample& s : steps) {
    rates.push_back(s.rate);
    pass.push_back(Passes(s.latency, bin_values, threshold, s.requests, s.errors, max_error_ratio));
  }
  out.rate = KneeOf(rates, pass);
  out.low = out.high = out.rate;
  if (steps.empty() || replicates < 1) return out;
  std::mt19937_64 rng(seed);
  std::vector<double> knees;
  knees.reserve(static_cast<size_t>(replicates));
  std::vector<uint64_t> drawn;
  for (int r = 0; r < replicates; ++r) {
    for (size_t i = 0; i < steps.size(); ++i) {
      const StepSample& s = steps[i];
      // A multinomial draw of the step's latencies: a binomial per bin over what is left.
      drawn.assign(s.latency.size(), 0);
      uint64_t left = 0;
      for (uint64_t c : s.latency) left += c;
      double mass = static_cast<double>(left);
      for (size_t b = 0; b < s.latency.size() && left > 0; ++b) {
        if (s.latency[b] == 0) continue;
        const double p = std::min(1.0, static_cast<double>(s.latency[b]) / mass);
        const uint64_t k = p >= 1.0 ? left : std::binomial_distribution<uint64_t>(left, p)(rng);
        drawn[b] = k;
        left -= k;
        mass -= static_cast<double>(s.latency[b]);
      }
      const double err = s.requests ? static_cast<double>(s.errors) / s.requests : 0;
      const uint64_t errors = err <= 0 ? 0
                              : err >= 1
                                  ? s.requests
                                  : std::binomial_distribution<uint64_t>(s.requests, err)(rng);
      pass[i] = Passes(drawn, bin_values, threshold, s.requests, errors, max_error_ratio);
    }
    knees.push_back(KneeOf(rates, pass));
  }
  std::sort(knees.begin(), knees.end());
  const double tail = (1 - confidence) / 2;
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(knees.size() - 1);
    return knees[static_cast<size_t>(std::lround(pos))];
  };
  out.low = at(tail);
  out.high = at(1 - tail);
  out.replicates = replicates;
  return out;
}

}  // namespace ficus::prove::internal
