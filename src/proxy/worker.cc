#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <random>

#include "base/log.h"
#include "proxy/internal/heads.h"
#include "proxy/internal/policies.h"
#include "proxy/internal/session.h"
#include "proxy/proxy.h"

namespace ficus::proxy {
namespace {

constexpr size_t kMaxFreeBlocks = 32;  // per worker: ~2 MiB kept warm, the rest goes back to the OS
constexpr std::chrono::milliseconds kSweepEvery{100};

net::Task<void> RunSession(std::unique_ptr<Session> session) { co_await session->Run(); }

void LogIfThrew(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("connection task failed: {}", ex.what());
  }
}

}  // namespace

std::shared_ptr<const Snapshot> BuildSnapshot(std::shared_ptr<const config::Config> config,
                                              observe::Registry& registry, uint64_t generation,
                                              const Snapshot* previous) {
  auto snap = std::shared_ptr<Snapshot>(
      new Snapshot{config, route::RouteTable(*config), {}, {}, {}, {}, generation, {}, {}, {}});
  for (const auto& r : config->routes) snap->route_stats.push_back(registry.Route(r.name));
  for (const auto& r : config->routes) {  // capture files open here, on the main thread
    Snapshot::RouteRecord rr;
    if (r.record) {
      rr.recorder = &record::Open(r.record->path);
      rr.recorder->EnsureWorkers(static_cast<int>(config->workers));
      rr.policy = rr.recorder->AddPolicy({r.name, r.record->redact_headers});
      rr.sample = r.record->sample;
      rr.max_body_bytes = r.record->max_body_bytes;
    }
    snap->route_records.push_back(rr);
  }
  // Each route's policies, in policy::Order (empty for most routes: admit then costs nothing).
  // A route keeps its name across a reload, and with it the state its policies carry over.
  for (const auto& r : config->routes) {
    const policy::Chain* before = nullptr;
    if (previous) {
      for (size_t i = 0; i < previous->config->routes.size(); ++i) {
        if (previous->config->routes[i].name == r.name) before = &previous->route_policies[i];
      }
    }
    snap->route_policies.push_back(
        BuildRoutePolicies(*config, snap->route_policies.size(), before));
  }
  for (const auto& c : config->clusters) {
    snap->cluster_stats.push_back(registry.Cluster(c.name));
    auto& endpoints = snap->endpoint_stats.emplace_back();
    for (const auto& e : c.endpoints) endpoints.push_back(registry.Endpoint(c.name, e.Address()));
    snap->cluster_addresses.push_back(upstream::ResolveEndpoints(c));
    const upstream::ClusterShared* before = nullptr;
    if (previous) {
      for (const auto& p : previous->cluster_shared) {
        if (p->name() == c.name) before = p.get();
      }
    }
    snap->cluster_shared.push_back(
        std::make_shared<upstream::ClusterShared>(c, snap->cluster_addresses.back(), before));
  }
  return snap;
}

Worker::Worker(int id, net::Loop& loop, observe::Registry& registry,
               std::shared_ptr<const Snapshot> snapshot)
    : id_(id),
      loop_(loop),
      registry_(registry),
      snapshot_(std::move(snapshot)),
      rng_(std::random_device{}() ^ (uint64_t(id) << 32)) {
  const auto& cfg = *snapshot_->config;
  max_connections_ = (int64_t{cfg.limits.max_connections} + cfg.workers - 1) / cfg.workers;
  RebuildClusters();
}

Worker::~Worker() {
  for (char* b : free_blocks_) ::munmap(b, kBlockSize);
}

void Worker::Start() {
  std::vector<std::unique_ptr<Listener>> opened;
  for (const auto& l : snapshot_->config->listeners) {
    if (l.kind != config::ListenerKind::kHttp) continue;  // postgres: the pg module's
    auto slot = std::make_unique<Listener>();
    slot->address = l.Address();
    slot->socket = net::Listen(loop_, net::MakeAddress(l.address, l.port));
    slot->removed_flag = &listener_removed_.emplace_back(false);
    opened.push_back(std::move(slot));
  }
  listeners_ = std::move(opened);
  for (auto& l : listeners_) net::Spawn(AcceptLoop(*l), LogIfThrew);
  loop_.SetTick(kSweepEvery, [this] { Tick(); });
  started_ = true;
}

void Worker::SetSnapshot(std::shared_ptr<const Snapshot> snapshot) {
  snapshot_ = std::move(snapshot);
  const auto& cfg = *snapshot_->config;
  max_connections_ = (int64_t{cfg.limits.max_connections} + cfg.workers - 1) / cfg.workers;
  RebuildClusters();
  if (started_ && !draining_) ReconcileListeners();
}

void Worker::ReconcileListeners() {
  const auto& wanted = snapshot_->config->listeners;
  // Removed: stop accepting (the kernel refuses new connections once the socket closes);
  // connections already accepted finish their exchanges as usual.
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    const bool keep = std::any_of(wanted.begin(), wanted.end(), [&](const config::Listener& l) {
      return l.kind == config::ListenerKind::kHttp && l.Address() == (*it)->address;
    });
    if (keep) {
      ++it;
      continue;
    }
    log::info("worker {}: listener {} removed; closing it", id_, (*it)->address);
    (*it)->removed = true;
    *(*it)->removed_flag = true;
    (*it)->socket.Cancel();
    retired_listeners_.push_back(std::move(*it));
    it = listeners_.erase(it);
  }
  // Added: open and accept.
  for (const auto& l : wanted) {
    if (l.kind != config::ListenerKind::kHttp) continue;  // postgres: the pg module's
    const bool have = std::any_of(listeners_.begin(), listeners_.end(),
                                  [&](const auto& slot) { return slot->address == l.Address(); });
    if (have) continue;
    auto slot = std::make_unique<Listener>();
    slot->address = l.Address();
    try {
      slot->socket = net::Listen(loop_, net::MakeAddress(l.address, l.port));
    } catch (const std::exception& e) {
      log::error("worker {}: cannot open listener {}: {}", id_, slot->address, e.what());
      continue;
    }
    slot->removed_flag = &listener_removed_.emplace_back(false);
    log::info("worker {}: listener {} opened", id_, slot->address);
    listeners_.push_back(std::move(slot));
    net::Spawn(AcceptLoop(*listeners_.back()), LogIfThrew);
  }
}

