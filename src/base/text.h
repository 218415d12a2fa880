// Escaping text for the formats ficus writes off the request path: JSON strings (capture
// files, reports) and HTML text (the self-contained reports). One place, so every writer
// escapes the same way.
#pragma once

#include <string>
#include <string_view>

namespace ficus {

// Appends `s` as a JSON string literal, quotes included. UTF-8 passes through unchanged;
// `"`, `\` and control bytes (below 0x20, and DEL) are escaped. REQUIRES nothing of `s`:
// invalid UTF-8 passes through as bytes (callers that need valid JSON check first).
void AppendJsonString(std::string& out, std::string_view s);
std::string JsonString(std::string_view s);

// `s` as HTML text or attribute value: `<`, `>`, `&`, `"` and `'` become entities; control
// bytes other than tab, line feed and carriage return are dropped (they are not allowed in
// HTML text).
std::string HtmlEscape(std::string_view s);

}  // namespace ficus
