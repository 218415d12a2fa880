// The PostgreSQL proxy through the admin API: GET /pg (pools, query fingerprints, slow queries,
// per-trace groups), POST /pg/pause and /pg/resume (token, audited); and `ficus pg ...`.
#include <chrono>
#include <cstdio>

#include "base/json.h"
#include "client/client.h"
#include "pg/pg.h"
#include "server/internal/admin_api.h"
#include "server/server.h"

namespace ficus::server {

std::optional<AdminResponse> HandlePgApi(const AdminRequest& req, const AdminApiContext& ctx) {
  if (!ctx.pg || (req.path != "/pg" && req.path != "/pg/pause" && req.path != "/pg/resume"))
    return std::nullopt;
  AdminResponse r;
  if (req.path == "/pg") {
    if (req.method != "GET" && req.method != "HEAD") {
      r.status = 405;
      r.body = R"({"error":"method_not_allowed","detail":"GET, HEAD"})";
      return r;
    }
    r.body = ctx.pg->StatusJson();
    return r;
  }
  if (req.method != "POST") {
    r.status = 405;
    r.body = R"({"error":"method_not_allowed","detail":"POST"})";
    return r;
  }
  const std::string action = "POST " + req.path;
  if (Outcome<> auth = RequireToken(req, ctx, action); !auth) {
    JsonWriter w;
    w.BeginObject().Key("error").String("unauthorized").Key("detail").String(auth.message());
    w.EndObject();
    r.status = 401;
    r.body = w.Take();
    return r;
  }
  const bool pause = req.path == "/pg/pause";
  const bool was = ctx.pg->paused();
  if (pause) {
    ctx.pg->Pause();
  } else {
    ctx.pg->Resume();
  }
  AuditAuthorized(req, ctx, action, "ok",
                  was == pause ? "unchanged" : (pause ? "paused" : "resumed"));
  JsonWriter w;
  w.BeginObject().Key("paused").Bool(pause).EndObject();
  r.body = w.Take();
  return r;
}

int PgCommand(const std::string& config_path, const std::string& action) {
  config::LoadResult loaded = config::LoadFile(config_path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 1;
  }
  const config::Config& c = *loaded.config;
  client::Request req;
  if (action == "pause" || action == "resume") {
    req.method = "POST";
    req.target = "/pg/" + action;
  } else if (action == "status") {
    req.target = "/pg";
  } else {
    std::fprintf(stderr, "pg: unknown action '%s' (pause, resume, status)\n", action.c_str());
    return 2;
  }
  if (!c.admin.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + c.admin.token);
  client::Url url;
  std::string error;
  if (!client::ParseUrl("http://" + c.admin.Address() + "/", &url, &error)) {
    std::fprintf(stderr, "pg: admin address %s: %s\n", c.admin.Address().c_str(), error.c_str());
    return 1;
  }
  client::Response r = client::Fetch(url, req, std::chrono::seconds(30));
  if (r.status == 0) {
    std::fprintf(stderr, "pg: %s: %s\n", c.admin.Address().c_str(), r.error.c_str());
    return 1;
  }
  std::fwrite(r.body.data(), 1, r.body.size(), stdout);
  std::fputc('\n', stdout);
  return r.status >= 200 && r.status < 300 ? 0 : 1;
}

}  // namespace ficus::server
