// The PostgreSQL v3 wire protocol: frame scanning, startup packets, the frontend messages the
// proxy reads, and the backend messages it writes. Strict and bounded: every length is checked
// against the bytes there and the configured maximum before anything is read.
#include <cstdio>
#include <cstring>

#include "pg/pg.h"

namespace ficus::pg {

uint32_t ReadInt32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
uint16_t ReadInt16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
void AppendInt32(std::string& out, uint32_t v) {
  const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}
void AppendInt16(std::string& out, uint16_t v) {
  const char b[2] = {char(v >> 8), char(v)};
  out.append(b, 2);
}

namespace {

ProtocolError Violation(std::string message) { return {"08P01", std::move(message)}; }

// Reads NUL-terminated strings, 16- and 32-bit integers from a message body, remembering the
// first failure.
class Reader {
 public:
  explicit Reader(std::string_view body) : rest_(body) {}
  bool String(std::string_view* out) {
    const size_t nul = rest_.find('\0');
    if (nul == std::string_view::npos) return Fail();
    *out = rest_.substr(0, nul);
    rest_.remove_prefix(nul + 1);
    return true;
  }
  bool Int16(uint16_t* out) {
    if (rest_.size() < 2) return Fail();
    *out = ReadInt16(rest_.data());
    rest_.remove_prefix(2);
    return true;
  }
  bool Int32(uint32_t* out) {
    if (rest_.size() < 4) return Fail();
    *out = ReadInt32(rest_.data());
    rest_.remove_prefix(4);
    return true;
  }
  bool Skip(size_t n) {
    if (rest_.size() < n) return Fail();
    rest_.remove_prefix(n);
    return true;
  }
  bool Byte(char* out) {
    if (rest_.empty()) return Fail();
    *out = rest_[0];
    rest_.remove_prefix(1);
    return true;
  }
  bool ok() const { return ok_; }
  bool AtEnd() const { return ok_ && rest_.empty(); }

 private:
  bool Fail() {
    ok_ = false;
    return false;
  }
  std::string_view rest_;
  bool ok_ = true;
};

ProtocolError Result(const Reader& r, const char* what) {
  if (!r.ok()) return Violation(std::string("invalid ") + what + " message: truncated");
  if (!r.AtEnd()) return Violation(std::string("invalid ") + what + " message: trailing bytes");
  return {};
}

bool KnownFrontend(char t) {
  switch (t) {
    case 'B':
    case 'C':
    case 'd':
    case 'c':
    case 'f':
    case 'D':
    case 'E':
    case 'H':
    case 'F':
    case 'p':
    case 'P':
    case 'Q':
    case 'S':
    case 'X':
      return true;
    default:
      return false;
  }
}

bool KnownBackend(char t) {
  switch (t) {
    case 'R':
    case 'K':
    case '2':
    case '3':
    case 'C':
    case 'd':
    case 'c':
    case 'G':
    case 'H':
    case 'W':
    case 'D':
    case 'I':
    case 'E':
    case 'V':
    case 'v':
    case 'n':
    case 'N':
    case 'A':
    case 't':
    case 'S':
    case '1':
    case 's':
    case 'Z':
    case 'T':
      return true;
    default:
      return false;
  }
}

}  // namespace

const std::string* StartupPacket::Get(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return &v;
  }
  return nullptr;
}

Frame ScanStartupFrame(std::string_view buf) {
  Frame f;
  if (buf.size() < 4) return f;
  const uint32_t len = ReadInt32(buf.data());
  if (len < 8 || len > kMaxStartupPacket) {
    f.status = Frame::Status::kError;
    f.error = Violation("invalid length of startup packet");
    return f;
  }
  f.size = len;
  if (buf.size() >= len) f.status = Frame::Status::kComplete;
  return f;
}

Frame ScanMessageFrame(std::string_view buf, uint32_t max_size, bool frontend) {
  Frame f;
  if (buf.empty()) return f;
  f.type = buf[0];
  if (!(frontend ? KnownFrontend(f.type) : KnownBackend(f.type))) {
    f.status = Frame::Status::kError;
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02x", static_cast<unsigned char>(f.type));
    f.error = Violation(std::string("invalid ") + (frontend ? "frontend" : "backend") +
                        " message type " + hex);
    return f;
  }
  if (buf.size() < 5) return f;
  const uint32_t len = ReadInt32(buf.data() + 1);
  if (len < 4) {
    f.status = Frame::Status::kError;
    f.error = Violation("invalid message length");
    return f;
  }
  if (len > max_size - 1 || len + 1 > max_size) {
    f.status = Frame::Status::kError;
    f.error = {"54000", "message of " + std::to_string(len + 1) + " bytes exceeds the limit of " +
                            std::to_string(max_size) + " bytes"};
    return f;
  }
  f.size = len + 1;
  if (buf.size() >= f.size) f.status = Frame::Status::kComplete;
  return f;
}

