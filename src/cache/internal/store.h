// The memory store of one cached route: immutable objects shared by reference count (a hit
// pins the object and writes its body from there, never copying it), sharded by key with short
// critical sections, bounded in bytes, with S3-FIFO admission and eviction (a small probation
// FIFO, a main FIFO with reinsertion, a ghost FIFO of recently evicted keys: one-hit wonders
// leave quickly, and it beats LRU at equal memory: bench/cache/). It also keeps the fills in
// flight, so that concurrent misses for one key wait for the first (coalescing).
//
// Thread safety: every method may be called from any worker thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/internal/rfc.h"
#include "http/http.h"
#include "net/net.h"

namespace ficus::cache {

// One stored response. Immutable once inserted, except the fields the store's lock guards
// (queue links, freq, in_store) and the atomic flags.
struct Object {
  int status = 200;
  std::string key;          // primary key
  std::string headers;      // raw "Name: value\r\n" lines to send (no Age, framing, hop-by-hop)
  std::string headers_304;  // the subset a 304 carries (RFC 9110 §15.4.5)
  std::shared_ptr<const std::string> body;  // shared with refreshed copies (a 304 refresh)
  std::vector<std::string> vary_names;      // lower-case
  std::string secondary;                    // AppendSecondaryKey of the request that stored it
  Timing timing;
  bool no_cache = false;         // always revalidate
  bool must_revalidate = false;  // never serve stale (must-/proxy-revalidate, s-maxage)
  bool transformed = false;      // ficus re-encoded the body (compression): never for no-transform
  int64_t stale_while_revalidate_s = 0;
  int64_t stale_if_error_s = 0;
  std::string etag;       // as served (weak when the body was re-encoded, RFC 9110 §8.8.3)
  std::string validator;  // the upstream's own ETag: what revalidation sends and a 304 names
  std::string last_modified;
  std::string tags;  // Surrogate-Key and Cache-Tag members, space-separated, for purges

  size_t Charge() const;  // bytes counted against the store's bound
  void Ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // One stale-while-revalidate refresh at a time: the exchange that wins this goes upstream.
  std::atomic<bool> revalidating{false};

  // --- guarded by the owning shard's lock ---
  Object* prev = nullptr;
  Object* next = nullptr;
  uint8_t freq = 0;
  bool in_main = false;
  bool in_store = false;

 private:
  std::atomic<uint32_t> refs{1};
};

// Counters of one route's cache, shared by every worker (relaxed atomics). Survives reloads with
// the store.
struct Stats {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};        // forwarded (or waited for a fill): GET/HEAD, and counted
                                          // before coalesced or stale-if-error answered them
  std::atomic<uint64_t> stale{0};         // served stale (stale-while-revalidate / -if-error)
  std::atomic<uint64_t> stale_errors{0};  // ... of which stale-if-error (also misses)
  std::atomic<uint64_t> revalidated{0};   // a 304 refreshed a stored response
  std::atomic<uint64_t> coalesced{0};     // answered from another request's fill
  std::atomic<uint64_t> coalesce_timeouts{0};  // ... and went upstream after coalesce_timeout
  std::atomic<uint64_t> bypassed{0};           // not cacheable (method, directives, size)
  std::atomic<uint64_t> stored{0};             // responses stored
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> purged{0};
  std::atomic<uint64_t> invalidated{0};
  std::atomic<int64_t> bytes{0};  // gauge
  std::atomic<int64_t> objects{0};
  static void Add(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
};

class Store {
 public:
  Store(uint64_t max_bytes, uint64_t max_object_bytes);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  uint64_t max_bytes() const { return max_bytes_; }
  uint64_t max_object_bytes() const { return max_object_bytes_; }
  Stats& stats() { return stats_; }

  // The stored response for `key` whose Vary selects `request`'s fields, pinned (the caller
  // Unrefs it), or null; `vary_miss` says some variant exists but none matched.
  Object* Lookup(std::string_view key, std::span<const http::Header> request, bool* vary_miss);
  // Stores `obj` (taking the caller's reference): replaces the variant with the same secondary
  // key, then evicts to the bound. An object over the per-object bound is dropped.
  void Insert(Object* obj);
  // Removes every variant of `key`; the number removed.
  size_t Invalidate(std::string_view key);
  size_t PurgePrefix(std::string_view prefix);
  size_t PurgeTag(std::string_view tag);
  size_t PurgeAll();

  // Coalescing. BeginFill: true when the caller leads the fill of `key` (no fill in flight).
  // JoinFill: registers `w` to be signalled when the fill in flight ends; false when none is.
  // EndFill: ends the fill and signals its waiters (from any thread), under the shard's lock.
  // LeaveFill: a waiter that stops waiting (its timeout) takes `w` back; false when EndFill took
  // it first. Once LeaveFill returned, no Signal of EndFill is still touching `w`: its owner may
  // destroy it.
  bool BeginFill(std::string_view key);
  bool JoinFill(std::string_view key, net::Wakeup* w);
  void EndFill(std::string_view key);
  bool LeaveFill(std::string_view key, net::Wakeup* w);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct List {
    Object* head = nullptr;
    Object* tail = nullptr;
    uint64_t bytes = 0;
    void PushBack(Object* o);
    void Remove(Object* o);
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<Object*>, Hash, std::equal_to<>> map;
    std::unordered_map<std::string, std::vector<net::Wakeup*>, Hash, std::equal_to<>> fills;
    List small, main;
    std::deque<uint64_t> ghost;
    std::unordered_map<uint64_t, uint32_t> ghost_count;
  };
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxVariants = 8;

  Shard& ShardOf(std::string_view key) { return shards_[Hash{}(key) % kShards]; }
  // REQUIRES: the shard's lock. Unlinks `o` from the map and its queue and drops the store's ref.
  void Kill(Shard& s, Object* o);
  template <typename Pred>
  size_t KillIf(Pred pred);
  void Evict(Shard& s);
  void Remember(Shard& s, uint64_t hash);

  const uint64_t max_bytes_;
  const uint64_t max_object_bytes_;
  const uint64_t shard_bytes_;
  Shard shards_[kShards];
  Stats stats_;
};

}  // namespace ficus::cache
