// W3C Trace Context: traceparent and tracestate (https://www.w3.org/TR/trace-context/).
#include <cstring>

#include "base/text.h"
#include "http/http.h"

namespace ficus::http {
namespace {

// Lower-case hex digit value, or -1 (upper case is invalid in traceparent).
int LowerHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// `n` bytes from 2n lower-case hex digits; false on any other character.
bool DecodeHex(const char* p, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    const int hi = LowerHex(p[2 * i]);
    const int lo = LowerHex(p[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

bool IsLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigitChar(char c) { return c >= '0' && c <= '9'; }
bool IsKeyChar(char c) {
  return IsLcAlpha(c) || IsDigitChar(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
bool IsNblkChr(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7E && c != ',' && c != '=';
}

// key = simple-key / multi-tenant-key
bool ValidKey(std::string_view k) {
  const size_t at = k.find('@');
  if (at == std::string_view::npos) {
    // simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
    if (k.empty() || k.size() > 256 || !IsLcAlpha(k[0])) return false;
    for (char c : k.substr(1)) {
      if (!IsKeyChar(c)) return false;
    }
    return true;
  }
  // tenant-id "@" system-id
  std::string_view tenant = k.substr(0, at);
  std::string_view system = k.substr(at + 1);
  if (tenant.empty() || tenant.size() > 241 || !(IsLcAlpha(tenant[0]) || IsDigitChar(tenant[0])))
    return false;
  for (char c : tenant.substr(1)) {
    if (!IsKeyChar(c)) return false;
  }
  if (system.empty() || system.size() > 14 || !IsLcAlpha(system[0])) return false;
  for (char c : system.substr(1)) {
    if (!IsKeyChar(c)) return false;  // a second '@' fails here
  }
  return true;
}

// value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr
bool ValidValue(std::string_view v) {
  if (v.empty() || v.size() > 256 || !IsNblkChr(v.back())) return false;
  for (char c : v) {
    if (c != ' ' && !IsNblkChr(c)) return false;
  }
  return true;
}

}  // namespace

bool ParseTraceParent(std::string_view v, TraceParent* out) {
  if (v.size() < kTraceParentSize) return false;
  uint8_t version = 0;
  if (!DecodeHex(v.data(), 1, &version) || version == 0xFF) return false;
  if (version == 0 && v.size() != kTraceParentSize) return false;
  if (v.size() > kTraceParentSize && v[kTraceParentSize] != '-') return false;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  TraceParent tp;
  tp.version = version;
  if (!DecodeHex(v.data() + 3, 16, tp.trace_id) || !DecodeHex(v.data() + 36, 8, tp.parent_id) ||
      !DecodeHex(v.data() + 53, 1, &tp.flags)) {
    return false;
  }
  if (AllZero(tp.trace_id, 16) || AllZero(tp.parent_id, 8)) return false;
  *out = tp;
  return true;
}

void FormatTraceParent(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                       char* out) {
  std::memcpy(out, "00-", 3);
  WriteHexLower(trace_id, 16, out + 3);
  out[35] = '-';
  WriteHexLower(span_id, 8, out + 36);
  out[52] = '-';
  WriteHexLower(&flags, 1, out + 53);
}

bool ValidTraceState(std::string_view value) {
  TraceStateList list;
  return list.Add(value);
}

bool TraceStateList::Add(std::string_view value) {
  if (!valid_) return false;
  bytes_ += value.size() + (fields_++ == 0 ? 0 : 1);  // the comma that joins the fields
  if (bytes_ > 512) return valid_ = false;
  size_t i = 0;
  for (;;) {
    size_t comma = value.find(',', i);
    std::string_view m =
        value.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i);
    while (!m.empty() && (m.front() == ' ' || m.front() == '\t')) m.remove_prefix(1);
    while (!m.empty() && (m.back() == ' ' || m.back() == '\t')) m.remove_suffix(1);
    if (!m.empty()) {
      const size_t eq = m.find('=');
      if (eq == std::string_view::npos) return valid_ = false;
      std::string_view key = m.substr(0, eq);
      if (!ValidKey(key) || !ValidValue(m.substr(eq + 1))) return valid_ = false;
      if (members_ == kMaxMembers) return valid_ = false;
      for (size_t k = 0; k < members_; ++k) {
        if (keys_[k] == key) return valid_ = false;  // duplicate key
      }
      keys_[members_++] = key;
    }
    if (comma == std::string_view::npos) return true;
    i = comma + 1;
  }
}

}  // namespace ficus::http
