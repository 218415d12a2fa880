// Histogram, parsing (URL, durations, thresholds), the scheduler's timeline and the reports.
#include <arpa/inet.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/duration.h"
#include "base/json.h"
#include "load/load.h"

namespace ficus::load {

// ---- parsing ---------------------------------------------------------------------------------

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

// ---- histogram -------------------------------------------------------------------------------

size_t Histogram::BucketCount() { return IndexOf(kMaxNanos) + 1; }

size_t Histogram::IndexOf(int64_t v) {
  if (v < 2 * kSubBuckets) return static_cast<size_t>(std::max<int64_t>(v, 0));
  int msb = 63 - std::countl_zero(static_cast<uint64_t>(v));
  int shift = msb - kSubBits;
  return static_cast<size_t>((shift + 1) * kSubBuckets + ((v >> shift) - kSubBuckets));
}

int64_t Histogram::LowestOf(size_t index) {
  int64_t i = static_cast<int64_t>(index);
  if (i < 2 * kSubBuckets) return i;
  int64_t shift = i / kSubBuckets - 1;
  return (i % kSubBuckets + kSubBuckets) << shift;
}

int64_t Histogram::WidthOf(size_t index) {
  int64_t i = static_cast<int64_t>(index);
  if (i < 2 * kSubBuckets) return 1;
  return int64_t{1} << (i / kSubBuckets - 1);
}

Histogram::Histogram() : counts_(BucketCount(), 0) {}

void Histogram::Record(int64_t nanos) {
  int64_t v = std::clamp(nanos, kMinNanos, kMaxNanos);
  ++counts_[IndexOf(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += static_cast<double>(v);
}

void Histogram::Reset() {
  if (count_ == 0) return;
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = INT64_MAX;
  max_ = 0;
  sum_ = 0;
}

void Histogram::Merge(const Histogram& o) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  sum_ += o.sum_;
}

int64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1) return max_;
  uint64_t rank = static_cast<uint64_t>(std::ceil(std::max(q, 0.0) * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      int64_t mid = LowestOf(i) + WidthOf(i) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

// ---- stats -----------------------------------------------------------------------------------

std::string_view ErrorTypeName(ErrorType t) {
  switch (t) {
    case ErrorType::kConnect:
      return "connect";
    case ErrorType::kTimeout:
      return "timeout";
    case ErrorType::kReset:
      return "reset";
    case ErrorType::kProtocol:
      return "protocol";
  }
  return "unknown";
}

void Stats::Merge(const Stats& o) {
  scheduled += o.scheduled;
  sent += o.sent;
  completed += o.completed;
  dropped += o.dropped;
  late += o.late;
  aborted += o.aborted;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  for (size_t i = 0; i < status.size(); ++i) status[i] += o.status[i];
  if (sent_per_second.size() < o.sent_per_second.size())
    sent_per_second.resize(o.sent_per_second.size());
  for (size_t i = 0; i < o.sent_per_second.size(); ++i) sent_per_second[i] += o.sent_per_second[i];
  corrected.Merge(o.corrected);
  uncorrected.Merge(o.uncorrected);
}

uint64_t Stats::error_count() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  return n;
}

uint64_t Stats::status_at_least(int code) const {
  uint64_t n = 0;
  for (size_t i = static_cast<size_t>(code); i < status.size(); ++i) n += status[i];
  return n;
}

double Summary::error_ratio() const {
  uint64_t ended = stats.completed + stats.error_count();
  if (ended == 0) return 0;
  return static_cast<double>(stats.error_count() + stats.status_at_least(400)) /
         static_cast<double>(ended);
}

double Summary::dropped_ratio() const {
  if (stats.scheduled == 0) return 0;
  return static_cast<double>(stats.dropped) / static_cast<double>(stats.scheduled);
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

// ---- profiles --------------------------------------------------------------------------------

namespace {

// Expected requests in the first `t_ns` of a segment (0 <= t_ns <= its duration).
long double SegmentCount(const Segment& s, int64_t t_ns) {
  long double t = static_cast<long double>(t_ns) / 1e9L;
  long double d = static_cast<long double>(s.duration_ns) / 1e9L;
  long double b = d > 0 ? (static_cast<long double>(s.to) - s.from) / d : 0;
  return static_cast<long double>(s.from) * t + b * t * t / 2;
}

}  // namespace

Profile::Profile(std::vector<Segment> segments) : segments_(std::move(segments)) {
  for (const Segment& s : segments_) {
    start_ns_.push_back(duration_ns_);
    start_count_.push_back(total_);
    duration_ns_ += s.duration_ns;
    total_ += SegmentCount(s, s.duration_ns);
  }
}

Profile Profile::Constant(double rate, int64_t duration_ns) {
  return Profile({Segment{duration_ns, rate, rate}});
}

double Profile::peak_rate() const {
  double peak = 0;
  for (const Segment& s : segments_) peak = std::max({peak, s.from, s.to});
  return peak;
}

bool Profile::constant() const {
  for (const Segment& s : segments_)
    if (s.from != segments_[0].from || s.to != segments_[0].from) return false;
  return true;
}

double Profile::RateAt(int64_t t_ns) const {
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    int64_t local = t_ns - start_ns_[i];
    if (local < 0 || local >= s.duration_ns) continue;
    return s.from +
           (s.to - s.from) * static_cast<double>(local) / static_cast<double>(s.duration_ns);
  }
  return 0;
}

double Profile::CountAt(int64_t t_ns) const {
  if (t_ns <= 0) return 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    int64_t local = t_ns - start_ns_[i];
    if (local <= segments_[i].duration_ns)
      return static_cast<double>(start_count_[i] + SegmentCount(segments_[i], local));
  }
  return static_cast<double>(total_);
}

int64_t Profile::TimeOf(uint64_t n) const {
  const long double target = static_cast<long double>(n);
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    long double end_count = i + 1 < segments_.size() ? start_count_[i + 1] : total_;
    if (!(target < end_count)) continue;  // also skips segments that send nothing
    // Solve a t + b t^2 / 2 = m for the local time t: t = 2m / (a + sqrt(a^2 + 2bm)), stable
    // for b = 0 (t = m/a), a = 0 (t = sqrt(2m/b)) and b < 0 (a ramp down).
    long double m = std::max<long double>(target - start_count_[i], 0);
    long double a = s.from;
    long double d = static_cast<long double>(s.duration_ns) / 1e9L;
    long double b = (static_cast<long double>(s.to) - s.from) / d;
    long double t = 0;
    if (m > 0) {
      long double disc = std::max<long double>(a * a + 2 * b * m, 0);
      t = 2 * m / (a + std::sqrt(disc));
    }
    int64_t local =
        static_cast<int64_t>(std::min(t * 1e9L, static_cast<long double>(s.duration_ns)));
    return start_ns_[i] + local;
  }
  return duration_ns_;
}

