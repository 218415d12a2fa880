#include "upstream/upstream.h"

#include <algorithm>
#include <numeric>

namespace ficus::upstream {

std::unique_ptr<Connection> EndpointPool::Take(int64_t now_ms, int64_t idle_timeout_ms) {
  while (!idle_.empty()) {
    std::unique_ptr<Connection> c = std::move(idle_.back());
    idle_.pop_back();
    // A connection that received anything while idle (a stray or unsolicited response, the
    // rest of a body nobody announced, EOF) is out of step with its requests: reusing it would
    // hand those bytes to the next client as its answer. Dropping it closes the socket.
    if (now_ms - c->idle_since_ms < idle_timeout_ms && c->socket.IsQuiet()) return c;
    // Expired ones are dropped too. Everything behind an expired one is older, but those are
    // left for CloseExpired so Take stays O(1) in the common case.
  }
  return nullptr;
}

void EndpointPool::Put(std::unique_ptr<Connection> c, int64_t now_ms, uint32_t max_idle) {
  if (idle_.size() >= max_idle) return;  // `c` closes here
  c->idle_since_ms = now_ms;
  idle_.push_back(std::move(c));
}

size_t EndpointPool::CloseExpired(int64_t now_ms, int64_t idle_timeout_ms) {
  // Front = oldest: everything before the first fresh connection expired. Fresh ones that the
  // upstream wrote to or closed while they idled are closed as well (the pool watches them).
  const size_t before = idle_.size();
  auto fresh = std::find_if(idle_.begin(), idle_.end(), [&](const auto& c) {
    return now_ms - c->idle_since_ms < idle_timeout_ms;
  });
  idle_.erase(idle_.begin(), fresh);
  std::erase_if(idle_,
                [](const auto& c) { return c->socket.InputPending() && !c->socket.IsQuiet(); });
  return before - idle_.size();
}

WeightedRoundRobin::WeightedRoundRobin(std::vector<uint32_t> weights)
    : weight_(weights.begin(), weights.end()), current_(weights.size(), 0) {
  total_ = std::accumulate(weight_.begin(), weight_.end(), int64_t{0});
  uniform_ =
      std::all_of(weight_.begin(), weight_.end(), [&](int64_t w) { return w == weight_[0]; });
}

size_t WeightedRoundRobin::Pick() {
  const size_t n = weight_.size();
  if (uniform_) {
    size_t i = next_;
    next_ = (next_ + 1 == n) ? 0 : next_ + 1;
    return i;
  }
  size_t best = 0;
  for (size_t i = 0; i < n; ++i) {
    current_[i] += weight_[i];
    if (current_[i] > current_[best]) best = i;
  }
  current_[best] -= total_;
  return best;
}

namespace {
std::unique_ptr<Balancer> BalancerFor(const config::Cluster& c,
                                      const std::vector<net::Address>& addresses, uint64_t seed) {
  std::vector<EndpointSpec> specs;
  specs.reserve(c.endpoints.size());
  for (size_t i = 0; i < c.endpoints.size(); ++i) {
    specs.push_back(
        EndpointSpec{i < addresses.size() ? addresses[i].ToString() : c.endpoints[i].Address(),
                     c.endpoints[i].weight});
  }
  BalancerOptions options;
  options.seed = seed;
  // The config only lets through names MakeBalancer knows; round robin is the safe default.
  std::unique_ptr<Balancer> b = MakeBalancer(c.load_balancer, specs, options);
  return b ? std::move(b) : MakeBalancer("round_robin", std::move(specs), options);
}
}  // namespace

ClusterState::ClusterState(const config::Cluster& cluster, std::vector<net::Address> addresses,
                           observe::ClusterStats* stats, uint64_t seed,
                           std::shared_ptr<ClusterShared> shared)
    : shared_(shared ? std::move(shared)
                     : std::make_shared<ClusterShared>(cluster, addresses, nullptr)),
      name_(cluster.name),
      load_balancer_(cluster.load_balancer),
      addresses_(std::move(addresses)),
      budget_(cluster.retry, CoarseMonotonicMillis()),
      balancer_(BalancerFor(cluster, addresses_, seed)),
      wants_latency_(cluster.load_balancer == "p2c_ewma"),
      pools_(addresses_.size()),
      pool_config_(cluster.pool),
      connect_timeout_ms_(cluster.connect_timeout.count()),
      stats_(stats) {
  // What came back before this state existed is no news to its fresh balancer.
  seen_recoveries_ = shared_->recoveries();
  for (size_t i = 0; i < std::min(addresses_.size(), shared_->endpoint_count()); ++i) {
    seen_recovered_.push_back(shared_->recoveries(i));
  }
  if (!cluster.affinity.cookie.empty()) {
    affinity_ = std::make_unique<AffinityIndex>(std::span<const net::Address>(addresses_));
    for (const auto& a : addresses_) affinity_values_.push_back(AffinityCookieValue(a));
  }
}

void ClusterState::Tick(int64_t now_ms) {
  budget_.Advance(now_ms);
  const uint64_t recoveries = shared_->recoveries();
  if (recoveries == seen_recoveries_) return;
  seen_recoveries_ = recoveries;
  for (size_t i = 0; i < seen_recovered_.size(); ++i) {
    const uint32_t n = shared_->recoveries(i);
    if (n != seen_recovered_[i]) {
      seen_recovered_[i] = n;
      balancer_->Forget(i);
    }
  }
}

bool ClusterState::TryStartRetry(int64_t now_ms, bool connect_failure) {
  budget_.Advance(now_ms);
  if (budget_.TryRetry(connect_failure)) return true;
  shared_->counters().retry_budget_exhausted.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool ClusterState::SameEndpoints(const ClusterState& other) const {
  return name_ == other.name_ && addresses_ == other.addresses_;
}

size_t ClusterState::CloseExpired(int64_t now_ms) {
  size_t n = 0;
  for (auto& p : pools_) n += p.CloseExpired(now_ms, pool_config_.idle_timeout.count());
  return n;
}

size_t ClusterState::idle_connections() const {
  size_t n = 0;
  for (const auto& p : pools_) n += p.size();
  return n;
}

std::vector<net::Address> ResolveEndpoints(const config::Cluster& cluster) {
  std::vector<net::Address> out;
  for (const auto& e : cluster.endpoints) out.push_back(net::MakeAddress(e.host, e.port));
  return out;
}

}  // namespace ficus::upstream
