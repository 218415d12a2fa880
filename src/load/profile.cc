// Load profiles (the open model's rate over time) and the intended send times they give.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "load/load.h"

namespace ficus::load {

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

}  // namespace ficus::load