namespace {

bool ParseRate(std::string_view text, double* out) {
  std::string v(text);
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0]))) return false;  // not .5
  char* end = nullptr;
  *out = std::strtod(v.c_str(), &end);
  return end == v.c_str() + v.size() && std::isfinite(*out) && *out >= 0 && *out <= 1e9;
}

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    size_t i = text.find(sep);
    parts.push_back(text.substr(0, i));
    if (i == std::string_view::npos) return parts;
    text.remove_prefix(i + 1);
  }
}

}  // namespace

std::optional<Profile> ParseProfile(std::string_view text, int64_t duration_ns,
                                    std::string* error) {
  auto fail = [&](std::string_view why) {
    *error = std::string("profile '").append(text).append("': ").append(why);
    return std::nullopt;
  };
  if (duration_ns <= 0) return fail("the duration must be positive");
  size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return fail(
        "expected KIND:ARGS (constant:R, ramp:A..B, steps:R1,R2,.., "
        "spike:base=R,peak=R,at=DUR,for=DUR)");
  std::string_view kind = text.substr(0, colon);
  std::string_view args = text.substr(colon + 1);
  std::vector<Segment> segments;
  if (kind == "constant") {
    double r;
    if (!ParseRate(args, &r)) return fail("expected constant:RATE (requests per second)");
    segments.push_back({duration_ns, r, r});
  } else if (kind == "ramp") {
    size_t dots = args.find("..");
    double a, b;
    if (dots == std::string_view::npos || !ParseRate(args.substr(0, dots), &a) ||
        !ParseRate(args.substr(dots + 2), &b))
      return fail("expected ramp:FROM..TO (requests per second)");
    segments.push_back({duration_ns, a, b});
  } else if (kind == "steps") {
    std::vector<std::string_view> parts = Split(args, ',');
    if (static_cast<int64_t>(parts.size()) > duration_ns)
      return fail("more steps than nanoseconds in the duration");
    int64_t used = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      double r;
      if (!ParseRate(parts[i], &r)) return fail("expected steps:R1,R2,... (requests per second)");
      // Equal steps; the boundaries are rounded so the steps add up to the duration exactly.
      int64_t end = static_cast<int64_t>(static_cast<long double>(duration_ns) * (i + 1) /
                                         static_cast<long double>(parts.size()));
      segments.push_back({end - used, r, r});
      used = end;
    }
  } else if (kind == "spike") {
    std::optional<double> base, peak;
    std::optional<int64_t> at, length;
    for (std::string_view part : Split(args, ',')) {
      size_t eq = part.find('=');
      std::string_view key = part.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? "" : part.substr(eq + 1);
      double r;
      if ((key == "base" || key == "peak") && eq != std::string_view::npos) {
        if (!ParseRate(value, &r))
          return fail(std::string(key).append(" must be a rate (requests per second)"));
        (key == "base" ? base : peak) = r;
      } else if ((key == "at" || key == "for") && eq != std::string_view::npos) {
        auto ns = ParseDuration(value);
        if (!ns) return fail(std::string(key).append(" must be a duration (e.g. 5s)"));
        (key == "at" ? at : length) = *ns;
      } else {
        return fail("expected spike:base=RATE,peak=RATE,at=DUR,for=DUR");
      }
    }
    if (!base || !peak || !at || !length)
      return fail("expected spike:base=RATE,peak=RATE,at=DUR,for=DUR (all four)");
    if (*length <= 0) return fail("for must be positive");
    if (*at + *length > duration_ns) return fail("the spike ends after the duration");
    if (*at > 0) segments.push_back({*at, *base, *base});
    segments.push_back({*length, *peak, *peak});
    if (duration_ns - *at - *length > 0)
      segments.push_back({duration_ns - *at - *length, *base, *base});
  } else {
    return fail("unknown kind (constant, ramp, steps, spike)");
  }
  return Profile(std::move(segments));
}

