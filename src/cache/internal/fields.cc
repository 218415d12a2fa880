// Field parsing for the cache: Cache-Control and its targeted variants, HTTP dates,
// delta-seconds and entity tags. Everything here reads untrusted upstream or
// client text: it never fails, never reads past its input, and never allocates.
#include <array>
#include <charconv>

#include "cache/internal/rfc.h"

namespace ficus::cache {

namespace {

using http::TrimOws;

// Splits off the next list member at a comma outside a quoted string.
std::string_view NextMember(std::string_view& rest) {
  bool quoted = false;
  size_t i = 0;
  for (; i < rest.size(); ++i) {
    const char c = rest[i];
    if (quoted && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) break;
  }
  std::string_view member = rest.substr(0, i);
  rest = i < rest.size() ? rest.substr(i + 1) : std::string_view();
  return TrimOws(member);
}

// The argument without quotes (escapes left as they are: the values that matter are digits).
std::string_view Unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return v;
}

// Duplicates: `conflict_is_stale` (max-age, s-maxage): different values make the response stale
// (§4.2.1); otherwise the first occurrence wins.
void SetDelta(int64_t& slot, std::string_view arg, bool has_arg, bool invalid_is_zero,
              bool conflict_is_stale = false) {
  std::optional<int64_t> d = has_arg ? ParseDelta(Unquote(arg)) : std::nullopt;
  if (!d && invalid_is_zero) d = 0;
  if (!d) return;
  if (slot < 0) {
    slot = *d;
  } else if (conflict_is_stale && slot != *d) {
    slot = 0;
  }
}

// A qualified no-cache / private: its field-name list, or the unqualified form.
void SetQualified(bool& unqualified, std::string_view& fields, std::string_view arg, bool has_arg) {
  const std::string_view list = has_arg ? Unquote(arg) : std::string_view();
  if (list.empty() || !fields.empty()) {
    unqualified = true;  // bare, empty, or a second list (kept simple: the safe reading)
  } else {
    fields = list;
  }
}

}  // namespace

std::optional<int64_t> ParseDelta(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (n < kMaxDelta) n = n * 10 + (c - '0');
  }
  return n < kMaxDelta ? n : kMaxDelta;
}

void ParseCacheControl(std::string_view value, CacheControl& cc, bool structured) {
  std::string_view rest = value;
  while (!rest.empty()) {
    std::string_view member = NextMember(rest);
    if (member.empty()) continue;
    const size_t eq = member.find('=');
    std::string_view name = member.substr(0, eq);
    const bool has_arg = eq != std::string_view::npos;
    std::string_view arg = has_arg ? member.substr(eq + 1) : std::string_view();
    // No whitespace around '=' (RFC 9110 §5.6.2 / §5.6.6): "max-age =5" and "max-age= 5" are
    // malformed arguments (a max-age then counts as 0).
    auto ows = [](char c) { return c == ' ' || c == '\t'; };
    if (has_arg && ((!name.empty() && ows(name.back())) || (!arg.empty() && ows(arg.front())))) {
      arg = {};
    }
    name = TrimOws(name);
    // RFC 9213 §2.1: a directive of the wrong type is ignored (an Integer is expected).
    const bool not_integer = structured && has_arg && (arg.empty() || arg.front() == '"');
    // Structured-field parameters (";a=1" in CDN-Cache-Control) are not directives.
    if (const size_t semi = name.find(';'); semi != std::string_view::npos) {
      name = TrimOws(name.substr(0, semi));
    }
    if (name.empty()) continue;
    cc.present = true;
    auto is = [name](std::string_view d) { return http::EqualsIgnoreCase(name, d); };
    if (is("no-store")) {
      cc.no_store = true;
    } else if (is("no-cache")) {
      SetQualified(cc.no_cache, cc.no_cache_fields, arg, has_arg);
    } else if (is("private")) {
      SetQualified(cc.is_private, cc.private_fields, arg, has_arg);
    } else if (is("public")) {
      cc.is_public = true;
    } else if (is("must-revalidate")) {
      cc.must_revalidate = true;
    } else if (is("proxy-revalidate")) {
      cc.proxy_revalidate = true;
    } else if (is("must-understand")) {
      cc.must_understand = true;
    } else if (is("immutable")) {
      cc.immutable = true;
    } else if (is("no-transform")) {
      cc.no_transform = true;
    } else if (is("only-if-cached")) {
      cc.only_if_cached = true;
    } else if (not_integer && (is("max-age") || is("s-maxage") || is("stale-while-revalidate") ||
                               is("stale-if-error"))) {
      continue;
    } else if (is("max-age")) {
      SetDelta(cc.max_age, arg, has_arg, /*invalid_is_zero=*/true, /*conflict_is_stale=*/true);
    } else if (is("s-maxage")) {
      SetDelta(cc.s_maxage, arg, has_arg, true, true);
    } else if (is("stale-while-revalidate")) {
      SetDelta(cc.stale_while_revalidate, arg, has_arg, false);
    } else if (is("stale-if-error")) {
      SetDelta(cc.stale_if_error, arg, has_arg, false);
    } else if (is("min-fresh")) {
      SetDelta(cc.min_fresh, arg, has_arg, false);
    } else if (is("max-stale")) {
      if (cc.max_stale < 0) {
        cc.max_stale = has_arg ? ParseDelta(Unquote(arg)).value_or(-1) : kMaxDelta;
      }
    }
  }
}

