// The Monitor thread: active HTTP health checks, connect probes of endpoints marked down by a
// failed connect, ejection expiry, DNS re-resolution. Runs off the workers; talks to them only
// through ClusterShared's atomics (and, for DNS changes, the server's callback, which builds a new
// snapshot).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string_view>

#include "base/log.h"
#include "client/client.h"
#include "upstream/upstream.h"

namespace ficus::upstream {

namespace {

constexpr int64_t kTickMs = 100;

// Where a check connects: the endpoint's address, named by its IP for errors and Host.
client::Destination DestinationOf(const net::Address& a) {
  std::string ip = a.ToString();  // "1.2.3.4:80" / "[::1]:80" -> the IP
  ip.resize(ip.rfind(':'));
  if (ip.starts_with('[')) ip = ip.substr(1, ip.size() - 2);
  return client::Destination::Of(reinterpret_cast<const sockaddr*>(&a.storage), a.length,
                                 std::move(ip), a.port());
}

// One health check in flight: a non-blocking client call that ends at the response head. A
// probe (of an endpoint whose last connect failed) only connects.
struct Check {
  bool probe = false;
  std::shared_ptr<ClusterShared> cluster;
  size_t endpoint = 0;
  std::string key;
  int64_t deadline_ms = 0;
  client::Call call;
};

bool Expected(const config::HealthCheck& hc, int status) {
  for (const auto& [lo, hi] : hc.expected_statuses) {
    if (status >= lo && status <= hi) return true;
  }
  return false;
}

// First IPv4 address of `name`, else first IPv6 (what the config loader does); empty on error.
std::string ResolveName(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &res) != 0 || !res) return {};
  std::string v4, v6;
  char buf[INET6_ADDRSTRLEN];
  for (addrinfo* a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET && v4.empty()) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, buf, sizeof buf);
      v4 = buf;
    } else if (a->ai_family == AF_INET6 && v6.empty()) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, buf,
                  sizeof buf);
      v6 = buf;
    }
  }
  ::freeaddrinfo(res);
  return v4.empty() ? v6 : v4;
}

}  // namespace

class Monitor::Impl {
 public:
  Impl(DnsChange on_dns, EventSink on_event)
      : on_dns_(std::move(on_dns)), on_event_(std::move(on_event)), rng_(std::random_device{}()) {}

  void SetClusters(std::vector<std::shared_ptr<ClusterShared>> clusters) {
    std::lock_guard lock(mu_);
    clusters_ = std::move(clusters);
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    checks_.clear();  // closes their sockets
  }

 private:
  void Run() {
    std::vector<size_t> ejected, unejected, marked, cleared, probes;
    for (;;) {
      std::vector<std::shared_ptr<ClusterShared>> clusters;
      {
        std::unique_lock lock(mu_);
        if (stop_) return;
        // With checks in flight, poll() below is the wait; otherwise sleep here.
        if (checks_.empty()) cv_.wait_for(lock, std::chrono::milliseconds(kTickMs));
        if (stop_) return;
        clusters = clusters_;
      }
      const int64_t now = CoarseMonotonicMillis();
      for (const auto& c : clusters) {
        ejected.clear();
        unejected.clear();
        c->Sweep(now, &ejected, &unejected);
        for (size_t i : ejected) {
          log::warn("cluster {}: endpoint {} ejected (outlier detection, ejection #{})", c->name(),
                    c->address(i).ToString(), c->ejections(i));
          Emit("ejection", c->name(),
               c->address(i).ToString() + " ejected (outlier detection, ejection #" +
                   std::to_string(c->ejections(i)) + ")");
        }
        for (size_t i : unejected) {
          log::info("cluster {}: endpoint {} back from ejection", c->name(),
                    c->address(i).ToString());
          Emit("ejection", c->name(), c->address(i).ToString() + " back from ejection");
        }
        marked.clear();
        cleared.clear();
        probes.clear();
        c->SweepConnectFailures(now, &marked, &cleared, &probes);
        for (size_t i : marked) {
          log::warn("cluster {}: endpoint {} is down for new requests (a connect to it failed)",
                    c->name(), c->address(i).ToString());
          Emit("health", c->name(), c->address(i).ToString() + " down (connect failed)");
        }
        for (size_t i : cleared) {
          log::info("cluster {}: endpoint {} accepts connections again", c->name(),
                    c->address(i).ToString());
          Emit("health", c->name(), c->address(i).ToString() + " up (connect succeeded)");
        }
        for (size_t i : probes) StartProbe(c, i, now);
        WatchBreakers(*c, now);
        if (c->config().health_check.enabled) StartDueChecks(c, now);
        if (c->config().dns_refresh.count() > 0) RefreshDns(*c, now);
      }
      if (!checks_.empty()) PollChecks();
    }
  }