std::optional<Profile> ParseStages(const std::vector<std::string>& stages, std::string* error) {
  std::vector<Segment> segments;
  int64_t total = 0;
  for (const std::string& stage : stages) {
    size_t colon = stage.find(':');
    auto duration =
        colon == std::string::npos ? std::nullopt : ParseDuration(stage.substr(0, colon));
    if (!duration || *duration <= 0) {
      *error = std::string("stage '").append(stage).append(
          "': expected DURATION:PROFILE (e.g. 10s:ramp:0..500)");
      return std::nullopt;
    }
    if (*duration > INT64_MAX / 4 - total) {
      *error = std::string("stage '").append(stage).append("': the stages are too long");
      return std::nullopt;
    }
    auto p = ParseProfile(std::string_view(stage).substr(colon + 1), *duration, error);
    if (!p) {
      *error = std::string("stage '").append(stage).append("': ").append(*error);
      return std::nullopt;
    }
    segments.insert(segments.end(), p->segments().begin(), p->segments().end());
    total += *duration;
  }
  if (segments.empty()) {
    *error = "no stages";
    return std::nullopt;
  }
  return Profile(std::move(segments));
}

// ---- scheduler -------------------------------------------------------------------------------

int64_t IntendedTime(int64_t start_ns, const Profile& profile, int threads, int thread,
                     uint64_t k) {
  return start_ns +
         profile.TimeOf(k * static_cast<uint64_t>(threads) + static_cast<uint64_t>(thread));
}

int64_t IntendedTime(int64_t start_ns, double rate, int threads, int thread, uint64_t k) {
  long double slot = static_cast<long double>(k) * threads + thread;
  return start_ns + static_cast<int64_t>(slot * 1e9L / static_cast<long double>(rate));
}

