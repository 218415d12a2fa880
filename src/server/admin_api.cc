#include "server/internal/admin_api.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <map>

#include "base/json.h"

namespace ficus::server {
namespace json = boost::json;
namespace {

constexpr size_t kMaxServiceBytes = 256;
constexpr size_t kMaxVersionBytes = 256;
constexpr size_t kMaxNoteBytes = 4096;
constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 10'000;

// `v` as JSON text, its strings (keys included) through base's escaper: Boost.JSON's own
// serializer passes invalid UTF-8 through (an error sample's head or an event's note may carry
// any byte), which makes the document invalid.
void Serialize(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      AppendJsonString(out, v.get_string());
      return;
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, key);
        out += ':';
        Serialize(out, value);
      }
      out += '}';
      return;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const json::value& item : v.get_array()) {
        if (!first) out += ',';
        first = false;
        Serialize(out, item);
      }
      out += ']';
      return;
    }
    default:  // numbers, booleans, null
      out += json::serialize(v);
  }
}

std::string Serialize(const json::value& v) {
  std::string out;
  Serialize(out, v);
  return out;
}

AdminResponse Json(int status, const json::value& v) {
  AdminResponse r;
  r.status = status;
  r.body = Serialize(v);
  return r;
}

AdminResponse Error(int status, std::string_view code, std::string_view detail = {}) {
  json::object o;
  o["error"] = code;
  if (!detail.empty()) o["detail"] = detail;
  return Json(status, o);
}

AdminResponse MethodNotAllowed(const AdminRequest& req, std::string_view allow) {
  AdminResponse r = Error(405, "method_not_allowed", req.method);
  r.allow = allow;
  return r;
}

bool IsGet(const AdminRequest& req) { return req.method == "GET" || req.method == "HEAD"; }

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> Decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = Hex(s[i + 1]);
      const int lo = Hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A parameter as an integer in [min, max]; `fallback` when absent; nullopt when malformed.
std::optional<int64_t> IntParam(const AdminRequest& req, std::string_view key, int64_t fallback,
                                int64_t min, int64_t max) {
  std::optional<std::string> v = QueryParam(req.query, key);
  if (!v) return fallback;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n < min || n > max) return std::nullopt;
  return n;
}

double Round3(double v) { return std::round(v * 1000) / 1000; }

// `with_clients`: only routes count distinct clients (the worker adds each request's client to
// its route's sketch alone), so clusters and endpoints leave the field out rather than say 0.
json::object WindowJson(const telemetry::WindowStats& w, bool with_clients) {
  json::object o;
  o["requests"] = w.requests;
  o["errors"] = w.errors;
  o["rate_rps"] = Round3(w.requests / w.covered_s);
  o["error_ratio"] = w.requests ? Round3(static_cast<double>(w.errors) / w.requests) : 0.0;
  o["bytes_in"] = w.bytes_in;
  o["bytes_out"] = w.bytes_out;
  if (with_clients) o["clients"] = std::round(w.clients);
  if (w.latency.Empty()) {
    o["p50_ms"] = nullptr;
    o["p90_ms"] = nullptr;
    o["p99_ms"] = nullptr;
  } else {
    o["p50_ms"] = Round3(w.latency.PercentileMicros(0.50) / 1000);
    o["p90_ms"] = Round3(w.latency.PercentileMicros(0.90) / 1000);
    o["p99_ms"] = Round3(w.latency.PercentileMicros(0.99) / 1000);
  }
  o["covered_s"] = Round3(w.covered_s);
  return o;
}

