#include "server/server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "base/log.h"
#include "base/outcome.h"
#include "cache/cache.h"
#include "config/config.h"
#include "pg/pg.h"
#include "policy/protect.h"
#include "proxy/proxy.h"
#include "queue/queue.h"
#include "record/record.h"
#include "server/internal/admin_api.h"
#include "server/internal/admin_server.h"
#include "server/internal/config_diff.h"
#include "server/internal/listen_probe.h"
#include "server/internal/slo_runner.h"
#include "server/internal/telemetry_source.h"
#include "telemetry/telemetry.h"
#include "upstream/upstream.h"

namespace ficus::server {
namespace {

// /metrics exports the series of the config that runs: a reload that removes a route, cluster
// or endpoint removes its series too (Registry::SetConfigured).
void ExportSeriesOf(const proxy::Snapshot& snap, observe::Registry& registry) {
  std::vector<const observe::TrafficStats*> endpoints;
  for (const auto& cluster : snap.endpoint_stats) {
    endpoints.insert(endpoints.end(), cluster.begin(), cluster.end());
  }
  registry.SetConfigured(snap.route_stats, snap.cluster_stats, endpoints);
  // SLO latency thresholds are `le` bounds of the route duration histograms, so the rules of
  // `ficus slo rules` count exactly what GET /slo counts.
  std::vector<uint64_t> thresholds;
  for (const config::Slo& slo : snap.config->slos) {
    if (slo.latency) {
      thresholds.push_back(std::chrono::microseconds(slo.latency->threshold).count());
    }
  }
  registry.SetRouteLatencyBounds(std::move(thresholds));
}

namespace asio = boost::asio;

// Each worker: its own event loop, its own thread.
struct WorkerThread {
  net::Loop loop;
  std::unique_ptr<proxy::Worker> worker;
  std::thread thread;
};

void RaiseFileLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void PrintErrors(const std::vector<config::ConfigError>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  std::fprintf(stderr, "%zu error%s\n", errors.size(), errors.size() == 1 ? "" : "s");
}

// FILE:LINE:COL: field: warning: reason (an error's form, marked).
std::string WarningText(const config::ConfigError& w) {
  config::ConfigError marked = w;
  marked.reason.insert(0, "warning: ");
  return marked.ToString();
}

void PrintWarnings(const std::vector<config::ConfigError>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "%s\n", WarningText(w).c_str());
}

bool SameListeners(const config::Config& a, const config::Config& b) {
  if (a.listeners.size() != b.listeners.size()) return false;
  for (size_t i = 0; i < a.listeners.size(); ++i) {
    if (a.listeners[i].address != b.listeners[i].address ||
        a.listeners[i].port != b.listeners[i].port)
      return false;
  }
  return true;
}

// Route `record:` captures: requests written to each capture file, and dropped (no free slot).
void CollectRecorders(observe::MetricWriter& w) {
  std::vector<std::tuple<std::string, uint64_t, uint64_t>> files;
  record::ForEachRecorder([&files](const record::Recorder& r) {
    files.emplace_back(r.path(), r.recorded(), r.dropped());
  });
  if (files.empty()) return;
  w.Family("ficus_record_requests_total", "counter",
           "Requests written to a route record: capture file.");
  for (const auto& [path, recorded, dropped] : files) {
    w.Sample("ficus_record_requests_total", {{"file", path}}, recorded);
  }
  w.Family("ficus_record_dropped_total", "counter",
           "Requests not recorded: the worker had no free capture slot.");
  for (const auto& [path, recorded, dropped] : files) {
    w.Sample("ficus_record_dropped_total", {{"file", path}}, dropped);
  }
}

class Gateway {
 public:
  Gateway(std::string path, std::shared_ptr<const config::Config> cfg)
      : path_(std::move(path)), config_(std::move(cfg)), registry_(config_->workers) {}

