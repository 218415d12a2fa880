// Scalar grammars of the config file (addresses, names, env substitution, regex checks),
// kept apart from the YAML walk so each is testable and fuzzable on its own.
// Errors are returned as reason strings; the caller adds file, line, column and field path.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ficus::config::internal {

// A string or an error reason (std::expected is avoided: clang 14 compiles this in fuzz builds).
struct Parsed {
  std::string value;
  std::string error;  // non-empty on failure
  bool ok() const { return error.empty(); }
};

// "host:port" or "[v6]:port". `host` is returned without brackets; `bracketed` tells whether
// the text used brackets. Ports must be 1..65535.
struct HostPort {
  std::string host;
  uint16_t port = 0;
  bool bracketed = false;
};
bool ParseHostPort(std::string_view text, HostPort* out, std::string* error);

// The canonical text of an IP literal (inet_ntop form), or nullopt when `text` is not one.
// `family` is set to AF_INET or AF_INET6.
std::optional<std::string> CanonicalIp(std::string_view text, int* family = nullptr);
bool IsLoopbackIp(std::string_view canonical);
bool IsWildcardIp(std::string_view canonical);  // 0.0.0.0 or ::
// "host:port", with brackets around IPv6 literals.
std::string JoinHostPort(std::string_view host, uint16_t port);

// RFC 1123 host name: dot-separated labels of letters, digits and '-' (also '_', which real
// internal DNS names contain), each 1..63 bytes and not starting or ending with '-'; at most
// 253 bytes; one trailing dot allowed.
bool IsValidHostName(std::string_view name);

// RFC 9110 token (method names, header field names).
bool IsToken(std::string_view text);

// Names of listeners, clusters and routes: they appear in metrics labels and logs.
// [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 bytes. Returns an error reason or "".
std::string CheckName(std::string_view name);

// Valid UTF-8 without control characters (tab allowed). Returns an error reason or "".
std::string CheckText(std::string_view text);

// `${VAR}` and `${VAR:-default}` substitution; `$${` is a literal `${`. `getenv` returns
// nullopt for an unset variable. As in the shell, the default replaces an unset or empty
// variable, and runs to the first '}' (no nesting).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
// `unset`: when given, an unset variable without a default is no error: its name is appended
// there and the text gets an empty value (offline tools need no secrets).
Parsed SubstituteEnv(std::string_view text, const EnvLookup& getenv,
                     std::vector<std::string>* unset = nullptr);
// The inverse for literal text: every `${` becomes `$${`, so that SubstituteEnv(Escape(s)) == s.
std::string EscapeEnv(std::string_view text);

// Compiles `pattern` with the engine the router matches with (boost::regex, ECMAScript
// syntax) after bounding its size and nesting. Returns an error reason or "".
std::string CheckRegex(const std::string& pattern);
inline constexpr size_t kMaxRegexBytes = 1024;
inline constexpr int kMaxRegexNesting = 32;

// For messages: "a, b, c".
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace ficus::config::internal
