// Micro-benchmarks for ficus::http, the per-request parsing budget (a few tenths of a µs):
// a ~400-byte browser-like request head, a minimal curl-like head, the same head arriving in
// four reads, a typical response head, and chunked scanning of a 16 KiB body (one chunk, and
// 16 chunks of 1 KiB with an extension and a trailer). Reports ns per parse and bytes/s.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <string>

#include "http/http.h"

namespace {

using namespace ficus::http;

const std::string kBrowser =
    "GET /products/list?page=2&sort=price HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: session=4f9a1c2e7b; theme=dark\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

const std::string kCurl =
    "GET /health HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: "
    "*/*\r\n\r\n";

const std::string kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Content-Length: 1234\r\n"
    "Cache-Control: max-age=30\r\n"
    "ETag: \"5f2b-1234\"\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

void ParseRequest(benchmark::State& state, const std::string& head) {
  std::array<Header, 100> storage;
  RequestHeadParser parser(Limits{}, storage);
  RequestHead out;
  for (auto _ : state) {
    ficus::Result<size_t> r = parser.Parse(head, out);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out);
    if (!r.has_value() || *r != head.size()) state.SkipWithError("parse failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * head.size()));
  state.counters["head_bytes"] = static_cast<double>(head.size());
}

void BM_RequestHeadBrowser(benchmark::State& state) { ParseRequest(state, kBrowser); }
BENCHMARK(BM_RequestHeadBrowser);

void BM_RequestHeadCurl(benchmark::State& state) { ParseRequest(state, kCurl); }
BENCHMARK(BM_RequestHeadCurl);

// The browser head in four reads: three incomplete calls, then the complete one (which lexes
// the head once more to store the fields).
void BM_RequestHeadBrowserIn4Reads(benchmark::State& state) {
  std::array<Header, 100> storage;
  RequestHeadParser parser(Limits{}, storage);
  RequestHead out;
  const std::string_view head = kBrowser;
  const size_t q = head.size() / 4;
  for (auto _ : state) {
    for (size_t n : {q, 2 * q, 3 * q, head.size()}) {
      ficus::Result<size_t> r = parser.Parse(head.substr(0, n), out);
      benchmark::DoNotOptimize(r);
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * head.size()));
}
BENCHMARK(BM_RequestHeadBrowserIn4Reads);

void BM_ResponseHead(benchmark::State& state) {
  std::array<Header, 100> storage;
  ResponseHeadParser parser(Limits{}, storage);
  ResponseHead out;
  for (auto _ : state) {
    ficus::Result<size_t> r = parser.Parse(kResponse, Method::kGet, out);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out);
    if (!r.has_value() || *r != kResponse.size()) state.SkipWithError("parse failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kResponse.size()));
}
BENCHMARK(BM_ResponseHead);

std::string ChunkedBody(size_t chunks, size_t chunk_size, bool decorated) {
  std::string body;
  char size_line[64];
  for (size_t i = 0; i < chunks; ++i) {
    std::snprintf(size_line, sizeof size_line, decorated ? "%zx;seq=%zu\r\n" : "%zx\r\n",
                  chunk_size, i);
    body += size_line;
    body.append(chunk_size, 'x');
    body += "\r\n";
  }
  body += decorated ? "0\r\nX-Checksum: 0123456789abcdef\r\n\r\n" : "0\r\n\r\n";
  return body;
}

void ScanChunked(benchmark::State& state, const std::string& body, size_t read_size) {
  for (auto _ : state) {
    ChunkedScanner scanner;
    size_t pos = 0;
    while (!scanner.done() && pos < body.size()) {
      ficus::Result<size_t> r =
          scanner.Scan(std::string_view(body).substr(pos, std::min(read_size, body.size() - pos)));
      if (!r.has_value()) {
        state.SkipWithError("scan failed");
        break;
      }
      pos += *r;
    }
    benchmark::DoNotOptimize(pos);
    if (!scanner.done()) state.SkipWithError("not done");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_Chunked16KiBOneChunk(benchmark::State& state) {
  static const std::string body = ChunkedBody(1, 16 * 1024, false);
  ScanChunked(state, body, body.size());
}
BENCHMARK(BM_Chunked16KiBOneChunk);

void BM_Chunked16KiBSixteenChunks(benchmark::State& state) {
  static const std::string body = ChunkedBody(16, 1024, true);
  ScanChunked(state, body, body.size());
}
BENCHMARK(BM_Chunked16KiBSixteenChunks);

// 16 chunks as they arrive in 4 KiB reads.
void BM_Chunked16KiBSixteenChunksIn4KiBReads(benchmark::State& state) {
  static const std::string body = ChunkedBody(16, 1024, true);
  ScanChunked(state, body, 4096);
}
BENCHMARK(BM_Chunked16KiBSixteenChunksIn4KiBReads);

}  // namespace
