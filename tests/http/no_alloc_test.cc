// The parsers are on the hot path: parsing a head or scanning a chunked body must not touch the
// heap. This binary replaces the global operator new to count allocations.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "http/http.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// g++ sees free() on memory from operator new and warns, not knowing this is the replacement.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace ficus::http {
namespace {

std::string* volatile g_probe = nullptr;

TEST(NoAllocTest, ParsersDoNotAllocate) {
  const std::string request =
      "GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\nConnection: x, close\r\n"
      "X: 1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nConnection: keep-alive, y\r\nY: 1\r\n\r\n";
  const std::string body = "5;e=\"v\"\r\nhello\r\n0\r\nT: 1\r\n\r\n";
  std::array<Header, 100> storage;
  RequestHead req;
  ResponseHead resp;

  const uint64_t before = g_allocations.load();
  RequestHeadParser rp(Limits{}, storage);
  Result<size_t> r = rp.Parse(request, req);
  // Trickled, too: the resumable path keeps offsets, not a copy.
  for (size_t n = 1; n <= request.size(); ++n) {
    Result<size_t> t = rp.Parse(std::string_view(request).substr(0, n), req);
    if (!t.has_value() || *t != 0) break;
  }
  Result<size_t> bad = rp.Parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", req);
  ResponseHeadParser sp(Limits{}, storage);
  Result<size_t> s = sp.Parse(response, Method::kGet, resp);
  ChunkedScanner cs;
  Result<size_t> c = cs.Scan(body);
  const uint64_t after = g_allocations.load();

  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, request.size());
  EXPECT_FALSE(bad.has_value());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, response.size());
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(cs.done());
  EXPECT_EQ(after - before, 0u);
  // The counter works.
  g_probe = new std::string(100, 'x');
  EXPECT_GT(g_allocations.load(), after);
  delete g_probe;
}

}  // namespace
}  // namespace ficus::http