  void StartDueChecks(const std::shared_ptr<ClusterShared>& c, int64_t now) {
    const auto& hc = c->config().health_check;
    for (size_t i = 0; i < c->endpoint_count(); ++i) {
      std::string key = c->name() + "/" + c->address(i).ToString();
      if (in_flight_.count(key)) continue;
      auto [it, fresh] = next_check_.try_emplace(key, 0);
      if (fresh) {
        // A new endpoint is checked soon, spread over the first interval.
        it->second = now + static_cast<int64_t>(
                               rng_() % (1 + std::min<uint64_t>(hc.interval.count(), 1000)));
      }
      if (now < it->second) continue;
      it->second = now + hc.interval.count() +
                   (hc.jitter.count() ? static_cast<int64_t>(rng_() % (hc.jitter.count() + 1)) : 0);
      Check check;
      check.cluster = c;
      check.endpoint = i;
      check.key = key;
      check.deadline_ms = now + hc.timeout.count();
      const net::Address& a = c->address(i);
      client::Request request;
      request.target = hc.path;
      request.headers = {{"Host", hc.host.empty() ? a.ToString() : hc.host},
                         {"User-Agent", "ficus-health-check"}};
      client::Call::Options options;
      options.head_only = true;  // the status decides
      check.call.Start(DestinationOf(a), request, options);
      if (check.call.done()) {  // failed at once (no socket), or (rarely) answered already
        Conclude(check);
        continue;
      }
      in_flight_.insert(key);
      checks_.push_back(std::move(check));
    }
  }

  // A TCP connect to an endpoint marked down by a failed connect: success brings it back for
  // every worker, so a restarted endpoint returns without waiting for live traffic to try it.
  void StartProbe(const std::shared_ptr<ClusterShared>& c, size_t i, int64_t now) {
    std::string key = "probe:" + c->name() + "/" + c->address(i).ToString();
    if (in_flight_.count(key)) return;
    Check check;
    check.probe = true;
    check.cluster = c;
    check.endpoint = i;
    check.key = key;
    check.deadline_ms = now + c->config().connect_timeout.count();
    client::Call::Options options;
    options.connect_only = true;
    check.call.Start(DestinationOf(c->address(i)), client::Request{}, options);
    if (check.call.done()) {  // failed at once (no socket)
      Conclude(check);
      return;
    }
    in_flight_.insert(key);
    checks_.push_back(std::move(check));
  }

