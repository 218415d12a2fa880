// POST /cache/purge: the admin's way to remove stored responses (by key, key prefix, tag, or
// everything; optionally one route's cache only). Token required; every attempt audited.
#include "base/json.h"
#include "server/internal/admin_api.h"

namespace ficus::server {

namespace {

AdminResponse Reply(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// {"error": code, "detail": detail}, as the admin API's other errors.
AdminResponse Refuse(int status, std::string_view code, std::string_view detail) {
  JsonWriter w;
  w.BeginObject().Key("error").String(code).Key("detail").String(detail).EndObject();
  return Reply(status, w.Take());
}

}  // namespace

AdminResponse PostCachePurge(const AdminRequest& req, const AdminApiContext& ctx) {
  constexpr std::string_view kAction = "POST /cache/purge";
  if (Outcome<> auth = RequireToken(req, ctx, kAction); !auth) {
    return Refuse(401, "unauthorized", auth.message());
  }
  cache::PurgeRequest purge;
  std::optional<std::string> value;
  int selectors = 0;
  for (auto [name, kind] : {std::pair{"key", cache::PurgeRequest::Kind::kKey},
                            std::pair{"prefix", cache::PurgeRequest::Kind::kPrefix},
                            std::pair{"tag", cache::PurgeRequest::Kind::kTag},
                            std::pair{"all", cache::PurgeRequest::Kind::kAll}}) {
    if (auto v = QueryParam(req.query, name)) {
      ++selectors;
      purge.kind = kind;
      value = std::move(v);
    }
  }
  const std::optional<std::string> route = QueryParam(req.query, "route");
  if (selectors != 1 || (purge.kind != cache::PurgeRequest::Kind::kAll && value->empty())) {
    const std::string detail = "exactly one of key=URL, prefix=P, tag=T or all=1 is required";
    AuditAuthorized(req, ctx, kAction, "bad_request", detail);
    return Refuse(400, "bad_request", detail);
  }
  if (purge.kind != cache::PurgeRequest::Kind::kAll) purge.value = *value;
  if (route) purge.route = *route;
  const size_t removed = ctx.cache_purge(purge);
  std::string detail = std::string(req.query.substr(0, 200)) + ": " + std::to_string(removed);
  AuditAuthorized(req, ctx, kAction, "ok", std::move(detail));
  JsonWriter w;
  w.BeginObject().Key("removed").Uint(removed).EndObject();
  return Reply(200, w.Take());
}

}  // namespace ficus::server