// ---- reports ---------------------------------------------------------------------------------

namespace {

std::string Format(const char* fmt, auto... args) {
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

std::string HumanDuration(double ns) {
  if (ns < 1e6) return Format("%.1fus", ns / 1e3);
  if (ns < 1e9) return Format("%.2fms", ns / 1e6);
  return Format("%.3fs", ns / 1e9);
}

std::string ThresholdValue(const Threshold& t, double v) {
  switch (t.metric) {
    case Threshold::Metric::kErrors:
    case Threshold::Metric::kDropped:
      return Format("%.3f%%", v * 100);
    case Threshold::Metric::kRate:
      return Format("%.1f/s", v);
    default:
      return HumanDuration(v);
  }
}

constexpr std::pair<const char*, double> kReported[] = {
    {"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"p99.99", 0.9999}};

}  // namespace

std::string FormatText(const Summary& s, const std::vector<Threshold>& thresholds) {
  const Stats& st = s.stats;
  std::string out;
  out += Format("mode         %s\n", s.closed ? "closed (as wrk: latency from actual send)"
                                              : "open (latency from intended send time)");
  out += Format("requests     %llu sent, %llu completed, %llu errors",
                static_cast<unsigned long long>(st.sent),
                static_cast<unsigned long long>(st.completed),
                static_cast<unsigned long long>(st.error_count()));
  if (!s.closed)
    out += Format(", %llu dropped, %llu late", static_cast<unsigned long long>(st.dropped),
                  static_cast<unsigned long long>(st.late));
  if (st.aborted)
    out += Format(", %llu in flight at end", static_cast<unsigned long long>(st.aborted));
  out += "\n";
  if (s.closed)
    out += Format("rate         %.1f req/s over %.3fs\n", s.achieved_rate, s.elapsed_s);
  else
    out += Format("rate         %.1f req/s achieved, %.1f target, over %.3fs\n", s.achieved_rate,
                  s.target_rate, s.elapsed_s);
  if (!s.profile.empty()) out += Format("profile      %s\n", s.profile.c_str());
  if (!s.per_second.empty() && s.per_second.size() <= 120) {  // longer runs: see --json
    out += "per second  ";
    for (size_t i = 0; i < s.per_second.size(); ++i) {
      if (i > 0 && i % 8 == 0) out += "\n            ";
      if (s.closed)
        out += Format(" %llu", static_cast<unsigned long long>(s.per_second[i].achieved));
      else
        out += Format(" %llu/%.0f", static_cast<unsigned long long>(s.per_second[i].achieved),
                      s.per_second[i].target);
    }
    out += s.closed ? " (sent)\n" : " (sent/target)\n";
  }
  out += "latency      ";
  for (const auto& [name, q] : kReported) out += Format("%10s", name);
  out += Format("%10s%10s\n", "max", "mean");
  auto row = [&](const char* label, const Histogram& h) {
    out += Format("  %-11s", label);
    for (const auto& [name, q] : kReported)
      out += Format("%10s", HumanDuration(static_cast<double>(h.Percentile(q))).c_str());
    out += Format("%10s%10s\n", HumanDuration(static_cast<double>(h.max())).c_str(),
                  HumanDuration(h.mean()).c_str());
  };
  row(s.closed ? "measured" : "corrected", st.corrected);
  if (!s.closed) row("uncorrected", st.uncorrected);
  out += "status      ";
  bool any = false;
  for (size_t i = 0; i < st.status.size(); ++i) {
    if (st.status[i]) {
      out += Format(" %zu=%llu", i, static_cast<unsigned long long>(st.status[i]));
      any = true;
    }
  }
  out += any ? "\n" : " none\n";
  out += "errors      ";
  for (size_t i = 0; i < kErrorTypes; ++i)
    out += Format(" %s=%llu", std::string(ErrorTypeName(static_cast<ErrorType>(i))).c_str(),
                  static_cast<unsigned long long>(st.errors[i]));
  out += "\n";
  out += Format("bytes        in %llu, out %llu\n", static_cast<unsigned long long>(st.bytes_in),
                static_cast<unsigned long long>(st.bytes_out));
  for (const Threshold& t : thresholds) {
    auto [v, ok] = Evaluate(t, s);
    out += Format("threshold    %-20s %s (measured %s)\n", t.text.c_str(), ok ? "ok" : "FAILED",
                  ThresholdValue(t, v).c_str());
  }
  return out;
}

std::string FormatJson(const Summary& s, const std::vector<Threshold>& thresholds) {
  const Stats& st = s.stats;
  auto u = [](uint64_t v) { return std::to_string(v); };
  auto ms = [](double ns) { return Format("%.6f", ns / 1e6); };
  auto latency = [&](const Histogram& h) {
    std::string o = "{";
    for (const auto& [name, q] : kReported)
      o.append("\"")
          .append(name)
          .append("\":")
          .append(ms(static_cast<double>(h.Percentile(q))))
          .append(",");
    o.append("\"max\":").append(ms(static_cast<double>(h.max())));
    o.append(",\"mean\":").append(ms(h.mean()));
    o.append(",\"count\":").append(u(h.count())).append("}");
    return o;
  };
  std::string o = "{";
  o.append("\"mode\":\"").append(s.closed ? "closed" : "open").append("\"");
  o.append(",\"elapsed_s\":").append(Format("%.6f", s.elapsed_s));
  o.append(",\"target_rate\":").append(Format("%.3f", s.target_rate));
  o.append(",\"achieved_rate\":").append(Format("%.3f", s.achieved_rate));
  o.append(",\"per_second\":[");
  for (size_t i = 0; i < s.per_second.size(); ++i) {
    if (i) o.append(",");
    o.append("{\"t\":").append(std::to_string(i));
    o.append(",\"target\":").append(Format("%.3f", s.per_second[i].target));
    o.append(",\"achieved\":").append(u(s.per_second[i].achieved));
    o.append(",\"completed\":").append(u(s.per_second[i].completed));
    o.append(",\"errors\":").append(u(s.per_second[i].errors));
    o.append(",\"p50_ms\":").append(ms(static_cast<double>(s.per_second[i].p50_ns)));
    o.append(",\"p99_ms\":").append(ms(static_cast<double>(s.per_second[i].p99_ns))).append("}");
  }
  o.append("]");
  o.append(",\"requests\":{\"scheduled\":").append(u(st.scheduled));
  o.append(",\"sent\":").append(u(st.sent));
  o.append(",\"completed\":").append(u(st.completed));
  o.append(",\"dropped\":").append(u(st.dropped));
  o.append(",\"late\":").append(u(st.late));
  o.append(",\"in_flight_at_end\":").append(u(st.aborted)).append("}");
  o.append(",\"latency_ms\":{\"corrected\":").append(latency(st.corrected));
  o.append(",\"uncorrected\":").append(latency(st.uncorrected)).append("}");
  o.append(",\"status\":{");
  bool first = true;
  for (size_t i = 0; i < st.status.size(); ++i) {
    if (!st.status[i]) continue;
    if (!first) o.append(",");
    first = false;
    o.append("\"").append(std::to_string(i)).append("\":").append(u(st.status[i]));
  }
  o.append("},\"errors\":{");
  for (size_t i = 0; i < kErrorTypes; ++i) {
    if (i) o.append(",");
    o.append("\"")
        .append(ErrorTypeName(static_cast<ErrorType>(i)))
        .append("\":")
        .append(u(st.errors[i]));
  }
  o.append("},\"error_ratio\":").append(Format("%.6f", s.error_ratio()));
  o.append(",\"bytes\":{\"in\":")
      .append(u(st.bytes_in))
      .append(",\"out\":")
      .append(u(st.bytes_out));
  o.append("},\"thresholds\":[");
  for (size_t i = 0; i < thresholds.size(); ++i) {
    auto [v, ok] = Evaluate(thresholds[i], s);
    if (i) o.append(",");
    o.append("{\"threshold\":");
    AppendJsonString(o, thresholds[i].text);
    o.append(",\"ok\":").append(ok ? "true" : "false");
    o.append(",\"value\":").append(std::isfinite(v) ? Format("%.6f", v) : "null").append("}");
  }
  o.append("]}\n");
  return o;
}

}  // namespace ficus::load
