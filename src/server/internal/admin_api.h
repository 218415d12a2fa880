// The admin JSON API beyond /live, /ready, /config and /metrics: stats per route and cluster
// over the last 1, 5 and 15 minutes, health, the event timeline (POST /events for deploy
// markers), error samples and the audit trail. Runs on the admin thread; reads and writes the
// telemetry store, never touches a worker.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/outcome.h"
#include "cache/cache.h"
#include "config/config.h"
#include "observe/observe.h"
#include "server/internal/admin_server.h"
#include "telemetry/telemetry.h"
#include "upstream/upstream.h"

namespace ficus::server {}  // namespace ficus::server
namespace ficus::pg {
class Service;
}  // namespace ficus::pg
namespace ficus::server {

struct AdminApiContext {
  telemetry::Telemetry* telemetry = nullptr;
  std::function<std::shared_ptr<const config::Config>()> config;  // the running config
  std::function<bool()> ready;
  std::function<bool()> draining;
  // The running snapshot's shared cluster state (GET /health: endpoint health and ejection).
  std::function<std::vector<std::shared_ptr<upstream::ClusterShared>>()> clusters;
  std::function<std::string()> slo_status;  // GET /slo: the latest SLO evaluation (JSON)
  // POST /config: validate and apply a whole config (YAML), as AdminHandlers::apply_config.
  std::function<Outcome<std::string>(std::string_view yaml)> apply_config;
  // POST /synthetic-key: the running assessment's secret (the workers read it).
  observe::SyntheticKey* synthetic = nullptr;
  // POST /cache/purge: removes stored responses from the running snapshot's caches.
  std::function<size_t(const cache::PurgeRequest&)> cache_purge;
  // GET /pg, POST /pg/pause, /pg/resume (pg_admin.cc); null when no listener is postgres.
  pg::Service* pg = nullptr;
};

// GET  /stats/routes, /stats/clusters, /stats/endpoints ("cluster/address")
//                                         per series: 1m, 5m, 15m windows
// GET  /health                            process, telemetry and upstream endpoint state
// GET  /slo                               SLIs, budgets, burn rates and alert states
// GET  /events?since=&until=&kind=&limit= the timeline, newest first (times in ms)
// POST /events {service, version, note}   a deploy marker; bearer token; audited
// POST /config (YAML)                     validate and apply; bearer token; audited
// POST /synthetic-key {key, ttl_seconds}  `ficus assess` registers its per-run secret (32 hex
//                                         digits; "" clears): requests carrying it in
//                                         X-Ficus-Synthetic stay out of the SLOs; bearer
//                                         token; audited (the key itself is not written)
// POST /cache/purge?key=URL|prefix=P|tag=T|all=1[&route=R]
//                                         removes stored responses; bearer token; audited
// GET  /error-samples?route=&limit=       newest first, credentials redacted
// GET  /audit?limit=                      newest first
// Anything else: nullopt (404). A state-changing request without the right token gets 401 and
// is audited too.
std::optional<AdminResponse> HandleAdminApi(const AdminRequest& req, const AdminApiContext& ctx);

// The job queue's endpoints (admin_jobs.cc): GET /jobs[?queue=&state=&limit=],
// GET /jobs/dead[?queue=], GET /jobs/ID; POST /jobs/ID/retry and POST /jobs/purge?state=
// [&queue=] need the token and are audited.
AdminResponse HandleJobsApi(const AdminRequest& req, const AdminApiContext& ctx);
// The PostgreSQL proxy's endpoints (pg_admin.cc); nullopt for other paths.
std::optional<AdminResponse> HandlePgApi(const AdminRequest& req, const AdminApiContext& ctx);

// For every state-changing endpoint: ok when the request carries the admin token. Otherwise
// audits the attempt (who "anonymous", outcome "unauthorized") and fails with the detail of
// the 401 to answer.
Outcome<> RequireToken(const AdminRequest& req, const AdminApiContext& ctx,
                       std::string_view action);
// POST /cache/purge (cache_admin.cc).
AdminResponse PostCachePurge(const AdminRequest& req, const AdminApiContext& ctx);
// Writes one audit entry for an authorized state-changing request (who "token").
void AuditAuthorized(const AdminRequest& req, const AdminApiContext& ctx, std::string_view action,
                     std::string_view outcome, std::string detail);

// The value of `key` in an application/x-www-form-urlencoded query (first occurrence,
// percent-decoded, '+' as space); nullopt when absent or malformed.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key);

}  // namespace ficus::server
