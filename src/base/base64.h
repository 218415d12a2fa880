// Base64 (RFC 4648 §4) and base64url (§5): the one codec for every format ficus reads or writes
// (recorded bodies, replayed captures, webhook signatures and secrets).
#pragma once

#include <string>
#include <string_view>

namespace ficus {

// `data` as padded base64 appended to `out`.
void AppendBase64(std::string& out, std::string_view data);
std::string EncodeBase64(std::string_view data);

// Decodes padded or unpadded base64 (`url`: the URL-safe alphabet, `-` and `_`), appending to
// *out. False, with *out unspecified, on a character outside the alphabet, data after padding,
// or a length no encoder produces (one character left over).
bool DecodeBase64(std::string_view text, std::string* out, bool url = false);

}  // namespace ficus
