// Fuzzes what the job URL and callbacks parse from clients: job ids (queue::internal::ParseJobId,
// the last path segment of every job URL) and base64 (ficus::DecodeBase64, webhook secrets and
// replayed bodies). Invariants, for every input:
//  - an id that parses is 48 lower-case hex digits, and JobId(seq, token) gives it back;
//  - base64 that decodes (either alphabet) encodes back to the same data, and that encoding
//    decodes to it again; a decode never reads past its input (ASan).
#include <cstdint>
#include <string>
#include <string_view>

#include "base/base64.h"
#include "fuzz/fuzz_check.h"
#include "queue/internal/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  int64_t seq = 0;
  std::string_view token;
  if (ficus::queue::internal::ParseJobId(in, &seq, &token)) {
    FUZZ_CHECK(in.size() == ficus::queue::internal::kJobIdSize);
    FUZZ_CHECK(seq >= 0);
    FUZZ_CHECK(ficus::queue::internal::JobId(seq, token) == in);
  }
  for (bool url : {false, true}) {
    std::string decoded;
    if (!ficus::DecodeBase64(in, &decoded, url)) continue;
    FUZZ_CHECK(decoded.size() <= in.size());
    std::string again;
    const std::string encoded = ficus::EncodeBase64(decoded);
    FUZZ_CHECK(ficus::DecodeBase64(encoded, &again));
    FUZZ_CHECK(again == decoded);
  }
  return 0;
}
