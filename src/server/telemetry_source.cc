#include "server/internal/telemetry_source.h"

#include <filesystem>
#include <map>
#include <stdexcept>

#include "queue/queue.h"

namespace ficus::server {

std::string TelemetryDbPath(const std::string& data_dir) { return data_dir + "/ficus.db"; }

std::unique_ptr<telemetry::Telemetry> OpenTelemetry(const config::Config& config,
                                                    observe::Registry& registry,
                                                    CacheCountersFn cache_counters) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    throw std::runtime_error("data_dir " + config.data_dir + ": " + ec.message());
  }
  telemetry::TelemetryOptions opt;
  opt.store.path = TelemetryDbPath(config.data_dir);
  opt.store.max_bytes = config.telemetry.max_size;
  opt.store.error_samples_per_route = config.telemetry.error_samples_per_route;
  opt.workers = registry.workers();

  // Runs on the telemetry thread (ticks) and the admin thread (live windows), never on a
  // worker: it only reads the cells (and, on a tick, zeroes the client sketches and takes the
  // key and repeat counts).
  auto source = [&registry, cache_counters = std::move(cache_counters)](bool take_clients) {
    std::vector<telemetry::SeriesTotals> out;
    const int workers = registry.workers();
    registry.ForEachRoute([&](observe::RouteStats& r) {
      telemetry::SeriesTotals s;
      s.kind = telemetry::SeriesKind::kRoute;
      s.name = r.name;
      for (int w = 0; w < workers; ++w) {
        observe::RouteCell& c = r.Cell(w);
        s.requests += c.requests.Get();
        s.errors += c.responses[4].Get();
        s.bytes_in += c.request_bytes.Get();
        s.bytes_out += c.response_bytes.Get();
        for (int i = 0; i < observe::Histogram::kBuckets; ++i) {
          s.latency.buckets[i] += c.duration.Bucket(i);
        }
        for (int i = 0; i < observe::ClientSketch::kRegisters; ++i) {
          const uint8_t v = take_clients ? c.clients.Take(i) : c.clients.Register(i);
          s.clients.registers[i] = std::max(s.clients.registers[i], v);
        }
      }
      // Heavy client keys: only a tick takes them (a live look would reset the workers').
      if (take_clients) {
        std::map<std::string, uint64_t> keys;
        for (int w = 0; w < workers; ++w) {
          for (auto& e : r.Cell(w).keys.Take(/*reset=*/true)) keys[std::move(e.key)] += e.count;
        }
        s.keys.assign(keys.begin(), keys.end());
        std::map<std::string, uint64_t> limited;  // keys a rate or concurrency limit refused
        for (int w = 0; w < workers; ++w) {
          for (auto& e : r.Cell(w).limited.Take(/*reset=*/true))
            limited[std::move(e.key)] += e.count;
        }
        s.limited.assign(limited.begin(), limited.end());
        for (int w = 0; w < workers; ++w) {
          const observe::RepeatSketch::Counts rc = r.Cell(w).repeats.Take();
          s.repeat_sampled += rc.sampled;
          s.repeat_repeated += rc.repeated;
          s.repeat_changed += rc.changed;
        }
      }
      out.push_back(std::move(s));
      // The route's `ficus assess` requests (cumulative, like the route's own counts).
      telemetry::SeriesTotals syn;
      syn.kind = telemetry::SeriesKind::kSynthetic;
      syn.name = r.name;
      for (int w = 0; w < workers; ++w) {
        const observe::SyntheticCounts& c = r.Cell(w).synthetic;
        syn.requests += c.requests.Get();
        syn.errors += c.errors.Get();
        syn.bytes_out += c.response_bytes.Get();
        for (int i = 0; i < observe::Histogram::kBuckets; ++i)
          syn.latency.buckets[i] += c.duration.Bucket(i);
      }
      out.push_back(std::move(syn));
    });
    // The cached routes' counters on their route series.
    if (cache_counters) {
      for (const cache::RouteCounters& c : cache_counters()) {
        for (telemetry::SeriesTotals& s : out) {
          if (s.kind != telemetry::SeriesKind::kRoute || s.name != c.route) continue;
          s.cache = telemetry::CacheCounters{c.hits,        c.misses,    c.stale,   c.stale_errors,
                                             c.revalidated, c.coalesced, c.bypassed};
        }
      }
    }
    // A cluster's and an endpoint's latency are their own traffic cells' durations (request
    // start -> response complete, for the requests routed to that cluster or sent to that
    // endpoint), so they stay right when a reload moves routes between clusters.
    auto add_traffic = [workers](observe::TrafficStats& t, telemetry::SeriesTotals& s) {
      for (int w = 0; w < workers; ++w) {
        observe::TrafficCell& c = t.Cell(w);
        for (int i = 0; i < observe::Histogram::kBuckets; ++i) {
          s.latency.buckets[i] += c.duration.Bucket(i);
        }
      }
    };
    registry.ForEachCluster([&](observe::ClusterStats& cs) {
      telemetry::SeriesTotals s;
      s.kind = telemetry::SeriesKind::kCluster;
      s.name = cs.name;
      for (int w = 0; w < workers; ++w) {
        observe::ClusterCell& c = cs.Cell(w);
        s.requests += c.requests.Get();
        s.errors += c.responses[4].Get() + c.connect_failures.Get() + c.timeouts.Get();
        s.bytes_in += cs.traffic.Cell(w).request_bytes.Get();
        s.bytes_out += cs.traffic.Cell(w).response_bytes.Get();
      }
      add_traffic(cs.traffic, s);
      out.push_back(std::move(s));
    });
    // Endpoints as "cluster/address": requests that reached the endpoint, and the 5xx sent
    // downstream for them.
    registry.ForEachEndpoint([&](observe::TrafficStats& e) {
      telemetry::SeriesTotals s;
      s.kind = telemetry::SeriesKind::kEndpoint;
      s.name = e.cluster + "/" + e.name;
      for (int w = 0; w < workers; ++w) {
        observe::TrafficCell& c = e.Cell(w);
        s.requests += c.requests.Get();
        s.errors += c.responses[4].Get();
        s.bytes_in += c.request_bytes.Get();
        s.bytes_out += c.response_bytes.Get();
      }
      add_traffic(e, s);
      out.push_back(std::move(s));
    });
    return out;
  };
  auto t = std::make_unique<telemetry::Telemetry>(std::move(opt), std::move(source));
  // The job queues' counters, per minute, for the report's queue section.
  t->SetQueueSource([] {
    std::vector<telemetry::QueueTotals> out;
    for (const queue::QueueStats& q : queue::Stats()) {
      out.push_back({q.name, q.enqueued, q.succeeded, q.failed, q.dead, q.attempts, q.depth,
                     q.oldest_age_ms, q.dead_letters});
    }
    return out;
  });
  return t;
}

}  // namespace ficus::server