  int Serve() {
    // Signal handlers first: once /ready says yes, a SIGTERM must drain, never kill.
    asio::io_context main_io{1};
    asio::signal_set signals(main_io, SIGTERM, SIGINT, SIGHUP);
    signals.add(SIGUSR1);
    StartSinks();  // access log and tracer: before the workers that feed them
    // The job queues before the snapshot: its offload policies use them.
    queue::Start(*config_);
    auto snapshot = proxy::BuildSnapshot(config_, registry_, ++generation_);
    snapshot_ = snapshot;
    ExportSeriesOf(*snapshot, registry_);  // the SLO thresholds' `le` bounds from the start
    monitor_ = std::make_unique<upstream::Monitor>(
        [this](const std::string& cluster, std::vector<std::string> hosts) {
          OnDnsChange(cluster, std::move(hosts));
        },
        [this](std::string_view kind, const std::string& cluster, std::string note) {
          // The monitor thread starts after telemetry_ exists and stops before it goes.
          telemetry_->RecordEvent({0, 0, std::string(kind), cluster, "", std::move(note)});
        });
    monitor_->SetClusters(snapshot->cluster_shared);
    telemetry_ = OpenTelemetry(
        *config_, registry_, [this] { return cache::Counters(CurrentSnapshot()->route_policies); });
    telemetry_->Start();
    queue::SetEventSink([this](std::string_view kind, const std::string& queue, std::string note) {
      telemetry_->RecordEvent({0, 0, std::string(kind), queue, "", std::move(note)});
    });
    slo_ = std::make_unique<SloRunner>(*telemetry_, config_);
    telemetry_->RecordEvent(
        {0, 0, "startup", "ficus", FICUS_VERSION,
         "pid " + std::to_string(getpid()) + ", " + std::to_string(config_->workers) + " workers"});
    for (uint32_t i = 0; i < config_->workers; ++i) {
      auto t = std::make_unique<WorkerThread>();
      t->worker =
          std::make_unique<proxy::Worker>(static_cast<int>(i), t->loop, registry_, snapshot);
      t->worker->SetSinks(access_log_.get(), tracer_.get());
      t->worker->SetErrorSampler(&telemetry_->error_sampler());
      t->worker->Start();  // binds now: a listener that cannot open fails startup here
      workers_.push_back(std::move(t));
    }
    StartPostgres();
    AdminHandlers handlers;
    handlers.ready = [this] { return ready_.load() && !draining_.load(); };
    handlers.config_yaml = [this] { return config::ToRedactedYaml(*CurrentConfig()); };
    handlers.metrics = [this] {
      std::string text = registry_.RenderPrometheus();
      const auto snapshot = CurrentSnapshot();
      upstream::RenderResilienceMetrics(snapshot->cluster_shared, text);
      policy::RenderProtectMetrics(*snapshot->config, snapshot->route_policies, text);
      cache::RenderMetrics(snapshot->route_policies, text);
      queue::RenderMetrics(text);
      return text;
    };
    handlers.authorized = [this](std::string_view authorization) {
      return TokenMatches(authorization, CurrentConfig()->admin.token);
    };
    handlers.apply_config = [this](std::string_view yaml) { return ApplyPosted(yaml); };
    handlers.may_read = [this](std::string_view path, std::string_view authorization) {
      auto c = CurrentConfig();
      if (c->admin.IsLoopback()) return true;
      for (const std::string& p : c->admin.public_paths) {
        if (p == path) return true;
      }
      return TokenMatches(authorization, c->admin.token);
    };
    AdminApiContext api;
    api.telemetry = telemetry_.get();
    api.config = [this] { return CurrentConfig(); };
    api.ready = [this] { return ready_.load() && !draining_.load(); };
    api.draining = [this] { return draining_.load(); };
    api.slo_status = [this] { return slo_->StatusJson(); };
    api.clusters = [this] { return CurrentSnapshot()->cluster_shared; };
    api.apply_config = [this](std::string_view yaml) { return ApplyPosted(yaml); };
    api.synthetic = &registry_.synthetic();
    api.cache_purge = [this](const cache::PurgeRequest& r) {
      return cache::Purge(CurrentSnapshot()->route_policies, r);
    };
    api.pg = pg_.get();
    handlers.api = [api](const AdminRequest& req) { return HandleAdminApi(req, api); };
    admin_ = std::make_unique<AdminServer>(config_->admin.address, config_->admin.port,
                                           std::move(handlers));
    for (auto& t : workers_) {
      t->thread = std::thread([w = t.get()] { w->loop.Run(); });
    }
    admin_->Start();
    monitor_->Start();
    slo_->Start();
    ready_ = true;
    log::info("ficus {} workers serving {} listener(s), {} route(s), {} cluster(s); admin on {}:{}",
              config_->workers, config_->listeners.size(), config_->routes.size(),
              config_->clusters.size(), config_->admin.address, admin_->port());

    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& ec, int sig) {
          if (ec) return;
          if (sig == SIGHUP) {
            Reload();
            signals.async_wait(on_signal);
            return;
          }
          if (sig == SIGUSR1) {  // log rotation: the file was renamed, write a new one
            if (access_log_) access_log_->Reopen();
            signals.async_wait(on_signal);
            return;
          }
          log::info("received {}: draining (up to {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                    CurrentConfig()->timeouts.drain.count());
          main_io.stop();
        };
    signals.async_wait(on_signal);
    main_io.run();
    Drain();
    return 0;
  }

