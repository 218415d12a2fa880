// Accept-Encoding (RFC 9110 §12.5.3): parsing with q-values, and the choice of a coding.
#include <algorithm>
#include <string>

#include "compress/compress.h"
#include "http/http.h"

namespace ficus::compress {

namespace {

using http::TrimOws;

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths; -1 if malformed.
int ParseQ(std::string_view q) {
  if (q.empty() || (q[0] != '0' && q[0] != '1') || q.size() > 5 || (q.size() > 1 && q[1] != '.')) {
    return -1;
  }
  int v = (q[0] - '0') * 1000;
  int scale = 100;
  for (size_t i = 2; i < q.size(); ++i, scale /= 10) {
    if (q[i] < '0' || q[i] > '9') return -1;
    v += (q[i] - '0') * scale;
  }
  return v > 1000 ? -1 : v;
}

}  // namespace

std::string_view CodingName(Coding c) {
  switch (c) {
    case Coding::kIdentity:
      return "identity";
    case Coding::kGzip:
      return "gzip";
    case Coding::kBrotli:
      return "br";
    case Coding::kZstd:
      return "zstd";
  }
  return "identity";
}

void ParseAcceptEncoding(std::string_view value, std::vector<Accepted>& out) {
  std::string_view rest = value;
  while (!rest.empty() && out.size() < 16) {
    const size_t comma = rest.find(',');
    std::string_view member = TrimOws(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t semi = member.find(';');
    Accepted a{TrimOws(member.substr(0, semi)), 1000};
    if (a.name.empty() || a.name.find_first_of(" \t\"=") != std::string_view::npos) continue;
    std::string_view params = semi == std::string_view::npos ? "" : member.substr(semi + 1);
    while (!params.empty()) {
      const size_t next = params.find(';');
      std::string_view p = TrimOws(params.substr(0, next));
      params = next == std::string_view::npos ? "" : params.substr(next + 1);
      const size_t eq = p.find('=');
      if (eq == std::string_view::npos || !http::EqualsIgnoreCase(TrimOws(p.substr(0, eq)), "q")) {
        continue;
      }
      const int q = ParseQ(TrimOws(p.substr(eq + 1)));
      a.q = q < 0 ? 0 : q;
    }
    out.push_back(a);
  }
}

std::optional<Coding> Negotiate(std::string_view accept_encoding, bool present,
                                const Offer& offer) {
  if (!present) return Coding::kIdentity;
  std::vector<Accepted> accepted;
  ParseAcceptEncoding(accept_encoding, accepted);
  // The q of a coding: its own entry, else "*", else (identity: acceptable; others: not).
  auto q_of = [&accepted](std::string_view name) {
    int own = -1, star = -1;
    for (const Accepted& a : accepted) {
      if (http::EqualsIgnoreCase(a.name, name)) own = std::max(own, a.q);
      if (a.name == "*") star = std::max(star, a.q);
    }
    if (own >= 0) return own;
    if (star >= 0) return star;
    return name == "identity" ? 1 : 0;  // identity: acceptable, below any listed coding
  };
  std::optional<Coding> best;
  int best_q = 0;
  // Server preference on ties: the order tried.
  const Coding tried[4] = {offer.order[0], offer.order[1], offer.order[2], Coding::kIdentity};
  for (Coding c : tried) {
    if ((c == Coding::kZstd && !offer.zstd) || (c == Coding::kBrotli && !offer.brotli) ||
        (c == Coding::kGzip && !offer.gzip)) {
      continue;
    }
    const int q = q_of(CodingName(c));
    if (q > best_q) {
      best = c;
      best_q = q;
    }
  }
  return best;
}

std::string WeakenETag(std::string_view etag) {
  if (etag.starts_with("W/") || etag.empty()) return std::string(etag);
  return "W/" + std::string(etag);
}

void AppendCanonicalAcceptEncoding(std::string_view value, std::string& out) {
  std::vector<Accepted> members;
  ParseAcceptEncoding(value, members);
  std::string names[16];
  for (size_t i = 0; i < members.size(); ++i) {
    for (char c : members[i].name) {
      names[i].push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    }
  }
  size_t order[16];
  for (size_t i = 0; i < members.size(); ++i) order[i] = i;
  std::sort(order, order + members.size(), [&](size_t a, size_t b) {
    return names[a] != names[b] ? names[a] < names[b] : members[a].q < members[b].q;
  });
  for (size_t k = 0; k < members.size(); ++k) {
    const size_t i = order[k];
    if (k > 0) out.push_back(',');
    out.append(names[i]);
    const int q = members[i].q;
    if (q == 1000) continue;
    // The qvalue grammar ("0", "0.5", "0.125"), so that the canonical form is itself a valid
    // value with the same meaning.
    out.append(";q=0");
    if (q == 0) continue;
    char digits[4] = {static_cast<char>('0' + q / 100), static_cast<char>('0' + q / 10 % 10),
                      static_cast<char>('0' + q % 10), 0};
    size_t n = 3;
    while (digits[n - 1] == '0') --n;
    out.push_back('.');
    out.append(digits, n);
  }
}

}  // namespace ficus::compress
