// The PostgreSQL proxy through the admin API: GET /pg (pools, query fingerprints, slow queries,
// per-trace groups), POST /pg/pause and /pg/resume (token, audited); and `ficus pg ...`.
#include <cstdio>

#include "base/json.h"
#include "client/client.h"
#include "pg/pg.h"
#include "server/internal/admin_api.h"
#include "server/internal/admin_call.h"
#include "server/server.h"

namespace ficus::server {

namespace {

// POST /pg/explain?fingerprint=HEX[&analyze=1]: the plan of the fingerprint's sampled query,
// audited with its fingerprint and outcome (never its parameters).
AdminResponse HandleExplain(const AdminRequest& req, const AdminApiContext& ctx,
                            const std::string& action) {
  AdminResponse r;
  const std::string fp = QueryParam(req.query, "fingerprint").value_or("");
  const std::string analyze_text = QueryParam(req.query, "analyze").value_or("");
  const bool analyze = analyze_text == "1" || analyze_text == "true";
  JsonWriter w;
  w.BeginObject();
  if (!analyze_text.empty() && !analyze && analyze_text != "0" && analyze_text != "false") {
    r.status = 400;
    w.Key("error").String("bad_query").Key("detail").String("analyze is 1, true, 0 or false");
  } else {
    const pg::Service::ExplainResult e = ctx.pg->Explain(fp, analyze);
    r.status = e.status;
    if (e.status == 200) {
      w.Key("fingerprint").String(fp).Key("analyze").Bool(analyze);
      w.Key("plan").BeginArray();
      for (const std::string& line : e.plan) w.String(line);
      w.EndArray();
      w.Key("indexes").BeginArray();
      for (const pg::Service::IndexAdvice& a : e.indexes) {
        w.BeginObject().Key("table").String(a.table).Key("columns").BeginArray();
        for (const std::string& c : a.columns) w.String(c);
        w.EndArray().Key("statement").String(a.statement).Key("reason").String(a.reason);
        w.EndObject();
      }
      w.EndArray();
    } else {
      w.Key("error").String(e.status == 404 ? "not_found" : "explain_failed");
      w.Key("detail").String(e.error);
    }
  }
  w.EndObject();
  r.body = w.Take();
  AuditAuthorized(req, ctx, action, r.status == 200 ? "ok" : "failed",
                  std::string(analyze ? "EXPLAIN ANALYZE " : "EXPLAIN ") + fp);
  return r;
}

}  // namespace

std::optional<AdminResponse> HandlePgApi(const AdminRequest& req, const AdminApiContext& ctx) {
  if (!ctx.pg || (req.path != "/pg" && req.path != "/pg/pause" && req.path != "/pg/resume" &&
                  req.path != "/pg/explain"))
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
  if (req.path == "/pg/explain") return HandleExplain(req, ctx, action);
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

int PgCommand(const std::string& config_path, const std::string& action, const std::string& arg,
              bool analyze) {
  client::Request req;
  if (action == "pause" || action == "resume") {
    req.method = "POST";
    req.target = "/pg/" + action;
  } else if (action == "status") {
    req.target = "/pg";
  } else if (action == "explain") {
    if (arg.empty() || arg.size() > 16 ||
        arg.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      std::fprintf(stderr,
                   "pg explain: give the query's fingerprint, 1 to 16 hex digits (ficus pg status "
                   "lists them)\n");
      return 2;
    }
    req.method = "POST";
    req.target = "/pg/explain?fingerprint=" + arg + (analyze ? "&analyze=1" : "");
  } else {
    std::fprintf(stderr, "pg: unknown action '%s' (pause, resume, status, explain)\n",
                 action.c_str());
    return 2;
  }
  return CallAdminApi(config_path, std::move(req), "pg");
}

}  // namespace ficus::server
