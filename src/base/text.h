// Text for the formats ficus writes off the request path: printf-style formatting and HTML text
// (the self-contained reports) here, JSON strings in base/json.h (included for the writers that
// use both). One place each, so every writer formats and escapes the same way.
#pragma once

#include <string>
#include <string_view>

#include "base/json.h"

namespace ficus {

// `s` as HTML text or attribute value: `<`, `>`, `&`, `"` and `'` become entities; control
// bytes other than tab, line feed and carriage return are dropped (they are not allowed in
// HTML text).
std::string HtmlEscape(std::string_view s);

// printf into a string of whatever length it takes (the compiler checks the arguments against
// the format). For reports, messages and findings; the request path writes its own bytes.
std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace ficus
