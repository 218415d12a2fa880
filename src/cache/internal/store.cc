// The store: shards of key -> variants, S3-FIFO queues per shard (Yang et al., SOSP 2023), and
// the fills in flight.
#include "cache/internal/store.h"

#include <algorithm>

namespace ficus::cache {

namespace {

// S3-FIFO's probation queue holds this share of the bytes.
constexpr uint64_t kSmallShare = 10;  // percent
// The small queue promotes an object seen again at least this often while on probation.
constexpr uint8_t kPromote = 1;
constexpr uint8_t kMaxFreq = 3;

thread_local std::string t_secondary;

}  // namespace

size_t Object::Charge() const {
  size_t n = sizeof(Object) + key.size() + headers.size() + secondary.size() + etag.size() +
             last_modified.size() + tags.size() + headers_304.size() +
             (body ? body->capacity() : 0);  // the memory held, not only the bytes used
  for (const std::string& v : vary_names) n += v.size() + sizeof(std::string);
  return n;
}

void Store::List::PushBack(Object* o) {
  o->prev = tail;
  o->next = nullptr;
  (tail ? tail->next : head) = o;
  tail = o;
  bytes += o->Charge();
}

void Store::List::Remove(Object* o) {
  (o->prev ? o->prev->next : head) = o->next;
  (o->next ? o->next->prev : tail) = o->prev;
  o->prev = o->next = nullptr;
  bytes -= o->Charge();
}

Store::Store(uint64_t max_bytes, uint64_t max_object_bytes)
    : max_bytes_(max_bytes),
      max_object_bytes_(max_object_bytes),
      shard_bytes_(std::max<uint64_t>(max_bytes / kShards, 1)) {}

Store::~Store() {
  PurgeAll();
  // Fills still in flight belong to exchanges that hold the store (it outlives them).
}

Object* Store::Lookup(std::string_view key, std::span<const http::Header> request,
                      bool* vary_miss) {
  Shard& s = ShardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  // Newest variant first.
  for (auto v = it->second.rbegin(); v != it->second.rend(); ++v) {
    Object* o = *v;
    if (!o->vary_names.empty()) {
      t_secondary.clear();
      AppendSecondaryKey(o->vary_names, request, t_secondary);
      if (t_secondary != o->secondary) continue;
    }
    if (o->freq < kMaxFreq) ++o->freq;
    o->Ref();
    return o;
  }
  if (vary_miss) *vary_miss = true;
  return nullptr;
}

void Store::Insert(Object* obj) {
  const size_t charge = obj->Charge();
  if (charge > shard_bytes_ || (obj->body && obj->body->size() > max_object_bytes_)) {
    obj->Unref();
    return;
  }
  Shard& s = ShardOf(obj->key);
  std::lock_guard lock(s.mu);
  std::vector<Object*>& variants = s.map[obj->key];
  for (Object* o : std::vector<Object*>(variants)) {
    if (o->secondary == obj->secondary) Kill(s, o);
  }
  std::vector<Object*>& again = s.map[obj->key];  // Kill may have erased the entry
  if (again.size() >= kMaxVariants) Kill(s, again.front());
  s.map[obj->key].push_back(obj);
  obj->in_store = true;
  obj->freq = 0;
  const uint64_t hash = Hash{}(obj->key);
  auto ghost = s.ghost_count.find(hash);
  obj->in_main = ghost != s.ghost_count.end();
  (obj->in_main ? s.main : s.small).PushBack(obj);
  stats_.bytes.fetch_add(static_cast<int64_t>(charge), std::memory_order_relaxed);
  stats_.objects.fetch_add(1, std::memory_order_relaxed);
  Stats::Add(stats_.stored);
  Evict(s);
}

void Store::Kill(Shard& s, Object* o) {
  auto it = s.map.find(o->key);
  if (it != s.map.end()) {
    std::erase(it->second, o);
    if (it->second.empty()) s.map.erase(it);
  }
  (o->in_main ? s.main : s.small).Remove(o);
  o->in_store = false;
  stats_.bytes.fetch_sub(static_cast<int64_t>(o->Charge()), std::memory_order_relaxed);
  stats_.objects.fetch_sub(1, std::memory_order_relaxed);
  o->Unref();
}

void Store::Remember(Shard& s, uint64_t hash) {
  ++s.ghost_count[hash];
  s.ghost.push_back(hash);
  // The ghost remembers about as many keys as the shard holds objects.
  const size_t cap = std::max<size_t>(64, s.map.size());
  while (s.ghost.size() > cap) {
    auto g = s.ghost_count.find(s.ghost.front());
    if (g != s.ghost_count.end() && --g->second == 0) s.ghost_count.erase(g);
    s.ghost.pop_front();
  }
}

void Store::Evict(Shard& s) {
  while (s.small.bytes + s.main.bytes > shard_bytes_) {
    if (s.main.head == nullptr || s.small.bytes > shard_bytes_ * kSmallShare / 100) {
      Object* o = s.small.head;
      s.small.Remove(o);
      if (o->freq >= kPromote) {
        o->freq = 0;
        o->in_main = true;
        s.main.PushBack(o);
        continue;
      }
      s.small.PushBack(o);  // Kill unlinks it from its queue
      Remember(s, Hash{}(o->key));
      Kill(s, o);
      Stats::Add(stats_.evictions);
    } else {
      Object* o = s.main.head;
      s.main.Remove(o);
      s.main.PushBack(o);
      if (o->freq > 0) {
        --o->freq;
        continue;
      }
      Kill(s, o);
      Stats::Add(stats_.evictions);
    }
  }
}

size_t Store::Invalidate(std::string_view key) {
  Shard& s = ShardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return 0;
  std::vector<Object*> victims = it->second;
  for (Object* o : victims) Kill(s, o);
  return victims.size();
}

template <typename Pred>
size_t Store::KillIf(Pred pred) {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    std::vector<Object*> victims;
    for (auto& [key, variants] : s.map) {
      for (Object* o : variants) {
        if (pred(*o)) victims.push_back(o);
      }
    }
    for (Object* o : victims) Kill(s, o);
    n += victims.size();
  }
  stats_.purged.fetch_add(n, std::memory_order_relaxed);
  return n;
}

