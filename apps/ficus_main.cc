// The ficus command line: a thin layer over the server module.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "advisor/advisor.h"
#include "build_info.h"
#include "load/load.h"
#include "prove/prove.h"
#include "server/server.h"
#include "slo/slo.h"

namespace {

// `ficus load`/`ficus replay` given the admin API and its token: the run registers a synthetic
// key so the gateway keeps it out of users' figures (advisor::SyntheticKey), then runs.
int RunLoad(ficus::load::Options& o, const std::string& admin, const std::string& token) {
  if (admin.empty()) return ficus::load::Run(o);  // (a token from the environment alone: unused)
  const char* who = o.replay.empty() ? "ficus load" : "ficus replay";
  std::string hostport = admin;
  if (hostport.rfind("http://", 0) == 0) hostport = hostport.substr(7);
  while (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  const size_t colon = hostport.rfind(':');
  int port = 0;
  if (colon != std::string::npos) port = std::atoi(hostport.c_str() + colon + 1);
  if (token.empty() || colon == std::string::npos || port < 1 || port > 65535) {
    std::fprintf(stderr,
                 "%s: --admin http://HOST:PORT and --admin-token (or FICUS_ADMIN_TOKEN) go "
                 "together: they mark this run as ficus's own load\n",
                 who);
    return 2;
  }
  std::string host = hostport.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const ficus::advisor::SyntheticKey key(host, port, token, 3600);
  if (key.key().empty()) {
    std::fprintf(stderr, "%s: cannot mark the run as ficus's own load: %s\n", who,
                 key.why().c_str());
    return 2;
  }
  o.synthetic_key = key.key();
  return ficus::load::Run(o);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ficus — the gateway a team puts in front of its application once it has users"};
  app.set_version_flag(
      "--version", std::string("ficus ") + FICUS_VERSION + " (commit " + ficus::kGitCommit + ")");
  app.require_subcommand(1);

  std::string config_path;
  auto* run = app.add_subcommand("run", "Run the gateway");
  run->add_option("-c,--config", config_path, "Config file (YAML)")->required();
  auto* check = app.add_subcommand("check", "Validate a config and print what it would serve");
  check->add_option("-c,--config", config_path, "Config file (YAML)")->required();

  std::string backup_dest, restore_src, data_dir;
  auto* backup = app.add_subcommand(
      "backup", "Copy the data directory's database, consistently, while ficus runs");
  backup->add_option("dest", backup_dest, "Directory to write ficus.db into")->required();
  auto* backup_dir = backup->add_option("--data-dir", data_dir, "The data directory");
  backup->add_option("-c,--config", config_path, "Config file naming data_dir")
      ->excludes(backup_dir);
  auto* restore = app.add_subcommand(
      "restore", "Bring a backup back into the data directory (also while ficus runs)");
  restore->add_option("src", restore_src, "A backup directory (or its ficus.db)")->required();
  auto* restore_dir = restore->add_option("--data-dir", data_dir, "The data directory");
  restore->add_option("-c,--config", config_path, "Config file naming data_dir")
      ->excludes(restore_dir);

  ficus::load::Options lo;
  std::string body;
  auto* load = app.add_subcommand("load",
                                  "Generate HTTP load (open model: latency from the "
                                  "intended send time; --closed: as wrk)");
  load->add_option("url", lo.url,
                   "Target: http://IP[:PORT]/path or http://localhost..., or a scenario "
                   "file (FILE.yaml)")
      ->required();
  load->add_option("--target", lo.target,
                   "http://HOST:PORT for a scenario (overrides its target:)");
  load->add_option("-r,--rate", lo.rate, "Requests per second in total (open model)");
  load->add_option("-p,--profile", lo.profile,
                   "Open model rate over --duration: constant:R, ramp:A..B, steps:R1,R2,..., "
                   "spike:base=R,peak=R,at=DUR,for=DUR");
  load->add_option("--stage", lo.stages,
                   "DUR:PROFILE, e.g. 10s:ramp:0..500 (repeatable: run in order; the "
                   "duration is their sum)");
  load->add_option("-d,--duration", lo.duration, "How long to send (10s, 1m; default 10s)");
  load->add_option("-c,--connections", lo.connections, "Maximum connections in total");
  load->add_option("-t,--threads", lo.threads, "Threads (one event loop each)");
  load->add_option("-m,--method", lo.method, "Request method");
  load->add_option("-H,--header", lo.headers, "Request header 'Name: value' (repeatable)");
  auto* body_opt = load->add_option("--body", body, "Request body");
  load->add_option("--timeout", lo.timeout,
                   "Per-request timeout (also the longest a request "
                   "waits for a connection)");
  load->add_option("--backlog", lo.backlog,
                   "Open model: requests that may wait for a free "
                   "connection before new ones are dropped");
  load->add_flag("--closed", lo.closed,
                 "Closed model: each connection sends as soon as the "
                 "previous response completes");
  load->add_flag("--json", lo.json, "Print the summary as JSON");
  load->add_option("--html", lo.html, "Also write a self-contained HTML report to this file");
  load->add_option("--threshold", lo.thresholds,
                   "e.g. 'p99<300ms', 'errors<1%', 'rate>1000' "
                   "(repeatable; a failure exits 3)");
  std::string load_admin, load_token;
  constexpr const char* kAdminHelp =
      "The gateway's admin API (http://HOST:PORT): with --admin-token, the run is marked as "
      "ficus's own load and kept out of the report's users' figures and the SLOs";
  constexpr const char* kTokenHelp = "The gateway's admin token (for --admin)";
  load->add_option("--admin", load_admin, kAdminHelp);
  load->add_option("--admin-token", load_token, kTokenHelp)->envname("FICUS_ADMIN_TOKEN");

  auto* slo = app.add_subcommand("slo", "Service level objectives (the config's slos:)");
  slo->require_subcommand(1);
  std::string rules_output = "-";
  auto* slo_rules = slo->add_subcommand(
      "rules", "Write equivalent Prometheus recording and alerting rules (promtool-checkable)");
  slo_rules->add_option("-c,--config", config_path, "Config file (YAML)")->required();
  slo_rules->add_option("-o,--output", rules_output, "Rule file to write (default: stdout)");
  ficus::slo::Notifier::Options hook_options;
  int hook_attempts = hook_options.max_attempts;
  auto* slo_hooks = slo->add_subcommand(
      "test-webhooks", "POST a test notification to every SLO webhook (with retries)");
  slo_hooks->add_option("-c,--config", config_path, "Config file (YAML)")->required();
  slo_hooks->add_option("--attempts", hook_attempts, "Attempts per webhook (default 5)")
      ->check(CLI::Range(1, 100));
  ficus::load::Options ro;
  auto* replay = app.add_subcommand(
      "replay", "Re-send a capture written by a route's record: keeping its relative timing");
  replay->add_option("file", ro.replay, "Capture file (JSON Lines)")->required();
  replay->add_option("--target", ro.target, "Where to send: http://IP:PORT")->required();
  replay->add_option("--speed", ro.speed, "Timing factor: 2x is twice as fast (default 1x)");
  replay->add_flag("--loop", ro.loop,
                   "Start over at the end, until --duration (without it: until SIGINT/SIGTERM, "
                   "which prints the summary)");
  replay->add_option("-d,--duration", ro.duration, "With --loop: how long to send");
  replay->add_option("--host", ro.host, "Replace the captured Host header with NAME")
      ->type_name("NAME");
  replay->add_option("--max-wait", ro.max_wait,
                     "Shorten longer gaps between requests to this (after --speed)");
  replay->add_option("--filter", ro.filters,
                     "method=GET, path=/api (prefix), route=NAME or header:NAME=VALUE; KEY!=VALUE "
                     "leaves those out (repeatable: filters of one key are alternatives, every "
                     "key must match)");
  replay->add_option("-c,--connections", ro.connections, "Maximum connections in total");
  replay->add_option("-t,--threads", ro.threads, "Threads (one event loop each)");
  replay->add_option("--timeout", ro.timeout, "Per-request timeout");
  replay->add_flag("--json", ro.json, "Print the summary as JSON");
  replay->add_option("--html", ro.html, "Also write a self-contained HTML report to this file");
  replay->add_option("--threshold", ro.thresholds, "As for ficus load (a failure exits 3)");
  replay->add_option("--admin", load_admin, kAdminHelp);
  replay->add_option("--admin-token", load_token, kTokenHelp)->envname("FICUS_ADMIN_TOKEN");

  ficus::advisor::AssessOptions ao;
  auto* assess = app.add_subcommand(
      "assess",
      "Find each route's (or a scenario's) capacity knee with a step load through "
      "the running gateway; records it in the telemetry store");
  assess->add_option("-c,--config", ao.config_path, "Config file (YAML)")->required();
  assess->add_option("--max-rate", ao.max_rate, "Envelope: the highest rate tried (req/s)")
      ->required();
  assess->add_option("--max-duration", ao.max_duration, "Envelope: total time (default 60s)");
  assess->add_option("--routes", ao.routes, "Routes to assess (default: every route)")
      ->delimiter(',');
  assess->add_option("--scenario", ao.scenario, "A `ficus load` scenario file instead");
  assess->add_option("--p99", ao.p99, "Latency threshold where no SLO sets one (default 500ms)");
  assess->add_option("--steps", ao.steps, "Steps up to --max-rate (default 5)");
  assess->add_option("--connections", ao.connections, "Load connections (default 64)");
  assess->add_option("--data-dir", ao.data_dir, "Telemetry data directory (default: config's)");
  assess->add_flag("--json", ao.json, "Print the results as JSON");
  ficus::prove::Options po;
  auto* prove = app.add_subcommand(
      "prove",
      "Apply a finding's remedy through the admin API, run the same load before and after, and "
      "keep the change only when the statistics say it helped (else restore the old config)");
  prove->add_option("findings", po.findings,
                    "Findings to prove: cache:catalog, offload:signup, noisy_client:key:NAME, a "
                    "kind or a route (see `ficus report`)");
  prove->add_option("-c,--config", po.config_path, "The running gateway's config (YAML)")
      ->required();
  prove->add_flag("--all", po.all, "Every finding whose remedy ficus can apply");
  prove->add_flag("--dry-run", po.dry_run, "Show each change as a config diff and stop");
  prove->add_flag("-y,--yes", po.yes, "Run even when the gateway serves live traffic");
  prove->add_flag("--keep-inconclusive", po.keep_inconclusive,
                  "Keep a change the statistics call neither better nor worse (default: revert)");
  prove->add_flag("--save", po.save, "Write the kept changes into the config file (FILE.bak kept)");
  prove->add_option("--scenario", po.scenario,
                    "A `ficus load` scenario (e.g. the traffic mix) whose requests the loads send");
  prove->add_option("--replay", po.replay,
                    "A `record:` capture: a route's finding is measured by replaying its recorded "
                    "requests to the route (paths, query strings, timing), before and after; a "
                    "noisy client's by replaying the others' requests beside the client's own");
  prove->add_option("--speed", po.speed, "With --replay: 2x, 0.5x (default 1x)");
  prove->add_option("--period", po.period, "Telemetry the findings come from (default 1h)");
  prove->add_option("--max-rate", po.max_rate,
                    "Top rate of the step load, req/s (default: the route's last assessment's, "
                    "else 100)");
  prove->add_option("--steps", po.steps, "Steps up to --max-rate (default 4)");
  prove->add_option("--step-duration", po.step_duration, "Length of each step (default 3s)");
  prove->add_option("--others-rate", po.others_rate,
                    "Noisy client: the other clients' rate (default max-rate / 4; with --replay "
                    "the capture's)");
  prove->add_option("--flood-rate", po.flood_rate,
                    "Noisy client: the noisy client's flood rate (default max-rate; with --replay "
                    "the capture's)");
  prove->add_option("--max-duration", po.max_duration, "Bound on the whole run (default 10m)");
  prove->add_option("--settle", po.settle, "Wait after each reload before measuring (default 1s)");
  prove->add_option("--connections", po.connections, "Load connections (default 64)");
  prove->add_option("--alpha", po.alpha, "Significance level of each test (default 0.01)");
  prove->add_option("--min-effect", po.min_effect,
                    "Least relative improvement that counts, p99 or errors (default 0.2)");
  prove->add_option("--p99", po.p99, "Latency target where no SLO sets one (default 500ms)");
  prove->add_option("--data-dir", po.data_dir, "Telemetry data directory (default: config's)");
  prove->add_flag("--json", po.json, "Print the results as JSON");
  ficus::advisor::ReportOptions rpo;
  auto* report = app.add_subcommand(
      "report", "The scaling report: traffic, latency, SLOs, triggers, remedies, capacity");
  report->add_option("-c,--config", rpo.config_path, "Config file (routes, SLOs, data_dir)");
  report->add_option("--data-dir", rpo.data_dir, "Telemetry data directory");
  report->add_option("--period", rpo.period,
                     "How long: 10m, 1h, 24h, 7d (default 24h), up to now, or from --from or to "
                     "--to");
  report->add_option("--from", rpo.from,
                     "Start: a time ago (2h, now-90m), a UTC time (2026-12-04T21:00:00Z) or "
                     "@UNIX_SECONDS");
  report->add_option("--to", rpo.to, "End, in the same forms as --from (default: now)");
  report->add_option("--format", rpo.format, "text, markdown, json or html (default text)");
  report->add_option("-o,--output", rpo.output, "Write to this file (default stdout)");
  report->add_option("--instance-price", rpo.instance_price,
                     "Price per instance: 50/month (default) or 0.07/hour");
  report->add_option("--active-users", rpo.active_users,
                     "Active users for cost per user (default: distinct clients seen)");

  std::string pg_action, pg_arg;
  bool pg_analyze = false;
  auto* pg_cmd = app.add_subcommand(
      "pg",
      "The PostgreSQL proxy of a running gateway through its admin API (pause, resume, status, "
      "explain FINGERPRINT)");
  pg_cmd->add_option("action", pg_action, "pause, resume, status or explain")->required();
  pg_cmd->add_option("fingerprint", pg_arg, "explain: the query's fingerprint (GET /pg)");
  pg_cmd->add_flag("--analyze", pg_analyze,
                   "explain: EXPLAIN ANALYZE (runs the query, in a read-only transaction that is "
                   "rolled back; SELECTs only)");
  pg_cmd->add_option("-c,--config", config_path, "Config file (admin address and token)")
      ->required();
  std::string jobs_action, jobs_arg, jobs_queue;
  int jobs_limit = 0;
  auto* jobs = app.add_subcommand(
      "jobs", "The job queue of a running gateway (async offload) through its admin API");
  jobs->add_option("action", jobs_action, "list [STATE], show ID, retry ID, purge STATE, dead")
      ->required();
  jobs->add_option("arg", jobs_arg, "The job id, or the state (queued, running, succeeded, ...)");
  jobs->add_option("-c,--config", config_path, "Config file (admin address and token)")->required();
  jobs->add_option("--queue", jobs_queue, "Only this queue");
  jobs->add_option("--limit", jobs_limit, "At most this many jobs (list, dead; default 100)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc != 0 && (load->parsed() || replay->parsed())
               ? 2
               : rc;  // `ficus load`: bad input is exit code 2
  }
  if (run->parsed()) return ficus::server::Run(config_path);
  if (check->parsed()) return ficus::server::Check(config_path);
  if (backup->parsed() || restore->parsed()) {
    // The data directory: --data-dir, else the config's data_dir, else the default.
    if (data_dir.empty() && !config_path.empty()) {
      auto dir = ficus::server::DataDirOf(config_path);
      if (!dir) return 1;
      data_dir = *dir;
    }
    if (data_dir.empty()) data_dir = "./ficus-data";
    return backup->parsed() ? ficus::server::Backup(data_dir, backup_dest)
                            : ficus::server::Restore(restore_src, data_dir);
  }
  if (slo_rules->parsed()) return ficus::slo::RulesCommand(config_path, rules_output);
  if (slo_hooks->parsed()) {
    hook_options.max_attempts = hook_attempts;
    return ficus::slo::TestWebhooksCommand(config_path, hook_options);
  }
  if (load->parsed()) {
    if (*body_opt) lo.body = body;
    return RunLoad(lo, load_admin, load_token);
  }
  if (replay->parsed()) return RunLoad(ro, load_admin, load_token);
  if (assess->parsed()) return ficus::advisor::AssessCommand(ao);
  if (report->parsed()) return ficus::advisor::ReportCommand(rpo);
  if (prove->parsed()) return ficus::prove::ProveCommand(po);
  if (pg_cmd->parsed()) return ficus::server::PgCommand(config_path, pg_action, pg_arg, pg_analyze);
  if (jobs->parsed())
    return ficus::server::JobsCommand(config_path, jobs_action, jobs_arg, jobs_queue, jobs_limit);
  return 2;
}
