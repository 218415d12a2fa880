// The store alone: variants, the byte bound with S3-FIFO, pins outliving eviction, purges and
// fills.
#include "cache/internal/store.h"

#include <gtest/gtest.h>

#include <thread>

namespace ficus::cache {
namespace {

Object* Make(std::string key, size_t body_size, std::string secondary = {},
             std::vector<std::string> vary = {}) {
  auto* o = new Object;
  o->key = std::move(key);
  o->body = std::make_shared<const std::string>(body_size, 'x');
  o->secondary = std::move(secondary);
  o->vary_names = std::move(vary);
  o->timing.lifetime_s = 60;
  return o;
}

TEST(StoreTest, LookupPinsAndVariantsSelectByVary) {
  Store store(1 << 20, 1 << 16);
  store.Insert(Make("k", 10, "accept-encoding:gzip\n", {"accept-encoding"}));
  store.Insert(Make("k", 20, "accept-encoding:br\n", {"accept-encoding"}));
  std::vector<http::Header> gz{{"Accept-Encoding", "gzip", http::HeaderRole::kOther}};
  std::vector<http::Header> none;
  bool vary_miss = false;
  Object* o = store.Lookup("k", gz, &vary_miss);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->body->size(), 10u);
  o->Unref();
  EXPECT_EQ(store.Lookup("k", none, &vary_miss), nullptr);
  EXPECT_TRUE(vary_miss);
  vary_miss = false;
  EXPECT_EQ(store.Lookup("other", none, &vary_miss), nullptr);
  EXPECT_FALSE(vary_miss);
  // The same variant again replaces it.
  store.Insert(Make("k", 30, "accept-encoding:gzip\n", {"accept-encoding"}));
  o = store.Lookup("k", gz, nullptr);
  EXPECT_EQ(o->body->size(), 30u);
  o->Unref();
  EXPECT_EQ(store.stats().objects.load(), 2);
}

TEST(StoreTest, StaysWithinItsBoundAndPinnedObjectsSurviveEviction) {
  Store store(16 * 64 * 1024, 64 * 1024);
  store.Insert(Make("pinned", 1000));
  std::vector<http::Header> none;
  Object* pinned = store.Lookup("pinned", none, nullptr);
  ASSERT_NE(pinned, nullptr);
  for (int i = 0; i < 5000; ++i) store.Insert(Make("k" + std::to_string(i), 1000));
  EXPECT_LE(store.stats().bytes.load(), static_cast<int64_t>(store.max_bytes()));
  EXPECT_GT(store.stats().evictions.load(), 0u);
  EXPECT_EQ(pinned->body->size(), 1000u);  // still readable: the pin holds it
  pinned->Unref();
  // Objects over the per-object bound are not stored.
  store.Insert(Make("big", 65 * 1024));
  EXPECT_EQ(store.Lookup("big", none, nullptr), nullptr);
}

TEST(StoreTest, FrequentlyUsedKeysSurviveAScan) {
  Store store(16 * 64 * 1024, 64 * 1024);  // room for ~1000 objects of 1000 B
  std::vector<http::Header> none;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) {
      const std::string k = "hot" + std::to_string(i);
      if (Object* o = store.Lookup(k, none, nullptr)) {
        o->Unref();
      } else {
        store.Insert(Make(k, 1000));
      }
    }
  }
  for (int i = 0; i < 5000; ++i) store.Insert(Make("scan" + std::to_string(i), 1000));
  int kept = 0;
  for (int i = 0; i < 100; ++i) {
    if (Object* o = store.Lookup("hot" + std::to_string(i), none, nullptr)) {
      ++kept;
      o->Unref();
    }
  }
  EXPECT_GE(kept, 90);  // LRU would keep none of them
}

TEST(StoreTest, PurgesByKeyPrefixTagAndAll) {
  Store store(1 << 20, 1 << 16);
  Object* a = Make("http://h/a/1", 1);
  a->tags = "product-1 list";
  store.Insert(a);
  store.Insert(Make("http://h/a/2", 1));
  store.Insert(Make("http://h/b/1", 1));
  store.Insert(Make("http://h/c", 1));
  EXPECT_EQ(store.PurgeTag("list"), 1u);
  EXPECT_EQ(store.PurgePrefix("http://h/a/"), 1u);
  EXPECT_EQ(store.Invalidate("http://h/b/1"), 1u);
  EXPECT_EQ(store.PurgeAll(), 1u);
  EXPECT_EQ(store.stats().objects.load(), 0);
  EXPECT_EQ(store.stats().bytes.load(), 0);
}

TEST(StoreTest, OneFillPerKeyAndItsWaitersAreSignalled) {
  Store store(1 << 20, 1 << 16);
  net::Loop loop;
  net::Wakeup w1(loop), w2(loop);
  EXPECT_FALSE(store.JoinFill("k", &w1));  // nothing in flight
  EXPECT_TRUE(store.BeginFill("k"));
  EXPECT_FALSE(store.BeginFill("k"));
  EXPECT_TRUE(store.JoinFill("k", &w1));
  EXPECT_TRUE(store.JoinFill("k", &w2));
  std::thread other([&store] { store.EndFill("k"); });
  other.join();
  EXPECT_TRUE(w1.signaled());
  EXPECT_TRUE(w2.signaled());
  EXPECT_TRUE(store.BeginFill("k"));
  store.EndFill("k");
}

}  // namespace
}  // namespace ficus::cache