void Worker::RebuildClusters() {
  std::vector<std::shared_ptr<upstream::ClusterState>> next;
  const auto& cfg = *snapshot_->config;
  for (size_t i = 0; i < cfg.clusters.size(); ++i) {
    // Per worker and per cluster: the worker id keeps seeds apart even if two random draws
    // met, and the random part keeps processes and reloads apart.
    const uint64_t seed = rng_() ^ (uint64_t(id_) << 48) ^ i;
    auto state = std::make_shared<upstream::ClusterState>(
        cfg.clusters[i], snapshot_->cluster_addresses[i], snapshot_->cluster_stats[i], seed,
        snapshot_->cluster_shared[i]);
    for (auto& old : clusters_) {
      if (old && old->SameEndpoints(*state)) {
        // Warm connections survive a reload that kept the cluster; the balancer starts fresh.
        state->AdoptPools(*old);
        break;
      }
    }
    next.push_back(std::move(state));
  }
  clusters_ = std::move(next);
}

net::Task<void> Worker::AcceptLoop(Listener& slot) {
  auto& stats = server_stats();
  net::Socket& listener = slot.socket;
  ++accept_loops_;
  slot.running = true;
  while (!draining_ && !slot.removed) {
    Result<int> fd = co_await listener.Accept();
    if (draining_ || slot.removed) {
      if (fd) ::close(*fd);
      break;
    }
    if (!fd) {
      // Out of descriptors or memory: back off instead of spinning on the listener.
      log::warn("worker {}: accept failed: {}", id_, std::strerror(errno));
      co_await loop_.Sleep(std::chrono::milliseconds(100));
      continue;
    }
    if (active_connections_ >= max_connections_) {
      stats.connections_rejected.Add();
      ::close(*fd);
      continue;
    }
    net::SetNoDelay(*fd);
    auto session = std::make_unique<Session>(*this, net::Socket(loop_, *fd));
    session->WatchListener(slot.removed_flag);
    net::Spawn(RunSession(std::move(session)), LogIfThrew);
  }
  listener.Close();  // new connections are refused from here on
  slot.running = false;
  --accept_loops_;
}

void Worker::Tick() {
  if (stopped_) return;
  const int64_t now = CoarseMonotonicMillis();
  timeouts_.Sweep(now);
  std::erase_if(retired_listeners_, [](const auto& l) { return !l->running; });
  // Retry budgets slide here (a request only counts itself: no clock read), and balancers
  // forget endpoints that came back.
  for (auto& c : clusters_) c->Tick(now);
  if (++tick_count_ % 10 != 0) return;
  // Once a second: close upstream connections idle past their pool's idle_timeout.
  for (auto& c : clusters_) {
    c->CloseExpired(now);
    auto& cell = c->stats()->Cell(id_);
    cell.idle_connections.Add(static_cast<int64_t>(c->idle_connections()) -
                              cell.idle_connections.Get());
  }
}

void Worker::StartDrain() {
  if (draining_) return;
  draining_ = true;
  for (auto& l : listeners_) l->socket.Cancel();
  timeouts_.ForEach([](net::TimeoutList::Entry* e) { static_cast<Session*>(e)->CloseIfIdle(); });
}

void Worker::Abort() {
  draining_ = true;
  stopped_ = true;
  for (auto& l : listeners_) l->socket.Cancel();
  timeouts_.ForEach([](net::TimeoutList::Entry* e) { static_cast<Session*>(e)->Abort(); });
  for (auto& c : clusters_) {
    for (size_t i = 0; i < c->endpoint_count(); ++i) c->pool(i).CloseAll();
  }
}

char* Worker::AcquireBlock() {
  if (!free_blocks_.empty()) {
    char* b = free_blocks_.back();
    free_blocks_.pop_back();
    return b;
  }
  // mmap rather than malloc: a block freed beyond the warm set returns to the OS at once, so
  // a burst of connections does not leave RSS high for good.
  void* p = ::mmap(nullptr, kBlockSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<char*>(p);
}

void Worker::ReleaseBlock(char* block) {
  if (free_blocks_.size() < kMaxFreeBlocks) {
    free_blocks_.push_back(block);
  } else {
    ::munmap(block, kBlockSize);
  }
}

void Worker::NewRequestId(char out[36]) {
  const uint64_t hi = rng_();
  FormatRequestId(hi, rng_(), out);
}

void Worker::SessionStarted(Session* s) {
  timeouts_.Add(s);
  ++active_connections_;
  server_stats().active_connections.Add(1);
  server_stats().connections_accepted.Add();
}

void Worker::SessionEnded(Session* s) {
  timeouts_.Remove(s);
  --active_connections_;
  server_stats().active_connections.Add(-1);
}

}  // namespace ficus::proxy