 private:
  // The PostgreSQL proxy (src/pg), when a listener is of kind postgres: it runs on the same
  // worker loops, binding before they start (a listener that cannot open fails startup).
  void StartPostgres() {
    if (!pg::Enabled(*config_)) return;
    pg_ = std::make_unique<pg::Service>(config_, static_cast<int>(workers_.size()));
    for (size_t i = 0; i < workers_.size(); ++i)
      pg_->StartWorker(static_cast<int>(i), workers_[i]->loop);
    registry_.AddCollector([p = pg_.get()](observe::MetricWriter& w) { p->Collect(w); });
    // Queries joined to the HTTP routes that caused them (by trace id), and the database's
    // minute rows for the report.
    if (tracer_) pg_->AttachRoutes(tracer_->route_log());
    pg_->AttachTelemetry(&telemetry_->store());
  }

  // Throws std::runtime_error when the access log cannot be opened or the tracer not started.
  void StartSinks() {
    const int workers = static_cast<int>(config_->workers);
    registry_.AddCollector(CollectRecorders);
    if (config_->access_log.enabled) {
      observe::AccessLogOptions o;
      o.path = config_->access_log.path;
      o.sample = config_->access_log.sample;
      for (const std::string& name : config_->access_log.fields) {
        observe::LogField f;
        FICUS_CHECK(observe::LogFieldByName(name, &f));  // the loader validated the names
        o.fields.push_back(f);
      }
      std::string error;
      access_log_ = observe::AccessLog::Open(o, workers, &error);
      if (!access_log_) throw std::runtime_error("access_log: " + error);
      registry_.AddCollector([l = access_log_.get()](observe::MetricWriter& w) { l->Collect(w); });
    }
    if (config_->tracing.enabled) {
      const config::Tracing& t = config_->tracing;
      observe::TracerOptions o;
      o.endpoint = t.endpoint;
      o.ca_file = t.ca_file;
      o.sample = t.sample;
      o.service_name = t.service_name;
      o.batch_size = t.batch_size;
      o.flush_interval_ms = t.flush_interval.count();
      o.timeout_ms = t.timeout.count();
      std::string error;
      tracer_ = observe::Tracer::Start(o, workers, &error);
      if (!tracer_) throw std::runtime_error("tracing: " + error);
      registry_.AddCollector([t = tracer_.get()](observe::MetricWriter& w) { t->Collect(w); });
    }
  }

  std::shared_ptr<const config::Config> CurrentConfig() {
    std::lock_guard lock(mu_);
    return config_;
  }

  std::shared_ptr<const proxy::Snapshot> CurrentSnapshot() {
    std::lock_guard lock(mu_);
    return snapshot_;
  }

  // SIGHUP: a new snapshot if the file validates; otherwise the running config stays and the
  // log says exactly why.
  void Reload() {
    log::info("reloading {}", path_);
    config::LoadResult loaded = config::LoadFile(path_);
    for (const auto& w : loaded.warnings) log::warn("{}", WarningText(w));
    if (!loaded.errors.empty()) {
      for (const auto& e : loaded.errors) log::error("reload rejected: {}", e.ToString());
      log::error("reload failed: {} error(s); still running the previous config",
                 loaded.errors.size());
      telemetry_->RecordEvent(
          {0, 0, "config_reload", "ficus", "",
           "rejected: " + loaded.errors.front().ToString() +
               (loaded.errors.size() > 1
                    ? " (and " + std::to_string(loaded.errors.size() - 1) + " more)"
                    : std::string())});
      return;
    }
    // Apply logs and records why it refused.
    (void)Apply(loaded.config);
  }

  // POST /config (admin thread): validate the body and apply it. The diff applied, or the
  // errors as the JSON document the caller is answered.
  Outcome<std::string> ApplyPosted(std::string_view yaml) {
    config::LoadResult loaded = config::LoadString(yaml, "POST /config");
    for (const auto& w : loaded.warnings) log::warn("{}", WarningText(w));
    if (!loaded.errors.empty()) {
      log::warn("POST /config rejected: {} error(s)", loaded.errors.size());
      return Failed(ConfigErrorsJson(loaded.errors));
    }
    Outcome<std::string> diff = Apply(loaded.config);
    if (!diff)
      return Failed(
          ConfigErrorsJson({config::ConfigError{"POST /config", 0, 0, "", diff.message()}}));
    return diff;
  }