size_t Store::PurgePrefix(std::string_view prefix) {
  return KillIf([prefix](const Object& o) { return o.key.starts_with(prefix); });
}

size_t Store::PurgeTag(std::string_view tag) {
  return KillIf([tag](const Object& o) {
    std::string_view rest = o.tags;
    while (!rest.empty()) {
      const size_t sp = rest.find(' ');
      if (rest.substr(0, sp) == tag) return true;
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    return false;
  });
}

size_t Store::PurgeAll() {
  return KillIf([](const Object&) { return true; });
}

bool Store::BeginFill(std::string_view key) {
  Shard& s = ShardOf(key);
  std::lock_guard lock(s.mu);
  if (s.fills.find(key) != s.fills.end()) return false;
  s.fills.emplace(std::string(key), std::vector<net::Wakeup*>{});
  return true;
}

bool Store::JoinFill(std::string_view key, net::Wakeup* w) {
  Shard& s = ShardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.fills.find(key);
  if (it == s.fills.end()) return false;
  it->second.push_back(w);
  return true;
}

void Store::EndFill(std::string_view key) {
  Shard& s = ShardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.fills.find(key);
  if (it == s.fills.end()) return;
  // Signalled under the lock: a waiter that timed out (LeaveFill) must not destroy its Wakeup
  // while a Signal is still touching it. A Signal is an atomic exchange and a post.
  for (net::Wakeup* w : it->second) w->Signal();
  s.fills.erase(it);
}

bool Store::LeaveFill(std::string_view key, net::Wakeup* w) {
  Shard& s = ShardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.fills.find(key);
  if (it == s.fills.end()) return false;
  auto& waiters = it->second;
  auto found = std::find(waiters.begin(), waiters.end(), w);
  if (found == waiters.end()) return false;
  waiters.erase(found);
  return true;
}

}  // namespace ficus::cache
