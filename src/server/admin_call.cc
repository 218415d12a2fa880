// The command-line tools' call to the admin API (internal/admin_call.h).
#include "server/internal/admin_call.h"

#include <chrono>
#include <cstdio>

#include "config/config.h"

namespace ficus::server {

int CallAdminApi(const std::string& config_path, client::Request req, const char* tool) {
  config::LoadResult loaded = config::LoadFile(config_path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 1;
  }
  const config::Config& c = *loaded.config;
  if (!c.admin.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + c.admin.token);
  client::Url url;
  std::string error;
  if (!client::ParseUrl("http://" + c.admin.Address() + "/", &url, &error)) {
    std::fprintf(stderr, "%s: admin address %s: %s\n", tool, c.admin.Address().c_str(),
                 error.c_str());
    return 1;
  }
  client::Response r = client::Fetch(url, req, std::chrono::seconds(30));
  if (r.status == 0) {
    std::fprintf(stderr, "%s: %s: %s\n", tool, c.admin.Address().c_str(), r.error.c_str());
    return 1;
  }
  std::fwrite(r.body.data(), 1, r.body.size(), stdout);
  if (!r.body.empty() && r.body.back() != '\n') std::fputc('\n', stdout);
  return r.status >= 200 && r.status < 300 ? 0 : 1;
}

}  // namespace ficus::server
