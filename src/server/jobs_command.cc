// `ficus jobs ...`: the admin API's job endpoints from the command line (the one HTTP client).
#include <cctype>
#include <cstdio>
#include <utility>

#include "client/client.h"
#include "server/internal/admin_call.h"
#include "server/server.h"

namespace ficus::server {

namespace {

// Percent-encodes a query value (ids, queue names and states are plain already; this keeps a
// typo from becoming another parameter).
std::string Encode(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

int JobsCommand(const std::string& config_path, const std::string& action, const std::string& arg,
                const std::string& queue, int limit) {
  client::Request req;
  std::string query;
  auto add = [&query](std::string_view k, std::string_view v) {
    if (v.empty()) return;
    query += (query.empty() ? "?" : "&") + std::string(k) + "=" + Encode(v);
  };
  add("queue", queue);
  if (action == "list" || action == "dead") {
    req.target = action == "dead" ? "/jobs/dead" : "/jobs";
    if (action == "list") add("state", arg);
    if (limit > 0) add("limit", std::to_string(limit));
  } else if (action == "show") {
    req.target = "/jobs/" + Encode(arg);
  } else if (action == "retry") {
    req.method = "POST";
    req.target = "/jobs/" + Encode(arg) + "/retry";
  } else if (action == "purge") {
    req.method = "POST";
    req.target = "/jobs/purge";
    add("state", arg);
  } else {
    std::fprintf(stderr, "jobs: unknown action '%s' (list, show, retry, purge, dead)\n",
                 action.c_str());
    return 2;
  }
  req.target += query;
  return CallAdminApi(config_path, std::move(req), "jobs");
}

}  // namespace ficus::server