  // A re-resolved DNS name (monitor thread): the running config with the new addresses.
  void OnDnsChange(const std::string& cluster, std::vector<std::string> hosts) {
    auto next = std::make_shared<config::Config>(*CurrentConfig());
    for (auto& c : next->clusters) {
      if (c.name != cluster || c.endpoints.size() != hosts.size()) continue;
      for (size_t i = 0; i < hosts.size(); ++i) c.endpoints[i].host = hosts[i];
    }
    (void)Apply(next);
  }

  // Installs a validated config (any thread; one at a time). Returns the diff as JSON; fails
  // (changing nothing, logged and recorded as an event) when a new listener cannot be opened
  // or the snapshot cannot be built.
  Outcome<std::string> Apply(std::shared_ptr<const config::Config> next) {
    std::lock_guard apply_lock(apply_mu_);
    auto loaded_config = next;
    auto old = CurrentConfig();
    if (loaded_config->workers != old->workers) {
      log::warn("reload: workers changes from {} to {} take effect after a restart", old->workers,
                loaded_config->workers);
    }
    if (loaded_config->access_log.path != old->access_log.path ||
        loaded_config->access_log.enabled != old->access_log.enabled ||
        loaded_config->access_log.fields != old->access_log.fields ||
        loaded_config->access_log.sample != old->access_log.sample ||
        loaded_config->tracing.enabled != old->tracing.enabled ||
        loaded_config->tracing.endpoint != old->tracing.endpoint ||
        loaded_config->tracing.ca_file != old->tracing.ca_file ||
        loaded_config->tracing.sample != old->tracing.sample) {
      log::warn("reload: access_log and tracing changes take effect after a restart");
    }
    if (loaded_config->data_dir != old->data_dir ||
        loaded_config->telemetry.max_size != old->telemetry.max_size ||
        loaded_config->telemetry.error_samples_per_route !=
            old->telemetry.error_samples_per_route) {
      log::warn("reload: data_dir and telemetry changes take effect after a restart");
    }
    if (!SameListeners(*loaded_config, *old)) {
      // A listener that cannot be opened refuses the whole reload (nothing changes), so the
      // answer is never "applied" for a config that is not serving where it says it does.
      std::vector<std::string> cannot = ProbeNewListeners(*old, *loaded_config);
      if (!cannot.empty()) {
        for (const std::string& e : cannot) log::error("reload rejected: cannot listen: {}", e);
        log::error(
            "reload failed: {} listener(s) cannot be opened; still running the previous "
            "config",
            cannot.size());
        telemetry_->RecordEvent({0, 0, "config_reload", "ficus", "",
                                 std::string("rejected: cannot listen: ") + cannot.front()});
        std::string message = std::string("cannot listen: ") + cannot.front();
        for (size_t i = 1; i < cannot.size(); ++i) message += "; " + cannot[i];
        return Failed(std::move(message));
      }
      log::info("reload: listeners change; workers open the new ones and close removed ones");
    }
    queue::Reconfigure(*loaded_config);  // queues first: the new snapshot's policies use them
    std::shared_ptr<const proxy::Snapshot> snap;
    try {
      snap = proxy::BuildSnapshot(loaded_config, registry_, ++generation_, CurrentSnapshot().get());
    } catch (const std::exception& e) {
      log::error("reload failed: {}; still running the previous config", e.what());
      telemetry_->RecordEvent(
          {0, 0, "config_reload", "ficus", "", std::string("rejected: ") + e.what()});
      return Failed(e.what());
    }
    {
      std::lock_guard lock(mu_);
      config_ = loaded_config;
      snapshot_ = snap;
    }
    ExportSeriesOf(*snap, registry_);
    monitor_->SetClusters(snap->cluster_shared);
    slo_->SetConfig(loaded_config);
    if (pg_) {
      pg_->Reconfigure(loaded_config);  // new logins see the new databases and users
    } else if (pg::Enabled(*loaded_config)) {
      log::warn("reload: postgres listeners take effect after a restart");
    }
    for (auto& t : workers_) {
      t->loop.Post([w = t->worker.get(), snap] { w->SetSnapshot(snap); });
    }
    log::info("reload applied: {} route(s), {} cluster(s)", loaded_config->routes.size(),
              loaded_config->clusters.size());
    telemetry_->RecordEvent({0, 0, "config_reload", "ficus", "",
                             "applied: " + std::to_string(loaded_config->routes.size()) +
                                 " route(s), " + std::to_string(loaded_config->clusters.size()) +
                                 " cluster(s)"});
    return ConfigDiffJson(*old, *loaded_config);
  }

