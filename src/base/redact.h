// Credentials never leave the process: the one redaction every copy of traffic goes through
// (error samples, captures of `record:`, the access log, traces). What is a credential: the
// standard fields (Authorization, Proxy-Authorization, Cookie, Set-Cookie), the fields and query
// parameters the running config names (the auth policies' API-key header and query parameter,
// via SetCredentialNames), and any JWT anywhere. Runs on the threads that copy traffic out
// (admin, capture writer, access-log writer, trace exporter), never on a worker.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ficus {

// The credentials the running config names beyond the standard fields (the auth policies'
// API-key fields and query parameters). Any thread; set when a config is applied.
void SetCredentialNames(std::vector<std::string> fields, std::vector<std::string> query_params);

// In `head` (an HTTP head, CRLF lines; anything else is treated the same) the values of the
// credential fields become "<redacted>", so do the values of the named query parameters in the
// request target, and any JWT anywhere becomes "<redacted-jwt>".
std::string RedactHead(std::string_view head);

// One field of a head: true when `name` is a credential field (its value is never kept).
bool IsCredentialField(std::string_view name);
// A request target: the named query parameters' values become "<redacted>", JWTs
// "<redacted-jwt>".
std::string RedactTarget(std::string_view target);
// Any other text (a field value, a path, a body): every JWT becomes "<redacted-jwt>".
std::string RedactJwts(std::string_view text);
// Whether `text` holds something RedactJwts would replace (a cheap scan, for the common case).
bool HasJwt(std::string_view text);

}  // namespace ficus
