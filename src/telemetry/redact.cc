// Redaction of the heads kept as error samples: the standard credential fields, the ones the
// running config names (API-key fields, query parameters) and JWTs wherever they appear. Runs
// when samples are copied out (admin thread), never on a worker.
#include <mutex>

#include "telemetry/telemetry.h"

namespace ficus::telemetry {

namespace {

std::mutex g_names_mu;
std::vector<std::string> g_fields;        // lower-case
std::vector<std::string> g_query_params;  // as written

bool EqualsLower(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

bool IsSecretField(std::string_view name, const std::vector<std::string>& extra) {
  static constexpr std::string_view kSecret[] = {"authorization", "proxy-authorization", "cookie",
                                                 "set-cookie"};
  for (std::string_view s : kSecret) {
    if (EqualsLower(name, s)) return true;
  }
  for (const std::string& s : extra) {
    if (EqualsLower(name, s)) return true;
  }
  return false;
}

bool IsB64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
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

// The request line with the named query parameters' values replaced.
std::string RedactQuery(std::string_view line, const std::vector<std::string>& params) {
  const size_t q = line.find('?');
  if (q == std::string_view::npos || params.empty()) return std::string(line);
  const size_t end = line.find(' ', q);
  std::string out(line.substr(0, q + 1));
  std::string_view query =
      line.substr(q + 1, (end == std::string_view::npos ? line.size() : end) - q - 1);
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
  if (end != std::string_view::npos) out.append(line.substr(end));
  return out;
}

}  // namespace

void SetCredentialNames(std::vector<std::string> fields, std::vector<std::string> query_params) {
  for (std::string& f : fields) {
    for (char& c : f) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  std::lock_guard lock(g_names_mu);
  g_fields = std::move(fields);
  g_query_params = std::move(query_params);
}

std::string RedactHead(std::string_view head) {
  std::vector<std::string> fields, params;
  {
    std::lock_guard lock(g_names_mu);
    fields = g_fields;
    params = g_query_params;
  }
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
      out += RedactJwts(RedactQuery(line, params));
      continue;
    }
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = line.substr(0, colon);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
      if (IsSecretField(name, fields)) {
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

}  // namespace ficus::telemetry