ProtocolError ParseStartupPacket(std::string_view packet, StartupPacket* out) {
  const uint32_t code = ReadInt32(packet.data() + 4);
  std::string_view body = packet.substr(8);
  if (code == kSslRequestCode || code == kGssEncRequestCode) {
    if (!body.empty()) return Violation("invalid length of startup packet");
    out->kind = code == kSslRequestCode ? StartupPacket::Kind::kSsl : StartupPacket::Kind::kGssEnc;
    return {};
  }
  if (code == kCancelRequestCode) {
    if (body.size() != 8) return Violation("invalid length of cancel request packet");
    out->kind = StartupPacket::Kind::kCancel;
    out->cancel_pid = ReadInt32(body.data());
    out->cancel_key = ReadInt32(body.data() + 4);
    return {};
  }
  if (code >> 16 != 3) {
    return {"0A000", "unsupported frontend protocol " + std::to_string(code >> 16) + "." +
                         std::to_string(code & 0xffff) + ": server supports 3.0"};
  }
  out->kind = StartupPacket::Kind::kStartup;
  // name\0value\0 ... \0
  Reader r(body);
  for (;;) {
    std::string_view name, value;
    if (!r.String(&name)) return Violation("invalid startup packet layout: expected terminator");
    if (name.empty()) break;
    if (!r.String(&value)) return Violation("invalid startup packet layout: missing value");
    for (const auto& [k, v] : out->params) {
      if (k == name) return Violation("duplicate startup parameter \"" + std::string(name) + "\"");
    }
    out->params.emplace_back(std::string(name), std::string(value));
  }
  if (!r.AtEnd()) return Violation("invalid startup packet layout: bytes after the terminator");
  if (!out->Get("user")) return {"28000", "no PostgreSQL user name specified in startup packet"};
  return {};
}

ProtocolError ParseParse(std::string_view body, ParseMessage* out) {
  Reader r(body);
  r.String(&out->statement) && r.String(&out->query) && r.Int16(&out->param_types) &&
      r.Skip(size_t{out->param_types} * 4);
  return Result(r, "Parse");
}

ProtocolError ParseBind(std::string_view body, BindMessage* out) {
  Reader r(body);
  uint16_t formats = 0, results = 0;
  if (r.String(&out->portal) && r.String(&out->statement) && r.Int16(&formats) &&
      r.Skip(size_t{formats} * 2) && r.Int16(&out->params)) {
    for (uint16_t i = 0; i < out->params && r.ok(); ++i) {
      uint32_t len = 0;
      if (!r.Int32(&len)) break;
      if (len != 0xffffffffu) r.Skip(len);  // -1: NULL
    }
    if (r.ok() && r.Int16(&results)) r.Skip(size_t{results} * 2);
  }
  return Result(r, "Bind");
}

ProtocolError ParseTarget(std::string_view body, TargetMessage* out) {
  Reader r(body);
  if (r.Byte(&out->what) && out->what != 'S' && out->what != 'P')
    return Violation("invalid Describe/Close target: expected 'S' or 'P'");
  r.String(&out->name);
  return Result(r, "Describe/Close");
}

ProtocolError ParseQuery(std::string_view body, std::string_view* sql) {
  Reader r(body);
  r.String(sql);
  return Result(r, "Query");
}

ProtocolError ParseExecute(std::string_view body, std::string_view* portal) {
  Reader r(body);
  uint32_t rows = 0;
  r.String(portal) && r.Int32(&rows);
  return Result(r, "Execute");
}

ProtocolError CheckFrontendMessage(char type, std::string_view body) {
  switch (type) {
    case 'P': {
      ParseMessage m;
      return ParseParse(body, &m);
    }
    case 'B': {
      BindMessage m;
      return ParseBind(body, &m);
    }
    case 'D':
    case 'C': {
      TargetMessage m;
      return ParseTarget(body, &m);
    }
    case 'Q': {
      std::string_view sql;
      return ParseQuery(body, &sql);
    }
    case 'E': {
      std::string_view portal;
      return ParseExecute(body, &portal);
    }
    case 'S':
    case 'H':
    case 'X':
    case 'c':
      if (!body.empty())
        return Violation(std::string("invalid message: '") + type + "' has a body");
      return {};
    case 'f': {
      Reader r(body);
      std::string_view why;
      r.String(&why);
      return Result(r, "CopyFail");
    }
    default:  // 'd' CopyData, 'p' password/SASL, 'F' FunctionCall: opaque here
      return {};
  }
}

void AppendMessage(std::string& out, char type, std::string_view body) {
  out.push_back(type);
  AppendInt32(out, static_cast<uint32_t>(body.size() + 4));
  out.append(body);
}

void AppendErrorResponse(std::string& out, const char* severity, const char* sqlstate,
                         std::string_view message) {
  std::string body;
  body += 'S';
  body += severity;
  body += '\0';
  body += 'V';
  body += severity;
  body += '\0';
  body += 'C';
  body += sqlstate;
  body += '\0';
  body += 'M';
  for (char c : message) body += c == '\0' ? ' ' : c;
  body += '\0';
  body += '\0';
  AppendMessage(out, 'E', body);
}

void AppendReadyForQuery(std::string& out, char status) {
  AppendMessage(out, 'Z', std::string_view(&status, 1));
}

void AppendParameterStatus(std::string& out, std::string_view name, std::string_view value) {
  std::string body(name);
  body += '\0';
  body += value;
  body += '\0';
  AppendMessage(out, 'S', body);
}

}  // namespace ficus::pg