  void PollChecks() {
    std::vector<pollfd> fds;
    fds.reserve(checks_.size());
    for (const auto& c : checks_) fds.push_back(pollfd{c.call.fd(), c.call.events(), 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(kTickMs));
    const int64_t now = CoarseMonotonicMillis();
    std::vector<Check> still;
    for (size_t k = 0; k < checks_.size(); ++k) {
      Check& c = checks_[k];
      bool done = fds[k].revents != 0 && c.call.Advance();
      if (!done && now >= c.deadline_ms) {
        c.call.Fail("timed out " + c.call.Waiting());
        done = true;
      }
      if (done) {
        in_flight_.erase(c.key);
        Conclude(c);
      } else {
        still.push_back(std::move(c));
      }
    }
    checks_ = std::move(still);
  }

  // A finished check's result: passed when a response head arrived with an expected status (a
  // probe: when it connected). A check that never connected (refused, unreachable, timed out)
  // is a failed connect: the endpoint is marked down for every worker's picks at once.
  void Conclude(const Check& c) {
    const client::Response& r = c.call.response();
    if (c.probe) {
      Finish(c, c.call.connected(), r.error, /*connect_failed=*/false);
      return;
    }
    const bool passed = r.error.empty() && Expected(c.cluster->config().health_check, r.status);
    Finish(c, passed, !r.error.empty() ? r.error : "unexpected status " + std::to_string(r.status),
           /*connect_failed=*/!passed && !c.call.connected());
  }

  void Finish(const Check& c, bool passed, const std::string& why, bool connect_failed) {
    if (c.probe) {  // the next sweep logs the change
      c.cluster->ProbeResult(c.endpoint, passed, CoarseMonotonicMillis());
      return;
    }
    if (c.cluster->CheckResult(c.endpoint, passed, connect_failed, CoarseMonotonicMillis())) {
      if (passed) {
        log::info("cluster {}: endpoint {} is healthy (active health check)", c.cluster->name(),
                  c.cluster->address(c.endpoint).ToString());
        Emit("health", c.cluster->name(), c.cluster->address(c.endpoint).ToString() + " healthy");
      } else {
        log::warn("cluster {}: endpoint {} is unhealthy (active health check: {})",
                  c.cluster->name(), c.cluster->address(c.endpoint).ToString(), why);
        Emit("health", c.cluster->name(),
             c.cluster->address(c.endpoint).ToString() + " unhealthy (" + why + ")");
      }
    }
  }

  void RefreshDns(const ClusterShared& c, int64_t now) {
    const auto& cfg = c.config();
    int64_t& next = next_dns_[c.name()];
    if (next == 0) next = now + cfg.dns_refresh.count();
    if (now < next) return;
    next = now + cfg.dns_refresh.count();
    bool any_name = false, changed = false;
    std::vector<std::string> hosts;
    for (const auto& e : cfg.endpoints) {
      std::string ip = e.host;
      if (!e.hostname.empty()) {
        any_name = true;
        std::string fresh = ResolveName(e.hostname);  // blocking: this thread only
        if (fresh.empty()) {
          log::warn("cluster {}: cannot resolve {}; keeping {}", c.name(), e.hostname, e.host);
        } else {
          ip = fresh;
        }
      }
      changed = changed || ip != e.host;
      hosts.push_back(std::move(ip));
    }
    if (any_name && changed && on_dns_) {
      log::info("cluster {}: DNS names resolve to new addresses", c.name());
      on_dns_(c.name(), std::move(hosts));
    }
  }

  void Emit(std::string_view kind, const std::string& cluster, std::string note) {
    if (on_event_) on_event_(kind, cluster, std::move(note));
  }

  // Workers count breaker rejections in atomics; this thread turns a rise into an event, at most
  // one per cluster per kBreakerEventIntervalMs (the rejections in between are counted into the
  // next one), so a sustained overload does not flood the timeline.
  void WatchBreakers(const ClusterShared& c, int64_t now) {
    BreakerWatch& w = breakers_[c.name()];
    uint64_t total[ClusterCounters::kBreakers];
    bool rose = false;
    for (int b = 0; b < ClusterCounters::kBreakers; ++b) {
      total[b] = c.counters().breaker_rejections[b].load(std::memory_order_relaxed);
      w.reported[b] = std::min(w.reported[b], total[b]);  // counters started over
      rose = rose || total[b] > w.reported[b];
    }
    if (!w.primed) {  // a restart of the monitor or a cluster it has not seen: baseline only
      std::copy(std::begin(total), std::end(total), std::begin(w.reported));
      w.primed = true;
      return;
    }
    if (!rose || (w.last_ms != 0 && now - w.last_ms < Monitor::kBreakerEventIntervalMs)) return;
    std::string note = "breaker tripped:";
    for (int b = 0; b < ClusterCounters::kBreakers; ++b) {
      if (total[b] <= w.reported[b]) continue;
      note += std::string(" ") + ClusterCounters::kBreakerNames[b] + " rejected " +
              std::to_string(total[b] - w.reported[b]);
      w.reported[b] = total[b];
    }
    w.last_ms = now;
    log::warn("cluster {}: {}", c.name(), note);
    Emit("breaker", c.name(), std::move(note));
  }

  struct BreakerWatch {
    bool primed = false;
    int64_t last_ms = 0;
    uint64_t reported[ClusterCounters::kBreakers] = {};
  };

  DnsChange on_dns_;
  EventSink on_event_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::shared_ptr<ClusterShared>> clusters_;  // guarded by mu_
  std::thread thread_;
  // Monitor thread only.
  std::mt19937_64 rng_;
  std::vector<Check> checks_;
  std::set<std::string> in_flight_;
  std::map<std::string, int64_t> next_check_;
  std::map<std::string, int64_t> next_dns_;
  std::map<std::string, BreakerWatch> breakers_;
};

Monitor::Monitor(DnsChange on_dns_change, EventSink on_event)
    : impl_(std::make_unique<Impl>(std::move(on_dns_change), std::move(on_event))) {}
Monitor::~Monitor() { Stop(); }
void Monitor::SetClusters(std::vector<std::shared_ptr<ClusterShared>> clusters) {
  impl_->SetClusters(std::move(clusters));
}
void Monitor::Start() { impl_->Start(); }
void Monitor::Stop() { impl_->Stop(); }

}  // namespace ficus::upstream
