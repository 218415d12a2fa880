#include "config/internal/slo_values.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "config/internal/values.h"

namespace ficus::config::internal {

std::optional<double> ParsePercent(std::string_view text, std::string* error) {
  const std::string_view original = text;
  auto fail = [&](std::string why) -> std::optional<double> {
    *error = std::move(why);
    return std::nullopt;
  };
  if (!text.ends_with('%')) {
    return fail("expected a percentage like 99.9%, got '" + std::string(original.substr(0, 40)) +
                "'");
  }
  text.remove_suffix(1);
  // Digits, then optionally '.' and 1..4 digits: read as an integer count of 1/10000 percent so
  // that the value is exact (no floating-point parse) and formats back to the same text.
  uint64_t whole = 0;
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
    if (whole > 1000) return fail("must be between 0% and 100% (exclusive)");
    ++i;
  }
  if (i == 0) return fail("expected a percentage like 99.9%, got '" + std::string(original) + "'");
  uint64_t frac = 0;
  int frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (++frac_digits > 4) return fail("at most 4 decimals (99.9999%)");
      frac = frac * 10 + static_cast<uint64_t>(text[i] - '0');
      ++i;
    }
    if (frac_digits == 0) {
      return fail("expected a percentage like 99.9%, got '" + std::string(original) + "'");
    }
  }
  if (i != text.size()) {
    return fail("expected a percentage like 99.9%, got '" + std::string(original.substr(0, 40)) +
                "'");
  }
  for (int d = frac_digits; d < 4; ++d) frac *= 10;
  const uint64_t units = whole * 10000 + frac;  // in 1/10000 of a percent (1e-6)
  if (units == 0 || units >= 1'000'000) {
    return fail(
        "must be between 0% and 100% (exclusive): an objective of 100% leaves no error "
        "budget");
  }
  return static_cast<double>(units) / 1e6;
}

std::string FormatPercent(double fraction) {
  const long long units = std::llround(fraction * 1e6);
  std::string out = std::to_string(units / 10000);
  long long frac = units % 10000;
  if (frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%04lld", frac);
    std::string f = buf;
    while (f.ends_with('0')) f.pop_back();
    out.append(".").append(f);
  }
  out.append("%");
  return out;
}

bool ParseHttpUrl(std::string_view text, Webhook* out, std::string* error) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      *error = "a URL must not contain spaces, control or non-ASCII characters";
      return false;
    }
  }
  auto has_scheme = [&](std::string_view scheme) {
    return text.size() >= scheme.size() &&
           std::equal(scheme.begin(), scheme.end(), text.begin(), [](char a, char b) {
             return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
           });
  };
  const bool https = has_scheme("https://");
  if (!https && !has_scheme("http://")) {
    *error = "expected a URL like http://127.0.0.1:9000/hook or https://hooks.example.com/x";
    return false;
  }
  text.remove_prefix(https ? 8 : 7);
  const size_t end = text.find_first_of("/?#");
  std::string_view authority = text.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : text.substr(end);
  if (rest.find('#') != std::string_view::npos) {
    *error = "a webhook URL must not have a fragment ('#')";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    *error = "a webhook URL must not contain credentials ('user@'): put a token in the path";
    return false;
  }
  if (authority.empty()) {
    *error = "the URL has no host";
    return false;
  }
  HostPort hp;
  if (authority.back() == ']' || authority.find(':') == std::string_view::npos) {
    // No port: the scheme's default.
    hp.host = std::string(authority);
    hp.port = https ? 443 : 80;
    if (authority.front() == '[') {
      if (authority.back() != ']') {
        *error = "unterminated '[' in the host";
        return false;
      }
      hp.host = std::string(authority.substr(1, authority.size() - 2));
      hp.bracketed = true;
    }
  } else if (!ParseHostPort(authority, &hp, error)) {
    return false;
  }
  int family = 0;
  if (std::optional<std::string> ip = CanonicalIp(hp.host, &family)) {
    if (hp.bracketed != (family == AF_INET6)) {
      *error = "brackets are for IPv6 addresses only";
      return false;
    }
    out->host = *ip;
  } else if (hp.bracketed) {
    *error = "'" + hp.host + "' is not an IPv6 address";
    return false;
  } else if (!IsValidHostName(hp.host)) {
    *error = "invalid host name '" + hp.host.substr(0, 60) + "'";
    return false;
  } else {
    out->host = hp.host;
  }
  out->port = hp.port;
  out->https = https;
  // The origin-form target: "/" + the query when the URL has only a query. Built by appending:
  // g++ 12 at -O3 warns (-Wrestrict, a false positive: GCC bug 105329) inside the inlined
  // copies of `out->target = "/"` and of `"/" + std::string(rest)` here.
  std::string target;
  if (rest.empty() || rest.front() == '?') target.push_back('/');
  target.append(rest);
  out->target = std::move(target);
  return true;
}

bool ReadableFile(const std::string& path, std::string* error) {
  struct stat st;
  if (path.empty()) {
    *error = "must not be empty";
    return false;
  }
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || ::access(path.c_str(), R_OK) != 0) {
    *error = "'" + path + "' is not a readable file";
    return false;
  }
  return true;
}

}  // namespace ficus::config::internal
