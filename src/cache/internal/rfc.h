// The RFC 9111 rules of a shared cache as plain functions over parsed fields: Cache-Control
// (and its targeted variants, RFC 9213), HTTP dates, storability (§3), freshness lifetime and
// age (§4.2), cache keys with query normalisation and Vary secondary keys (§4.1). No state, no
// I/O: the policy (policy.cc) and the store (store.cc) are built on these, and the unit tests
// and the fuzzer (fuzz/cache_fields_fuzz.cc) drive them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/http.h"

namespace ficus::cache {

// RFC 9111 §1.2.2: delta-seconds past 2^31 are taken as 2^31.
inline constexpr int64_t kMaxDelta = 2147483648LL;

// The directives of one Cache-Control (or CDN-Cache-Control, Ficus-Cache-Control) field, all its
// lines together. Delta values are -1 when absent. A duplicated max-age or s-maxage with
// different values makes the response stale (0, §4.2.1: "considered stale"); a malformed one
// counts as 0 (stale: the safe reading); other duplicated directives keep their first value;
// unknown extensions are skipped.
struct CacheControl {
  bool present = false;  // at least one directive was seen
  // Response (and some request) directives.
  bool no_store = false;
  bool no_cache = false;    // unqualified no-cache
  bool is_private = false;  // unqualified private
  // The field names of a qualified no-cache="a, b" / private="a" (§5.2.2.4, §5.2.2.7): the
  // response may be stored and reused without those fields. A view into the parsed value (valid
  // while it is); a second qualified occurrence makes the directive unqualified (the safe
  // reading).
  std::string_view no_cache_fields;
  std::string_view private_fields;
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool must_understand = false;
  bool immutable = false;
  bool no_transform = false;  // RFC 9110 §7.7 (request or response)
  int64_t max_age = -1;
  int64_t s_maxage = -1;
  int64_t stale_while_revalidate = -1;
  int64_t stale_if_error = -1;
  // Request directives.
  bool only_if_cached = false;
  int64_t min_fresh = -1;
  int64_t max_stale = -1;  // kMaxDelta for a bare max-stale (any staleness)
};

// Parses one field value (call once per field line: directives accumulate). Never fails:
// garbage is skipped up to the next comma outside a quoted string. `structured`: the value is a
// Structured Field Dictionary (RFC 9213's targeted fields): a delta directive whose value is not
// an Integer (a string, "max-age=\"5\"") is ignored rather than read.
void ParseCacheControl(std::string_view value, CacheControl& cc, bool structured = false);

// Whether `value` is a valid Structured Field Dictionary (RFC 8941 §3.2; keys compared
// case-insensitively, as caches receive them). A targeted cache-control field that is not one
// is ignored as a whole (RFC 9213 §2.1).
bool ValidStructuredDictionary(std::string_view value);

// Whether the comma-separated field-name list `list` names `field` (case-insensitively).
bool ListsField(std::string_view list, std::string_view field);
// Whether the directives say a shared cache must not store (or send unrevalidated) `field`:
// a field named by a qualified no-cache or private.
bool OmittedField(const CacheControl& cc, std::string_view field);

// The first value of field `name` in `headers`, or nullopt.
std::optional<std::string_view> FindField(std::span<const http::Header> headers,
                                          std::string_view name);

// The response's directives as ficus must read them (RFC 9213): Ficus-Cache-Control if present,
// else CDN-Cache-Control if present, else Cache-Control. `targeted` says a targeted field won.
CacheControl ResponseDirectives(std::span<const http::Header> headers, bool* targeted = nullptr);
// The request's directives: Cache-Control, and `Pragma: no-cache` when there is no Cache-Control
// (§5.4).
CacheControl RequestDirectives(std::span<const http::Header> headers);

// RFC 9110 §5.6.7 HTTP-date (IMF-fixdate, obsolete RFC 850 and asctime forms) as Unix seconds;
// nullopt when malformed.
std::optional<int64_t> ParseHttpDate(std::string_view text);
// IMF-fixdate of Unix seconds ("Sun, 06 Nov 1994 08:49:37 GMT"), 29 characters.
std::string FormatHttpDate(int64_t unix_seconds);
// delta-seconds (§1.2.2); nullopt when not 1*DIGIT.
std::optional<int64_t> ParseDelta(std::string_view text);

// Statuses a cache may give heuristic freshness (RFC 9110 §15.1).
bool HeuristicallyCacheable(int status);
// Final statuses whose semantics ficus implements (§3: "understood"; what must-understand asks
// for). 206 (ficus serves ranges from stored full responses but stores no partial content) and
// 304 are not among them, so they are never stored; any other
// final status (299, 499, 599) may be stored with explicit freshness (§3 asks understanding only
// of 206, 304 and must-understand responses).
bool StatusUnderstood(int status);
// The upstream's Age (§5.1): one field line of one non-negative integer, else 0 (an invalid or
// repeated Age is ignored, as the RFC says it SHOULD be).
int64_t AgeValue(std::span<const http::Header> response);

// What the route's config says about storing (config::Cache, copied into the policy).
struct Rules {
  int64_t default_ttl_s = 0;  // freshness for responses without explicit freshness (0: none)
  bool force_ttl = false;  // the ttl wins over no-store, private, no-cache and explicit freshness
  int64_t max_heuristic_s = 86400;  // cap of the Last-Modified heuristic
};

// Why a response is not stored, or kStorable.
enum class Verdict : uint8_t {
  kStorable,
  kMethod,          // not GET
  kStatus,          // status not understood / not storable
  kNoStore,         // no-store (response or request)
  kPrivate,         // private
  kAuthorization,   // request had Authorization; response did not allow sharing (§3.5)
  kSetCookie,       // sets a cookie and has no explicit freshness: taken as per user
  kVaryStar,        // Vary: * can never be matched
  kNotCacheable,    // no explicit freshness, no heuristic allowed, no route ttl
  kMustUnderstand,  // must-understand on a status not understood
};
std::string_view VerdictName(Verdict v);

// §3 for a response to a GET (HEAD requests are not stored).
Verdict Storable(const http::RequestHead& request, const CacheControl& request_cc, int status,
                 std::span<const http::Header> response, const CacheControl& cc,
                 const Rules& rules);

// The timing facts of a stored response (§4.2): everything its age and freshness need later.
struct Timing {
  int64_t request_time_ms = 0;   // when the request went upstream
  int64_t response_time_ms = 0;  // when the response head came
  int64_t date_s = 0;            // Date (response_time when absent)
  int64_t corrected_initial_age_s = 0;
  int64_t lifetime_s = 0;  // freshness lifetime
};

// §4.2.1 freshness lifetime and §4.2.3 initial age of a response received now. `age_value`: the
// upstream's Age when the caller has it apart (a stored copy drops the field), else -1: read
// from `response`.
Timing ComputeTiming(int status, std::span<const http::Header> response, const CacheControl& cc,
                     const Rules& rules, int64_t request_time_ms, int64_t response_time_ms,
                     int64_t age_value = -1);
// §4.2.3 current_age at `now_ms`, whole seconds.
int64_t CurrentAge(const Timing& t, int64_t now_ms);

// Query normalisation for keys.
struct KeyRules {
  bool sort_query = false;
  std::vector<std::string> ignore_query;  // parameter names dropped from the key
};

// The primary key (§4.1): scheme + lower-cased host + path + normalised query, into `out`
// (cleared first). The method is not part of it: only GET responses are stored (HEAD reuses
// them).
void AppendKey(std::string_view host, std::string_view path, std::string_view query,
               const KeyRules& rules, std::string& out);
// The key of a Location / Content-Location value relative to the request's host, or false when
// it names another origin (or is not an http URI) (§4.4: same origin only).
bool LocationKey(std::string_view request_host, std::string_view location, const KeyRules& rules,
                 std::string& out);

// Vary (§4.1): the lower-cased field names of the response's Vary lines into `names`; true when
// one is "*".
bool VaryNames(std::span<const http::Header> response, std::vector<std::string>& names);
// The secondary key of a request for those names: "name:normalised-values\n" per name, in the
// order given. Normalisation: all lines of the field combined with ',', whitespace around list
// separators and at the ends dropped, so "gzip, br" and "gzip,br" select the same variant.
void AppendSecondaryKey(std::span<const std::string> names, std::span<const http::Header> request,
                        std::string& out);

// ETag weak comparison (RFC 9110 §8.8.3.2) against an If-None-Match value ("*" matches any).
bool IfNoneMatchMatches(std::string_view if_none_match, std::string_view etag);

}  // namespace ficus::cache
