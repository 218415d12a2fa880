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
#include "upstream/upstream.h"

namespace ficus::upstream {

namespace {

constexpr int64_t kTickMs = 100;

// One health check in flight: connect, send the request, read up to the status line. A probe
// (of an endpoint whose last connect failed) only connects.
struct Check {
  bool probe = false;
  std::shared_ptr<ClusterShared> cluster;
  size_t endpoint = 0;
  std::string key;
  int fd = -1;
  int64_t deadline_ms = 0;
  enum class State { kConnecting, kSending, kReading } state = State::kConnecting;
  std::string request;
  size_t sent = 0;
  std::string response;
};

// "HTTP/1.1 200 OK\r\n..." -> 200; 0 when the status line is not complete or not valid.
int StatusOf(std::string_view r) {
  if (r.size() < 12 || !r.starts_with("HTTP/1.") || r[8] != ' ') return 0;
  int s = 0;
  for (int i = 9; i < 12; ++i) {
    if (r[i] < '0' || r[i] > '9') return 0;
    s = s * 10 + (r[i] - '0');
  }
  return s;
}

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
    for (auto& c : checks_) ::close(c.fd);
    checks_.clear();
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
      check.request = "GET " + hc.path +
                      " HTTP/1.1\r\nHost: " + (hc.host.empty() ? a.ToString() : hc.host) +
                      "\r\nUser-Agent: ficus-health-check\r\nConnection: close\r\n\r\n";
      if (!Open(check)) continue;
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
    if (!Open(check)) return;
    in_flight_.insert(key);
    checks_.push_back(std::move(check));
  }

  // Opens the check's socket and starts its connect; false when it already finished (failed).
  bool Open(Check& check) {
    const net::Address& a = check.cluster->address(check.endpoint);
    check.fd = ::socket(a.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (check.fd < 0) {
      Finish(check, false, "socket failed", /*connect_failed=*/false);
      return false;
    }
    int rc = ::connect(check.fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length);
    if (rc != 0 && errno != EINPROGRESS) {
      const int err = errno;
      ::close(check.fd);
      Finish(check, false, std::strerror(err), /*connect_failed=*/true);
      return false;
    }
    return true;
  }

  void PollChecks() {
    std::vector<pollfd> fds;
    fds.reserve(checks_.size());
    for (const auto& c : checks_) {
      fds.push_back(pollfd{
          c.fd, static_cast<short>(c.state == Check::State::kReading ? POLLIN : POLLOUT), 0});
    }
    ::poll(fds.data(), fds.size(), static_cast<int>(kTickMs));
    const int64_t now = CoarseMonotonicMillis();
    std::vector<Check> still;
    for (size_t k = 0; k < checks_.size(); ++k) {
      Check& c = checks_[k];
      const char* error = nullptr;
      bool done = false;
      bool passed = false;
      if (fds[k].revents != 0) Progress(c, &done, &passed, &error);
      if (!done && now >= c.deadline_ms) {
        done = true;
        passed = false;
        error = "timed out";
      }
      if (done) {
        ::close(c.fd);
        in_flight_.erase(c.key);
        // A check that never got past connecting (refused, unreachable, timed out) is a failed
        // connect: the endpoint is marked down for every worker's picks at once.
        const bool connect_failed = !passed && c.state == Check::State::kConnecting;
        Finish(c, passed, error ? error : "", connect_failed);
      } else {
        still.push_back(std::move(c));
      }
    }
    checks_ = std::move(still);
  }

  void Progress(Check& c, bool* done, bool* passed, const char** error) {
    if (c.state == Check::State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        *done = true;
        *error = "connect failed";
        return;
      }
      if (c.probe) {
        *done = true;
        *passed = true;
        return;
      }
      c.state = Check::State::kSending;
    }
    if (c.state == Check::State::kSending) {
      ssize_t n = ::send(c.fd, c.request.data() + c.sent, c.request.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) {
        *done = true;
        *error = "send failed";
        return;
      }
      if (n > 0) c.sent += static_cast<size_t>(n);
      if (c.sent == c.request.size()) c.state = Check::State::kReading;
      return;
    }
    char buf[512];
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n > 0) c.response.append(buf, static_cast<size_t>(n));
    const int status = StatusOf(c.response);
    if (status != 0 || n <= 0 || c.response.size() >= 12) {
      *done = true;
      *passed = status != 0 && Expected(c.cluster->config().health_check, status);
      if (!*passed) *error = status ? "unexpected status" : "no valid response";
    }
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
