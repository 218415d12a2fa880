#include <sys/mman.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstring>
#include <new>
#include <random>

#include "base/log.h"
#include "proxy/internal/session.h"
#include "proxy/proxy.h"

namespace ficus::proxy {
namespace {

namespace asio = net::asio;
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
                                              observe::Registry& registry, uint64_t generation) {
  auto snap = std::shared_ptr<Snapshot>(new Snapshot{config, route::RouteTable(*config), {}, {}, {},
                                                     generation});
  for (const auto& r : config->routes) snap->route_stats.push_back(registry.Route(r.name));
  for (const auto& c : config->clusters) {
    snap->cluster_stats.push_back(registry.Cluster(c.name));
    snap->cluster_addresses.push_back(upstream::ResolveEndpoints(c));
  }
  return snap;
}

Worker::Worker(int id, asio::io_context& io, observe::Registry& registry,
               std::shared_ptr<const Snapshot> snapshot)
    : id_(id), io_(io), registry_(registry), snapshot_(std::move(snapshot)),
      rng_(std::random_device{}() ^ (uint64_t(id) << 32)) {
  const auto& cfg = *snapshot_->config;
  max_connections_ = (int64_t{cfg.limits.max_connections} + cfg.workers - 1) / cfg.workers;
  RebuildClusters();
}

Worker::~Worker() {
  for (char* b : free_blocks_) ::munmap(b, kBlockSize);
}

void Worker::Start() {
  for (const auto& l : snapshot_->config->listeners) {
    acceptors_.push_back(net::Listen(io_, net::MakeEndpoint(l.address, l.port)));
  }
  // Spawned only after the vector is complete: the loops hold references into it.
  for (auto& a : acceptors_) asio::co_spawn(io_, AcceptLoop(a), LogIfThrew);
  asio::co_spawn(io_, SweepLoop(), LogIfThrew);
}

void Worker::SetSnapshot(std::shared_ptr<const Snapshot> snapshot) {
  snapshot_ = std::move(snapshot);
  const auto& cfg = *snapshot_->config;
  max_connections_ = (int64_t{cfg.limits.max_connections} + cfg.workers - 1) / cfg.workers;
  RebuildClusters();
}

void Worker::RebuildClusters() {
  std::vector<std::shared_ptr<upstream::ClusterState>> next;
  const auto& cfg = *snapshot_->config;
  for (size_t i = 0; i < cfg.clusters.size(); ++i) {
    auto state = std::make_shared<upstream::ClusterState>(
        cfg.clusters[i], snapshot_->cluster_addresses[i], snapshot_->cluster_stats[i]);
    for (auto& old : clusters_) {
      if (old && old->SameEndpoints(*state)) {
        state->AdoptPools(*old);  // warm connections survive a reload that kept the cluster
        break;
      }
    }
    next.push_back(std::move(state));
  }
  clusters_ = std::move(next);
}

net::Task<void> Worker::AcceptLoop(net::tcp::acceptor& acceptor) {
  auto& stats = server_stats();
  for (;;) {
    net::ErrorCode ec;
    net::tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || draining_ || stopped_) co_return;
      // Out of descriptors or memory: back off instead of spinning on the listener.
      log::warn("worker {}: accept failed: {}", id_, ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (active_connections_ >= max_connections_) {
      stats.connections_rejected.Add();
      net::ErrorCode ignored;
      socket.close(ignored);
      continue;
    }
    net::PrepareSocket(socket);
    asio::co_spawn(io_, RunSession(std::make_unique<Session>(*this, std::move(socket))),
                   LogIfThrew);
  }
}

net::Task<void> Worker::SweepLoop() {
  asio::steady_timer timer(io_);
  int tick = 0;
  while (!stopped_) {
    timer.expires_after(kSweepEvery);
    net::ErrorCode ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) break;
    const int64_t now = CoarseMonotonicMillis();
    timeouts_.Sweep(now);
    if (++tick % 10 == 0) {  // once a second: expire idle upstream connections
      for (auto& c : clusters_) {
        c->CloseExpired(now);
        auto& cell = c->stats()->Cell(id_);
        cell.idle_connections.Add(static_cast<int64_t>(c->idle_connections()) -
                                  cell.idle_connections.Get());
      }
    }
  }
}

void Worker::StartDrain() {
  if (draining_) return;
  draining_ = true;
  net::ErrorCode ignored;
  for (auto& a : acceptors_) a.close(ignored);
  timeouts_.ForEach([](net::TimeoutList::Entry* e) { static_cast<Session*>(e)->CloseIfIdle(); });
}

void Worker::Abort() {
  draining_ = true;
  stopped_ = true;
  net::ErrorCode ignored;
  for (auto& a : acceptors_) a.close(ignored);
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
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t hi = rng_();
  uint64_t lo = rng_();
  // UUID version 4, variant 1.
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);
  int pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out[pos++] = '-';
    uint64_t word = i < 16 ? hi : lo;
    int shift = (15 - (i % 16)) * 4;
    out[pos++] = kHex[(word >> shift) & 0xF];
  }
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