  // Stop accepting, let in-flight requests finish up to timeouts.drain, then stop.
  void Drain() {
    draining_ = true;
    monitor_->Stop();  // no health checks or DNS-driven reloads while the workers wind down
    for (auto& t : workers_) t->loop.Post([w = t->worker.get()] { w->StartDrain(); });
    if (pg_) {
      for (size_t i = 0; i < workers_.size(); ++i)
        workers_[i]->loop.Post([p = pg_.get(), i] { p->StopWorker(static_cast<int>(i)); });
    }
    const auto deadline = std::chrono::steady_clock::now() + CurrentConfig()->timeouts.drain;
    int64_t active = 0;
    for (;;) {
      active = ActiveConnections();
      if (active <= 0 || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (active > 0)
      log::warn("drain deadline passed with {} connection(s) open; closing them", active);
    // Abort cancels every socket; give the cancelled sessions a moment to unwind so that none
    // outlives its Worker.
    for (auto& t : workers_) t->loop.Post([w = t->worker.get()] { w->Abort(); });
    for (int i = 0; i < 100 && ActiveConnections() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // accept loops unwind
    for (int i = 0; i < 100 && pg_ && !pg_->Stopped(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (auto& t : workers_) t->loop.Stop();
    for (auto& t : workers_) t->thread.join();
    queue::Stop();  // no worker waits on a commit any more; what the writer holds is written
    queue::SetEventSink(nullptr);
    for (auto& t : workers_) t->worker.reset();
    record::FlushAll();   // captured requests still queued for the writer threads
    admin_->Stop();       // before the sinks: a scrape reads their counters
    slo_->Stop();         // reads the telemetry store
    access_log_.reset();  // writes what the workers queued
    tracer_.reset();      // one last export attempt
    telemetry_->Stop();   // the last interval and anything queued reach the store
    log::info("drained; exiting");
  }

  int64_t ActiveConnections() {
    int64_t n = 0;
    for (int i = 0; i < registry_.workers(); ++i) n += registry_.Server(i).active_connections.Get();
    return n;
  }

  std::string path_;
  std::mutex mu_;  // guards config_ and snapshot_ (read by the admin thread, replaced on reload)
  std::mutex apply_mu_;  // one reload at a time (SIGHUP, POST /config, DNS)
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<const proxy::Snapshot> snapshot_;
  std::unique_ptr<upstream::Monitor> monitor_;
  observe::Registry registry_;
  std::unique_ptr<observe::AccessLog> access_log_;   // null when not configured
  std::unique_ptr<observe::Tracer> tracer_;          // null when not configured
  std::unique_ptr<telemetry::Telemetry> telemetry_;  // outlives the workers (error sampler)
  std::unique_ptr<SloRunner> slo_;                   // evaluates SLOs from telemetry_
  uint64_t generation_ = 0;
  std::vector<std::unique_ptr<WorkerThread>> workers_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<pg::Service> pg_;  // null unless a listener is postgres
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace

int Check(const std::string& config_path) {
  // Offline: checks the file without the secrets `ficus run` reads from the environment.
  config::LoadResult loaded = config::LoadFile(config_path, config::OfflineLoad());
  PrintWarnings(loaded.warnings);
  if (!loaded.errors.empty()) {
    PrintErrors(loaded.errors);
    return 1;
  }
  std::fputs(config::Describe(*loaded.config).c_str(), stdout);
  std::printf("%s: OK\n", config_path.c_str());
  return 0;
}

std::optional<std::string> DataDirOf(const std::string& config_path) {
  config::LoadResult loaded = config::LoadFile(config_path);
  if (!loaded.errors.empty()) {
    PrintErrors(loaded.errors);
    return std::nullopt;
  }
  return loaded.config->data_dir;
}

int Run(const std::string& config_path) {
  config::LoadResult loaded = config::LoadFile(config_path);
  PrintWarnings(loaded.warnings);
  if (!loaded.errors.empty()) {
    PrintErrors(loaded.errors);
    return 1;
  }
  log::Init(loaded.config->log_level);
  std::signal(SIGPIPE, SIG_IGN);  // a peer that vanished is an error value, not a signal
  RaiseFileLimit();
  try {
    Gateway gateway(config_path, loaded.config);
    return gateway.Serve();
  } catch (const std::exception& e) {
    log::error("cannot start: {}", e.what());
    return 1;
  }
}

}  // namespace ficus::server
