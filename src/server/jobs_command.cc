// `ficus jobs ...`: the admin API's job endpoints from the command line (the one HTTP client).
#include <cctype>
#include <chrono>
#include <cstdio>

#include "client/client.h"
#include "config/config.h"
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
  config::LoadResult loaded = config::LoadFile(config_path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 1;
  }
  const config::Config& c = *loaded.config;
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
  // The token goes in the header only; it is never printed.
  if (!c.admin.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + c.admin.token);
  client::Url url;
  std::string error;
  if (!client::ParseUrl("http://" + c.admin.Address() + "/", &url, &error)) {
    std::fprintf(stderr, "jobs: admin address %s: %s\n", c.admin.Address().c_str(), error.c_str());
    return 1;
  }
  client::Response r = client::Fetch(url, req, std::chrono::seconds(30));
  if (r.status == 0) {
    std::fprintf(stderr, "jobs: %s: %s\n", c.admin.Address().c_str(), r.error.c_str());
    return 1;
  }
  std::fwrite(r.body.data(), 1, r.body.size(), stdout);
  return r.status >= 200 && r.status < 300 ? 0 : 1;
}

}  // namespace ficus::server