AdminResponse Stats(const AdminApiContext& ctx, telemetry::SeriesKind kind) {
  static constexpr std::pair<std::string_view, int64_t> kWindows[] = {
      {"1m", 60'000}, {"5m", 300'000}, {"15m", 900'000}};
  // name -> {window -> stats}, in name order.
  std::map<std::string, json::object> series;
  for (const auto& [label, ms] : kWindows) {
    for (const telemetry::WindowStats& w : ctx.telemetry->Window(kind, ms)) {
      series[w.name][label] = WindowJson(w, kind == telemetry::SeriesKind::kRoute);
    }
  }
  json::array items;
  for (auto& [name, windows] : series) {
    json::object o;
    o["name"] = name;
    o["windows"] = std::move(windows);
    items.push_back(std::move(o));
  }
  json::object out;
  out[std::string(telemetry::SeriesKindName(kind)) + "s"] = std::move(items);
  out["now_ms"] = ctx.telemetry->Now();
  return Json(200, out);
}

AdminResponse Health(const AdminApiContext& ctx) {
  telemetry::Telemetry& t = *ctx.telemetry;
  auto cfg = ctx.config();
  json::object o;
  o["ready"] = ctx.ready();
  o["draining"] = ctx.draining();
  o["workers"] = cfg->workers;
  o["uptime_s"] = Round3((t.Now() - t.started_ms()) / 1000.0);
  json::object store;
  store["path"] = t.store().options().path;
  store["file_bytes"] = t.store().FileBytes();
  store["max_bytes"] = t.store().options().max_bytes;
  store["last_tick_ms"] = t.last_tick_ms();
  store["write_errors"] = t.write_errors();
  store["events_dropped"] = t.events_dropped();
  store["error_samples_dropped"] = t.error_sampler().dropped();
  o["telemetry"] = std::move(store);
  if (ctx.clusters) {
    json::array clusters;
    for (const auto& c : ctx.clusters()) {
      json::object co;
      co["name"] = c->name();
      json::array endpoints;
      size_t available = 0;
      for (size_t i = 0; i < c->endpoint_count(); ++i) {
        json::object e;
        e["address"] = c->address(i).ToString();
        e["healthy"] = c->healthy(i);
        e["ejected"] = c->ejected(i);
        available += c->healthy(i) && !c->ejected(i);
        endpoints.push_back(std::move(e));
      }
      co["available"] = available;
      co["endpoints"] = std::move(endpoints);
      clusters.push_back(std::move(co));
    }
    o["clusters"] = std::move(clusters);
  }
  return Json(200, o);
}

json::object EventJson(const telemetry::Event& e) {
  json::object o;
  o["id"] = e.id;
  o["ts_ms"] = e.ts_ms;
  o["kind"] = e.kind;
  o["service"] = e.service;
  o["version"] = e.version;
  o["note"] = e.note;
  return o;
}

AdminResponse GetEvents(const AdminRequest& req, const AdminApiContext& ctx) {
  auto since = IntParam(req, "since", 0, 0, INT64_MAX);
  auto until = IntParam(req, "until", INT64_MAX, 0, INT64_MAX);
  auto limit = IntParam(req, "limit", kDefaultLimit, 1, kMaxLimit);
  if (!since || !until || !limit) {
    return Error(400, "bad_query", "since and until are milliseconds, limit 1..10000");
  }
  std::string kind = QueryParam(req.query, "kind").value_or("");
  ctx.telemetry->Drain();  // events queued by other threads a moment ago
  json::array items;
  for (const telemetry::Event& e :
       ctx.telemetry->store().Events(*since, *until, kind, static_cast<size_t>(*limit))) {
    items.push_back(EventJson(e));
  }
  json::object out;
  out["events"] = std::move(items);
  return Json(200, out);
}

// The body's string field `key` ("" when absent and not required); fails when it is not a
// string or too long.
Outcome<std::string> StringField(const json::object& o, std::string_view key, size_t max,
                                 bool required) {
  const json::value* v = o.if_contains(key);
  if (!v) {
    if (required) return Failed(std::string(key) + " is required");
    return std::string();
  }
  if (!v->is_string()) return Failed(std::string(key) + " must be a string");
  if (v->as_string().size() > max) {
    return Failed(std::string(key) + " is longer than " + std::to_string(max) + " bytes");
  }
  std::string value(v->as_string());
  if (required && value.empty()) return Failed(std::string(key) + " must not be empty");
  return value;
}

AdminResponse PostEvent(const AdminRequest& req, const AdminApiContext& ctx) {
  constexpr std::string_view kAction = "POST /events";
  if (Outcome<> auth = RequireToken(req, ctx, kAction); !auth)
    return Error(401, "unauthorized", auth.message());
  auto bad = [&](std::string detail) {
    AuditAuthorized(req, ctx, kAction, "bad_request", "");
    return Error(400, "bad_request", detail);
  };
  json::error_code ec;
  json::value body = json::parse(req.body, ec);
  if (ec || !body.is_object()) return bad("the body must be a JSON object");
  telemetry::Telemetry& t = *ctx.telemetry;
  telemetry::Event e;
  e.kind = "deploy";
  e.ts_ms = t.Now();
  const json::object& o = body.as_object();
  for (const auto& [key, value] : o) {
    if (key != "service" && key != "version" && key != "note") {
      return bad("unknown field '" + std::string(key) + "'; expected service, version, note");
    }
  }
  Outcome<std::string> service = StringField(o, "service", kMaxServiceBytes, true);
  if (!service) return bad(service.message());
  Outcome<std::string> version = StringField(o, "version", kMaxVersionBytes, true);
  if (!version) return bad(version.message());
  Outcome<std::string> note = StringField(o, "note", kMaxNoteBytes, false);
  if (!note) return bad(note.message());
  e.service = std::move(*service);
  e.version = std::move(*version);
  e.note = std::move(*note);
  e.id = t.store().AppendEvent(e);
  AuditAuthorized(req, ctx, kAction, "ok", Serialize(EventJson(e)));
  return Json(201, EventJson(e));
}

AdminResponse PostConfig(const AdminRequest& req, const AdminApiContext& ctx) {
  constexpr std::string_view kAction = "POST /config";
  if (Outcome<> auth = RequireToken(req, ctx, kAction); !auth)
    return Error(401, "unauthorized", auth.message());
  Outcome<std::string> applied = ctx.apply_config(req.body);
  AdminResponse r;
  r.status = applied ? 200 : 400;
  r.body = applied ? std::move(applied).value() : applied.message();
  // The detail is what the caller was told: the diff applied, or why nothing changed.
  AuditAuthorized(req, ctx, kAction, r.status == 200 ? "ok" : "rejected", r.body);
  return r;
}

// `ficus assess` registers its per-run secret here before its step load and clears it after;
// the ttl bounds an assessment that dies before clearing (at most an hour).
AdminResponse PostSyntheticKey(const AdminRequest& req, const AdminApiContext& ctx) {
  constexpr std::string_view kAction = "POST /synthetic-key";
  if (Outcome<> auth = RequireToken(req, ctx, kAction); !auth)
    return Error(401, "unauthorized", auth.message());
  auto bad = [&](std::string detail) {
    AuditAuthorized(req, ctx, kAction, "bad_request", detail);
    return Error(400, "bad_request", detail);
  };
  json::error_code ec;
  json::value body = json::parse(req.body, ec);
  if (ec || !body.is_object()) return bad("the body must be a JSON object");
  const json::object& o = body.as_object();
  for (const auto& [key, value] : o) {
    if (key != "key" && key != "ttl_seconds")
      return bad("unknown field '" + std::string(key) + "'; expected key, ttl_seconds");
  }
  Outcome<std::string> field = StringField(o, "key", 64, false);
  if (!field) return bad(field.message());
  if (!o.contains("key")) return bad("key is required");
  const std::string& key = *field;
  if (key.empty()) {
    ctx.synthetic->Clear();
    AuditAuthorized(req, ctx, kAction, "ok", "cleared");
    return Json(200, json::object{{"active", false}});
  }
  int64_t ttl = 600;
  if (const json::value* t = o.if_contains("ttl_seconds")) {
    if (!t->is_int64() || t->as_int64() < 1 || t->as_int64() > 3600)
      return bad("ttl_seconds must be an integer 1..3600");
    ttl = t->as_int64();
  }
  if (!ctx.synthetic->Set(key, MonotonicNanos() + ttl * 1'000'000'000))
    return bad("key must be 32 hex digits");
  AuditAuthorized(req, ctx, kAction, "ok", "set, ttl " + std::to_string(ttl) + " s");
  return Json(200, json::object{{"active", true}, {"ttl_seconds", ttl}});
}

AdminResponse GetErrorSamples(const AdminRequest& req, const AdminApiContext& ctx) {
  auto limit = IntParam(req, "limit", kDefaultLimit, 1, kMaxLimit);
  if (!limit) return Error(400, "bad_query", "limit must be 1..10000");
  std::string route = QueryParam(req.query, "route").value_or("");
  ctx.telemetry->Drain();
  json::array items;
  for (const telemetry::ErrorSample& s :
       ctx.telemetry->store().ErrorSamples(route, static_cast<size_t>(*limit))) {
    json::object o;
    o["id"] = s.id;
    o["ts_ms"] = s.ts_ms;
    o["route"] = s.route;
    o["status"] = s.status;
    o["request_id"] = s.request_id;
    o["request_head"] = s.request_head;
    o["response_head"] = s.response_head;
    items.push_back(std::move(o));
  }
  json::object out;
  out["error_samples"] = std::move(items);
  out["dropped"] = ctx.telemetry->error_sampler().dropped();
  return Json(200, out);
}

AdminResponse GetAudit(const AdminRequest& req, const AdminApiContext& ctx) {
  auto limit = IntParam(req, "limit", kDefaultLimit, 1, kMaxLimit);
  if (!limit) return Error(400, "bad_query", "limit must be 1..10000");
  json::array items;
  for (const telemetry::AuditEntry& a : ctx.telemetry->store().Audit(static_cast<size_t>(*limit))) {
    json::object o;
    o["id"] = a.id;
    o["ts_ms"] = a.ts_ms;
    o["who"] = a.who;
    o["peer"] = a.peer;
    o["action"] = a.action;
    o["outcome"] = a.outcome;
    o["detail"] = a.detail;
    items.push_back(std::move(o));
  }
  json::object out;
  out["audit"] = std::move(items);
  return Json(200, out);
}

}  // namespace

Outcome<> RequireToken(const AdminRequest& req, const AdminApiContext& ctx,
                       std::string_view action) {
  const std::string& token = ctx.config()->admin.token;
  if (TokenMatches(req.authorization, token)) return {};
  ctx.telemetry->store().AppendAudit(
      {0, ctx.telemetry->Now(), "anonymous", req.peer, std::string(action), "unauthorized", ""});
  return Failed(token.empty() ? "admin.token is not set: state-changing endpoints are off"
                              : "a valid 'Authorization: Bearer <admin token>' is required");
}

void AuditAuthorized(const AdminRequest& req, const AdminApiContext& ctx, std::string_view action,
                     std::string_view outcome, std::string detail) {
  ctx.telemetry->store().AppendAudit({0, ctx.telemetry->Now(), "token", req.peer,
                                      std::string(action), std::string(outcome),
                                      std::move(detail)});
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::optional<std::string> name = Decode(pair.substr(0, eq));
    if (!name || *name != key) continue;
    return eq == std::string_view::npos ? std::string() : Decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<AdminResponse> HandleAdminApi(const AdminRequest& req, const AdminApiContext& ctx) {
  if (!ctx.telemetry) return std::nullopt;
  const std::string& p = req.path;
  if (p == "/stats/routes" || p == "/stats/clusters" || p == "/stats/endpoints") {
    if (!IsGet(req)) return MethodNotAllowed(req, "GET, HEAD");
    return Stats(ctx, p == "/stats/routes"     ? telemetry::SeriesKind::kRoute
                      : p == "/stats/clusters" ? telemetry::SeriesKind::kCluster
                                               : telemetry::SeriesKind::kEndpoint);
  }
  if (p == "/health") {
    if (!IsGet(req)) return MethodNotAllowed(req, "GET, HEAD");
    return Health(ctx);
  }
  if (p == "/config" && req.method == "POST" && ctx.apply_config) return PostConfig(req, ctx);
  if (p == "/slo" && ctx.slo_status) {
    if (!IsGet(req)) return MethodNotAllowed(req, "GET, HEAD");
    AdminResponse r;
    r.body = ctx.slo_status();
    return r;
  }
  if (p == "/events") {
    if (IsGet(req)) return GetEvents(req, ctx);
    if (req.method == "POST") return PostEvent(req, ctx);
    return MethodNotAllowed(req, "GET, HEAD, POST");
  }
  if (p == "/synthetic-key" && ctx.synthetic != nullptr) {
    if (req.method == "POST") return PostSyntheticKey(req, ctx);
    return MethodNotAllowed(req, "POST");
  }
  if (p == "/cache/purge" && ctx.cache_purge) {
    if (req.method == "POST") return PostCachePurge(req, ctx);
    return MethodNotAllowed(req, "POST");
  }
  if (p == "/error-samples") {
    if (!IsGet(req)) return MethodNotAllowed(req, "GET, HEAD");
    return GetErrorSamples(req, ctx);
  }
  if (p == "/jobs" || p.rfind("/jobs/", 0) == 0) return HandleJobsApi(req, ctx);
  if (auto r = HandlePgApi(req, ctx)) return r;
  if (p == "/audit") {
    if (!IsGet(req)) return MethodNotAllowed(req, "GET, HEAD");
    return GetAudit(req, ctx);
  }
  return std::nullopt;
}

}  // namespace ficus::server