bool ListsField(std::string_view list, std::string_view field) {
  while (!list.empty()) {
    if (http::EqualsIgnoreCase(NextMember(list), field)) return true;
  }
  return false;
}

bool OmittedField(const CacheControl& cc, std::string_view field) {
  return (!cc.no_cache_fields.empty() && ListsField(cc.no_cache_fields, field)) ||
         (!cc.private_fields.empty() && ListsField(cc.private_fields, field));
}

int64_t AgeValue(std::span<const http::Header> response) {
  std::optional<int64_t> age;
  for (const http::Header& h : response) {
    if (!http::EqualsIgnoreCase(h.name, "Age")) continue;
    if (age) return 0;  // two lines: a list, not a delta-seconds
    age = ParseDelta(TrimOws(h.value)).value_or(0);
  }
  return age.value_or(0);
}

std::optional<std::string_view> FindField(std::span<const http::Header> headers,
                                          std::string_view name) {
  for (const http::Header& h : headers) {
    if (http::EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return std::nullopt;
}

namespace {

bool ParseField(std::span<const http::Header> headers, std::string_view name, CacheControl& cc,
                bool structured = false) {
  bool seen = false;
  for (const http::Header& h : headers) {
    if (!http::EqualsIgnoreCase(h.name, name)) continue;
    // An invalid targeted field is ignored as a whole: as if it were not there.
    if (structured && !ValidStructuredDictionary(h.value)) {
      cc = CacheControl{};
      return false;
    }
    seen = true;
    ParseCacheControl(h.value, cc, structured);
  }
  return seen;
}

// RFC 8941 parsing steps over a cursor; each returns false on a syntax error.
struct Sf {
  std::string_view s;
  static bool Lc(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
  static bool Digit(char c) { return c >= '0' && c <= '9'; }
  bool At(char c) const { return !s.empty() && s.front() == c; }
  void Skip(char c) {
    while (At(c)) s.remove_prefix(1);
  }
  void SkipOws() {
    while (At(' ') || At('\t')) s.remove_prefix(1);
  }
  bool Key() {
    if (s.empty() || !(Lc(s.front()) || s.front() == '*')) return false;
    size_t i = 1;
    while (i < s.size() &&
           (Lc(s[i]) || Digit(s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.' || s[i] == '*')) {
      ++i;
    }
    s.remove_prefix(i);
    return true;
  }
  bool Number() {
    size_t i = At('-') ? 1 : 0;
    size_t digits = 0, frac = 0;
    while (i < s.size() && Digit(s[i])) ++i, ++digits;
    if (digits == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && Digit(s[i])) ++i, ++frac;
      if (digits > 12 || frac == 0 || frac > 3) return false;
    } else if (digits > 15) {
      return false;
    }
    s.remove_prefix(i);
    return true;
  }
  bool String() {
    for (size_t i = 1; i < s.size(); ++i) {
      const char c = s[i];
      if (c == '\\') {
        if (++i >= s.size() || (s[i] != '"' && s[i] != '\\')) return false;
      } else if (c == '"') {
        s.remove_prefix(i + 1);
        return true;
      } else if (c < 0x20 || c > 0x7e) {
        return false;
      }
    }
    return false;
  }
  bool BareItem() {
    if (s.empty()) return false;
    const char c = s.front();
    if (c == '-' || Digit(c)) return Number();
    if (c == '"') return String();
    if (c == '?') {
      if (s.size() < 2 || (s[1] != '0' && s[1] != '1')) return false;
      s.remove_prefix(2);
      return true;
    }
    if (c == ':') {
      const size_t end = s.find(':', 1);
      if (end == std::string_view::npos) return false;
      for (char b : s.substr(1, end - 1)) {
        if (!(Lc(b) || Digit(b) || b == '+' || b == '/' || b == '=')) return false;
      }
      s.remove_prefix(end + 1);
      return true;
    }
    if (Lc(c) || c == '*') {  // a token: tchar, ':' and '/'
      size_t i = 1;
      while (i < s.size() &&
             (Lc(s[i]) || Digit(s[i]) ||
              std::string_view("!#$%&'*+-.^_`|~:/").find(s[i]) != std::string_view::npos)) {
        ++i;
      }
      s.remove_prefix(i);
      return true;
    }
    return false;
  }
  bool Parameters() {
    while (At(';')) {
      s.remove_prefix(1);
      Skip(' ');
      if (!Key()) return false;
      if (At('=')) {
        s.remove_prefix(1);
        if (!BareItem()) return false;
      }
    }
    return true;
  }
  bool Item() { return BareItem() && Parameters(); }
  bool InnerList() {
    s.remove_prefix(1);  // '('
    for (;;) {
      Skip(' ');
      if (At(')')) {
        s.remove_prefix(1);
        return Parameters();
      }
      if (!Item()) return false;
      if (!At(' ') && !At(')')) return false;
    }
  }
};

}  // namespace

bool ValidStructuredDictionary(std::string_view value) {
  Sf p{value};
  p.Skip(' ');
  if (p.s.empty()) return true;  // an empty dictionary
  for (;;) {
    if (!p.Key()) return false;
    if (p.At('=')) {
      p.s.remove_prefix(1);
      if (!(p.At('(') ? p.InnerList() : p.Item())) return false;
    } else if (!p.Parameters()) {
      return false;
    }
    p.SkipOws();
    if (p.s.empty()) return true;
    if (!p.At(',')) return false;
    p.s.remove_prefix(1);
    p.SkipOws();
    if (p.s.empty()) return false;  // a trailing comma
  }
}

CacheControl ResponseDirectives(std::span<const http::Header> headers, bool* targeted) {
  CacheControl cc;
  // RFC 9213 §2.2: the most specific targeted field present (and valid) is used alone.
  for (std::string_view name : {"Ficus-Cache-Control", "CDN-Cache-Control"}) {
    if (ParseField(headers, name, cc, /*structured=*/true) && cc.present) {
      if (targeted) *targeted = true;
      return cc;
    }
    cc = CacheControl{};
  }
  if (targeted) *targeted = false;
  ParseField(headers, "Cache-Control", cc);
  return cc;
}

CacheControl RequestDirectives(std::span<const http::Header> headers) {
  CacheControl cc;
  if (!ParseField(headers, "Cache-Control", cc)) {
    for (const http::Header& h : headers) {
      if (!http::EqualsIgnoreCase(h.name, "Pragma")) continue;
      std::string_view rest = h.value;
      while (!rest.empty()) {
        if (http::EqualsIgnoreCase(NextMember(rest), "no-cache")) cc.no_cache = true;
      }
    }
  }
  return cc;
}

// --- HTTP dates ---

namespace {

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDays = {"Thu", "Fri", "Sat", "Sun",
                                                   "Mon", "Tue", "Wed"};  // 1970-01-01: Thu

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// A cursor over the date text.
struct Cursor {
  std::string_view s;
  bool ok = true;
  bool Lit(std::string_view l) {
    if (!ok || s.substr(0, l.size()) != l) return ok = false;
    s.remove_prefix(l.size());
    return true;
  }
  int64_t Digits(size_t min, size_t max) {
    size_t n = 0;
    int64_t v = 0;
    while (ok && n < max && n < s.size() && s[n] >= '0' && s[n] <= '9') v = v * 10 + (s[n++] - '0');
    if (n < min) ok = false;
    s.remove_prefix(n);
    return v;
  }
  int Month() {
    for (size_t i = 0; i < kMonths.size(); ++i) {
      if (ok && s.substr(0, 3) == kMonths[i]) {
        s.remove_prefix(3);
        return static_cast<int>(i) + 1;
      }
    }
    ok = false;
    return 0;
  }
  void Time(int64_t& h, int64_t& mi, int64_t& sec) {
    h = Digits(2, 2);
    Lit(":");
    mi = Digits(2, 2);
    Lit(":");
    sec = Digits(2, 2);
  }
};

}  // namespace

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  text = TrimOws(text);
  Cursor c{text};
  int64_t day = 0, month = 0, year = 0, h = 0, mi = 0, sec = 0;
  const size_t comma = text.find(',');
  if (comma == 3) {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    c.s.remove_prefix(4);
    c.Lit(" ");
    day = c.Digits(2, 2);
    c.Lit(" ");
    month = c.Month();
    c.Lit(" ");
    year = c.Digits(4, 4);
    c.Lit(" ");
    c.Time(h, mi, sec);
    c.Lit(" GMT");
  } else if (comma != std::string_view::npos && comma > 3 && comma < 10) {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit years: within 50 years, RFC 9110).
    c.s.remove_prefix(comma + 1);
    c.Lit(" ");
    day = c.Digits(2, 2);
    c.Lit("-");
    month = c.Month();
    c.Lit("-");
    year = c.Digits(2, 2);
    year += year < 70 ? 2000 : 1900;
    c.Lit(" ");
    c.Time(h, mi, sec);
    c.Lit(" GMT");
  } else {  // asctime: Sun Nov  6 08:49:37 1994
    if (c.s.size() < 4) return std::nullopt;
    c.s.remove_prefix(3);
    c.Lit(" ");
    month = c.Month();
    c.Lit(" ");
    if (c.ok && !c.s.empty() && c.s[0] == ' ') c.s.remove_prefix(1);
    day = c.Digits(1, 2);
    c.Lit(" ");
    c.Time(h, mi, sec);
    c.Lit(" ");
    year = c.Digits(4, 4);
  }
  if (!c.ok || !c.s.empty() || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60) {
    return std::nullopt;
  }
  return DaysFromCivil(year, month, day) * 86400 + h * 3600 + mi * 60 + sec;
}

std::string FormatHttpDate(int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  // civil_from_days (H. Hinnant).
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2);
  const int64_t wd = ((days % 7) + 7) % 7;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[wd].data(),
                static_cast<int>(d), kMonths[m - 1].data(), static_cast<int>(y),
                static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                static_cast<int>(secs % 60));
  return buf;
}

// --- entity tags ---

bool IfNoneMatchMatches(std::string_view inm, std::string_view etag) {
  auto opaque = [](std::string_view t) {
    t = TrimOws(t);
    if (t.size() >= 2 && t[0] == 'W' && t[1] == '/') t.remove_prefix(2);
    return t;
  };
  etag = opaque(etag);
  std::string_view rest = inm;
  while (!rest.empty()) {
    std::string_view member = NextMember(rest);
    if (member == "*") return true;
    if (!member.empty() && !etag.empty() && opaque(member) == etag) return true;
  }
  return false;
}

}  // namespace ficus::cache
