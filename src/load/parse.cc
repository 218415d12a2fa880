// The command line's values: target URLs, durations and thresholds (and how a summary meets
// a threshold).
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "base/duration.h"
#include "load/load.h"

namespace ficus::load {

std::optional<Url> ParseUrl(std::string_view text, std::string* error) {
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, kScheme.size()) != kScheme) {
    *error = "URL must start with http:// (https is not supported)";
    return std::nullopt;
  }
  std::string_view rest = text.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.empty()) {
    *error = "URL has no host";
    return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) {
    *error = "URL must not contain user information";
    return std::nullopt;
  }
  Url url;
  url.host_header = std::string(authority);
  std::string_view host, port;
  if (authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "URL has an unterminated IPv6 literal";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *error = "URL has garbage after the IPv6 literal";
        return std::nullopt;
      }
      port = after.substr(1);
      if (port.empty()) {
        *error = "URL has an empty port";
        return std::nullopt;
      }
    }
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) {
        *error = "URL has an empty port";
        return std::nullopt;
      }
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      *error = std::string("URL has an invalid port '").append(port).append("'");
      return std::nullopt;
    }
    url.port = static_cast<uint16_t>(value);
  }
  if (host == "localhost") {
    url.ip = "127.0.0.1";
  } else {
    std::string h(host);
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(AF_INET, h.c_str(), buf) != 1 && inet_pton(AF_INET6, h.c_str(), buf) != 1) {
      *error = std::string("URL host '")
                   .append(host)
                   .append("' must be an IP address or localhost (no DNS)");
      return std::nullopt;
    }
    url.ip = h;
  }
  if (target.empty()) {
    url.target = "/";
  } else if (target[0] == '?') {
    url.target = std::string("/").append(target);
  } else {
    url.target = std::string(target);
  }
  if (size_t hash = url.target.find('#'); hash != std::string::npos) url.target.resize(hash);
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      *error = "URL path contains whitespace or control characters";
      return std::nullopt;
    }
  }
  return url;
}

std::optional<int64_t> ParseDuration(std::string_view text, std::string* error) {
  return ParseDurationNs(text, error);
}

// ---- thresholds ------------------------------------------------------------------------------

std::optional<Threshold> ParseThreshold(std::string_view text, std::string* error) {
  Threshold t;
  t.text = std::string(text);
  std::string s;
  for (char c : text)
    if (c != ' ') s.push_back(c);
  size_t op = s.find_first_of("<>");
  if (op == std::string::npos || op == 0) {
    *error =
        std::string("threshold '").append(text).append("': expected METRIC<VALUE or METRIC>VALUE");
    return std::nullopt;
  }
  std::string metric = s.substr(0, op);
  bool or_equal = op + 1 < s.size() && s[op + 1] == '=';
  t.op = s[op] == '<' ? (or_equal ? Threshold::Op::kLessEqual : Threshold::Op::kLess)
                      : (or_equal ? Threshold::Op::kGreaterEqual : Threshold::Op::kGreater);
  std::string value = s.substr(op + (or_equal ? 2 : 1));
  auto bad_value = [&](const char* expected) {
    *error = std::string("threshold '").append(text).append("': ").append(expected);
    return std::nullopt;
  };
  auto number = [](const std::string& v, double* out) {
    if (v.empty()) return false;
    char* end = nullptr;
    *out = std::strtod(v.c_str(), &end);
    return end == v.c_str() + v.size() && std::isfinite(*out) && *out >= 0;
  };
  static const std::pair<const char*, double> kPercentiles[] = {
      {"p50", 0.5},    {"p75", 0.75},    {"p90", 0.9},      {"p95", 0.95},     {"p99", 0.99},
      {"p999", 0.999}, {"p99.9", 0.999}, {"p9999", 0.9999}, {"p99.99", 0.9999}};
  bool found = false;
  for (const auto& [name, q] : kPercentiles) {
    if (metric == name) {
      t.metric = Threshold::Metric::kPercentile;
      t.quantile = q;
      found = true;
    }
  }
  if (!found) {
    if (metric == "max")
      t.metric = Threshold::Metric::kMax;
    else if (metric == "mean")
      t.metric = Threshold::Metric::kMean;
    else if (metric == "errors")
      t.metric = Threshold::Metric::kErrors;
    else if (metric == "dropped")
      t.metric = Threshold::Metric::kDropped;
    else if (metric == "rate")
      t.metric = Threshold::Metric::kRate;
    else {
      *error = std::string("threshold '")
                   .append(text)
                   .append("': unknown metric '")
                   .append(metric)
                   .append("' (p50 p75 p90 p95 p99 p999 p9999 max mean errors dropped rate)");
      return std::nullopt;
    }
  }
  switch (t.metric) {
    case Threshold::Metric::kPercentile:
    case Threshold::Metric::kMax:
    case Threshold::Metric::kMean: {
      double plain;
      if (number(value, &plain)) return bad_value("a latency needs a unit (e.g. 300ms, 1s)");
      auto ns = ParseDuration(value);
      if (!ns) return bad_value("expected a duration such as 300ms");
      t.value = static_cast<double>(*ns);
      break;
    }
    case Threshold::Metric::kErrors:
    case Threshold::Metric::kDropped: {
      double v;
      if (!value.empty() && value.back() == '%') {
        if (!number(value.substr(0, value.size() - 1), &v) || v > 100)
          return bad_value("expected a percentage such as 1%");
        t.value = v / 100;
      } else {
        if (!number(value, &v) || v > 1)
          return bad_value("expected a percentage (1%) or a ratio in [0, 1]");
        t.value = v;
      }
      break;
    }
    case Threshold::Metric::kRate: {
      double v;
      if (!number(value, &v)) return bad_value("expected requests per second");
      t.value = v;
      break;
    }
  }
  return t;
}

std::pair<double, bool> Evaluate(const Threshold& t, const Summary& s) {
  double v = 0;
  switch (t.metric) {
    case Threshold::Metric::kPercentile:
      v = static_cast<double>(s.stats.corrected.Percentile(t.quantile));
      break;
    case Threshold::Metric::kMax:
      v = static_cast<double>(s.stats.corrected.max());
      break;
    case Threshold::Metric::kMean:
      v = s.stats.corrected.mean();
      break;
    case Threshold::Metric::kErrors:
      v = s.error_ratio();
      break;
    case Threshold::Metric::kDropped:
      v = s.dropped_ratio();
      break;
    case Threshold::Metric::kRate:
      v = s.achieved_rate;
      break;
  }
  bool ok = false;
  switch (t.op) {
    case Threshold::Op::kLess:
      ok = v < t.value;
      break;
    case Threshold::Op::kLessEqual:
      ok = v <= t.value;
      break;
    case Threshold::Op::kGreater:
      ok = v > t.value;
      break;
    case Threshold::Op::kGreaterEqual:
      ok = v >= t.value;
      break;
  }
  return {v, ok};
}

}  // namespace ficus::load
