#include "config/internal/values.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <boost/regex.hpp>
#include <charconv>
#include <cstring>

#include "base/duration.h"
#include "config/config.h"

namespace ficus::config {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<Duration> ParseDuration(std::string_view text, std::string* error) {
  std::optional<int64_t> ns = ParseDurationNs(text, error);
  if (!ns) return std::nullopt;
  if (*ns % 1'000'000 != 0) {
    if (error) *error = "'" + std::string(text) + "' is not a whole number of milliseconds";
    return std::nullopt;
  }
  return Duration{*ns / 1'000'000};
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && IsDigit(text[i])) ++i;
  if (i == 0) return std::nullopt;
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, n);
  if (ec != std::errc() || ptr != text.data() + i) return std::nullopt;
  std::string_view unit = text.substr(i);
  if (unit.starts_with(' ')) unit.remove_prefix(1);
  struct Unit {
    std::string_view name;
    uint64_t factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000ull * 1000 * 1000},
      {"TB", 1000ull * 1000 * 1000 * 1000},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
  };
  if (unit.empty() && text.size() != i) return std::nullopt;  // "12 " (trailing space)
  for (const Unit& u : kUnits) {
    if (unit == u.name) {
      if (n > UINT64_MAX / u.factor) return std::nullopt;
      return n * u.factor;
    }
  }
  return std::nullopt;
}

std::string FormatDuration(Duration d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string FormatSize(uint64_t bytes) {
  if (bytes != 0) {
    if (bytes % (1ull << 40) == 0) return std::to_string(bytes >> 40) + "TiB";
    if (bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
    if (bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
    if (bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  }
  return std::to_string(bytes);
}

namespace internal {

std::optional<std::string> CanonicalIp(std::string_view text, int* family) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  char out[INET6_ADDRSTRLEN];
  if (text.find(':') == std::string_view::npos) {
    in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) != 1) return std::nullopt;
    if (family) *family = AF_INET;
    return std::string(inet_ntop(AF_INET, &a4, out, sizeof(out)));
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, buf, &a6) != 1) return std::nullopt;
  if (family) *family = AF_INET6;
  return std::string(inet_ntop(AF_INET6, &a6, out, sizeof(out)));
}

bool IsLoopbackIp(std::string_view canonical) {
  int family = 0;
  auto ip = CanonicalIp(canonical, &family);
  if (!ip) return false;
  if (family == AF_INET) return ip->starts_with("127.");
  return *ip == "::1" || ip->starts_with("::ffff:127.");
}

bool IsWildcardIp(std::string_view canonical) {
  return canonical == "0.0.0.0" || canonical == "::";
}

std::string JoinHostPort(std::string_view host, uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  out.append(":").append(std::to_string(port));
  return out;
}

bool ParseHostPort(std::string_view text, HostPort* out, std::string* error) {
  std::string_view host, port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      *error = "missing ']' after the IPv6 address";
      return false;
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.starts_with(':')) {
      *error = "missing port: expected [ipv6]:port like [::1]:8080";
      return false;
    }
    port = rest.substr(1);
    out->bracketed = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      *error = "missing port: expected host:port like 127.0.0.1:8080";
      return false;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      *error = "an IPv6 address needs brackets: \"[::1]:8080\"";
      return false;
    }
    out->bracketed = false;
  }
  if (host.empty()) {
    *error = "missing host: expected host:port like 127.0.0.1:8080";
    return false;
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() ||
      !IsDigit(port.front())) {
    *error = "port must be a number 1..65535, got '" + std::string(port) + "'";
    return false;
  }
  if (value < 1 || value > 65535) {
    *error = "port must be 1..65535, got " + std::string(port);
    return false;
  }
  out->host = std::string(host);
  out->port = static_cast<uint16_t>(value);
  return true;
}

bool IsValidHostName(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (label == 0 || label > 63) return false;
      if (name[i - 1] == '-' || name[i - label] == '-') return false;
      label = 0;
      continue;
    }
    const char c = name[i];
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-' || c == '_';
    if (!ok) return false;
    ++label;
  }
  return true;
}

bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string CheckName(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 64) return "must be at most 64 characters";
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c);
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) {
      return "'" + std::string(name) +
             "' is not a valid name: use letters, digits, '_', '.' and '-', starting with a "
             "letter or digit";
    }
  }
  return "";
}

std::string CheckText(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return "contains a control character";
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return "is not valid UTF-8";
    }
    if (i + len > text.size()) return "is not valid UTF-8";
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return "is not valid UTF-8";
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return "is not valid UTF-8";
    }
    if (cp >= 0x80 && cp < 0xa0) return "contains a control character";
    i += len;
  }
  return "";
}

Parsed SubstituteEnv(std::string_view text, const EnvLookup& getenv,
                     std::vector<std::string>* unset) {
  Parsed out;
  std::string& value = out.value;
  size_t i = 0;
  while (i < text.size()) {
    const size_t dollar = text.find('$', i);
    if (dollar == std::string_view::npos) {
      value.append(text.substr(i));
      break;
    }
    value.append(text.substr(i, dollar - i));
    std::string_view rest = text.substr(dollar);
    if (rest.starts_with("$${")) {
      value.append("${");
      i = dollar + 3;
      continue;
    }
    if (!rest.starts_with("${")) {
      value.push_back('$');
      i = dollar + 1;
      continue;
    }
    const size_t close = rest.find('}');
    if (close == std::string_view::npos) {
      out.error = "unterminated '${' (write '$${' for a literal '${')";
      return out;
    }
    std::string_view inner = rest.substr(2, close - 2);
    std::optional<std::string_view> fallback;
    if (const size_t sep = inner.find(":-"); sep != std::string_view::npos) {
      fallback = inner.substr(sep + 2);
      inner = inner.substr(0, sep);
    }
    bool valid = !inner.empty() && !IsDigit(inner.front());
    for (char c : inner) {
      valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_');
    }
    if (!valid) {
      out.error = "invalid environment variable name '" + std::string(inner) +
                  "' in '${...}' (letters, digits and '_')";
      return out;
    }
    // As in the shell: the default replaces an unset or empty variable.
    std::optional<std::string> env = getenv(std::string(inner));
    if (env && (!env->empty() || !fallback)) {
      value.append(*env);
    } else if (fallback) {
      value.append(*fallback);
    } else if (unset != nullptr && !env) {
      unset->emplace_back(inner);
    } else {
      out.error = "environment variable " + std::string(inner) + " is not set";
      return out;
    }
    i = dollar + close + 1;
  }
  return out;
}

std::string EscapeEnv(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') out.push_back('$');
    out.push_back(text[i]);
  }
  return out;
}

std::string CheckRegex(const std::string& pattern) {
  if (pattern.size() > kMaxRegexBytes) {
    return "regex is longer than " + std::to_string(kMaxRegexBytes) + " bytes";
  }
  // boost's parser recurses once per group: bound the nesting before handing it over.
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
    } else if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;  // "[]...]": ']' is literal
    } else if (c == '(') {
      if (++depth > kMaxRegexNesting) {
        return "regex nests groups deeper than " + std::to_string(kMaxRegexNesting);
      }
    } else if (c == ')' && depth > 0) {
      --depth;
    }
  }
  try {
    boost::regex re(pattern, boost::regex::ECMAScript);
  } catch (const boost::regex_error& e) {
    std::string what = e.what();
    // boost appends "  The error occurred while parsing ...: '<pattern with marker>'".
    if (size_t cut = what.find("  The error occurred"); cut != std::string::npos) {
      what.resize(cut);
    }
    while (!what.empty() && (what.back() == '.' || what.back() == ' ')) what.pop_back();
    return "invalid regex: " + what + " (at offset " + std::to_string(e.position()) + ")";
  } catch (const std::exception& e) {
    return std::string("invalid regex: ") + e.what();
  }
  return "";
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out.append(", ");
    out.append(n);
  }
  return out;
}

}  // namespace internal
}  // namespace ficus::config
