// Redaction of the copies of traffic ficus keeps or exports (base/redact.h): the standard
// credential fields, the ones the running config names (API-key fields, query parameters) and
// JWTs wherever they appear. Never on a worker: the threads that copy traffic out call it.
#include "base/redact.h"

#include <atomic>
#include <memory>

namespace ficus {

namespace {

struct Names {
  std::vector<std::string> fields;        // lower-case
  std::vector<std::string> query_params;  // as written
};
// Swapped whole when a config is applied; readers take one consistent copy.
std::atomic<std::shared_ptr<const Names>> g_names{std::make_shared<const Names>()};

bool EqualsLower(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

bool IsSecretField(std::string_view name, const Names& names) {
  static constexpr std::string_view kSecret[] = {"authorization", "proxy-authorization", "cookie",
                                                 "set-cookie"};
  for (std::string_view s : kSecret) {
    if (EqualsLower(name, s)) return true;
  }
  for (const std::string& s : names.fields) {
    if (EqualsLower(name, s)) return true;
  }
  return false;
}

bool IsB64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// The request target with the named query parameters' values replaced.
std::string RedactQuery(std::string_view target, const std::vector<std::string>& params) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos || params.empty()) return std::string(target);
  std::string out(target.substr(0, q + 1));
  std::string_view query = target.substr(q + 1);
  bool first = true;
  while (true) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (!first) out += '&';
    first = false;
    const size_t eq = pair.find('=');
    bool secret = false;
    for (const std::string& p : params) secret = secret || pair.substr(0, eq) == p;
    if (secret && eq != std::string_view::npos) {
      out.append(pair.substr(0, eq + 1)).append("<redacted>");
    } else {
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

// The request line ("GET /a?b HTTP/1.1\r\n") with its target redacted.
std::string RedactRequestLine(std::string_view line, const Names& names) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return RedactJwts(line);
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) sp2 = line.size();
  std::string out(line.substr(0, sp1 + 1));
  out += RedactJwts(RedactQuery(line.substr(sp1 + 1, sp2 - sp1 - 1), names.query_params));
  out.append(line.substr(sp2));
  return out;
}

}  // namespace

void SetCredentialNames(std::vector<std::string> fields, std::vector<std::string> query_params) {
  for (std::string& f : fields) {
    for (char& c : f) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  g_names.store(std::make_shared<const Names>(Names{std::move(fields), std::move(query_params)}));
}

bool IsCredentialField(std::string_view name) { return IsSecretField(name, *g_names.load()); }

std::string RedactTarget(std::string_view target) {
  return RedactJwts(RedactQuery(target, g_names.load()->query_params));
}

bool HasJwt(std::string_view text) {
  for (size_t at = text.find("eyJ"); at != std::string_view::npos; at = text.find("eyJ", at + 3)) {
    size_t i = at;
    int dots = 0;
    while (i < text.size() && (IsB64Url(text[i]) || (text[i] == '.' && dots < 2))) {
      if (text[i] == '.') ++dots;
      ++i;
    }
    if (dots == 2) return true;
  }
  return false;
}

// Replaces every JWT ("eyJ" base64url "." base64url "." base64url) in `text`.
std::string RedactJwts(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t at = text.find("eyJ", pos);
    if (at == std::string_view::npos) break;
    size_t i = at;
    int dots = 0;
    while (i < text.size() && (IsB64Url(text[i]) || (text[i] == '.' && dots < 2))) {
      if (text[i] == '.') ++dots;
      ++i;
    }
    out.append(text.substr(pos, at - pos));
    if (dots == 2) {
      out += "<redacted-jwt>";
    } else {
      out.append(text.substr(at, i - at));
    }
    pos = i > at ? i : at + 3;
  }
  out.append(text.substr(std::min(pos, text.size())));
  return out;
}

std::string RedactHead(std::string_view head) {
  const std::shared_ptr<const Names> names = g_names.load();
  std::string out;
  out.reserve(head.size());
  size_t pos = 0;
  bool first = true;  // the start line is never a field
  while (pos < head.size()) {
    size_t eol = head.find('\n', pos);
    const size_t end = eol == std::string_view::npos ? head.size() : eol + 1;
    std::string_view line = head.substr(pos, end - pos);
    pos = end;
    if (first) {
      first = false;
      out += RedactRequestLine(line, *names);
      continue;
    }
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = line.substr(0, colon);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
      if (IsSecretField(name, *names)) {
        out.append(line.substr(0, colon + 1));
        out += " <redacted>";
        if (line.ends_with("\r\n")) {
          out += "\r\n";
        } else if (line.ends_with('\n')) {
          out += '\n';
        }
        continue;
      }
    }
    out += RedactJwts(line);
  }
  return out;
}

}  // namespace ficus
