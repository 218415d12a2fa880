// The recorder: the JSON line for a captured request (redaction, text/base64 bodies, chunked
// bodies decoded, truncation), the worker -> writer hand-off, and drop-and-count when a
// worker's slots are all in use.
#include "record/record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace ficus::record {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Slot MakeSlot(std::string head, std::string body, uint64_t max_body = 1024, bool chunked = false) {
  Slot s;
  s.time_us = 1'700'000'000'123'456;
  s.head = std::move(head);
  s.chunked = chunked;
  s.max_body = max_body;
  s.AppendBody(body);
  return s;
}

TEST(RecordFormat, HeadHeadersAndRedaction) {
  Slot s = MakeSlot(
      "POST /a?b=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nCookie: c=1\r\n"
      "X-Quote: say \"hi\"\r\nContent-Length: 5\r\n\r\n",
      "hello");
  std::string line = Recorder::Format(s, Policy{"api", {"authorization", "cookie"}});
  EXPECT_EQ(line,
            "{\"t\":1700000000.123456,\"route\":\"api\",\"method\":\"POST\",\"target\":\"/a?b=1\","
            "\"headers\":[[\"Host\",\"x\"],[\"Authorization\",\"REDACTED\"],[\"Cookie\","
            "\"REDACTED\"],[\"X-Quote\",\"say \\\"hi\\\"\"],[\"Content-Length\",\"5\"]],"
            "\"body\":\"hello\",\"body_bytes\":5,\"truncated\":false}");
  EXPECT_THAT(line, Not(HasSubstr("secret")));
}

TEST(RecordFormat, BinaryBodyIsBase64AndTruncationIsMarked) {
  Slot s = MakeSlot("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n",
                    std::string("\x00\x01\xff\xfe"
                                "ab",
                                6),
                    5);
  std::string line = Recorder::Format(s, Policy{"r", {}});
  EXPECT_THAT(line, HasSubstr("\"body_base64\":\"AAH//mE=\""));  // the first 5 bytes
  EXPECT_THAT(line, HasSubstr("\"body_bytes\":6,\"truncated\":true"));
  // UTF-8 text stays text, with its escapes.
  Slot u = MakeSlot("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n", "caf\xc3\xa9\n\t!");
  EXPECT_THAT(Recorder::Format(u, Policy{"r", {}}), HasSubstr("\"body\":\"caf\xc3\xa9\\n\\t!\""));
  // A broken UTF-8 sequence is not text.
  Slot b = MakeSlot("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", "\xc3(");
  EXPECT_THAT(Recorder::Format(b, Policy{"r", {}}), HasSubstr("\"body_base64\":\"wyg=\""));
}

TEST(RecordFormat, ChunkedBodyIsDecoded) {
  Slot s = MakeSlot("POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 1024, true);
  EXPECT_THAT(Recorder::Format(s, Policy{"r", {}}),
              HasSubstr("\"body\":\"hello world\",\"body_bytes\":11,\"truncated\":false"));
  // max_body counts payload bytes, not the framing: 11 payload bytes in 29 wire bytes fit in
  // a budget of 11 (a raw cut at 11 bytes would have kept only "hello").
  Slot fits = MakeSlot("POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                       "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11, true);
  EXPECT_THAT(Recorder::Format(fits, Policy{"r", {}}),
              HasSubstr("\"body\":\"hello world\",\"body_bytes\":11,\"truncated\":false"));
  // Cut inside the second chunk: the first 7 payload bytes, and the whole payload's size.
  Slot cut = MakeSlot("POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 7, true);
  EXPECT_THAT(Recorder::Format(cut, Policy{"r", {}}),
              HasSubstr("\"body\":\"hello w\",\"body_bytes\":11,\"truncated\":true"));
}

TEST(RecordFormat, ChunkedBodyDecodedAcrossPieces) {
  // The proxy hands the body over in whatever pieces the socket gave: split inside a size
  // line, inside the data and inside the CRLFs.
  const std::string wire =
      "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: 1\r\n\r\n";
  for (size_t step : {1, 2, 3, 7}) {
    Slot s;
    s.Reset(1, 0, "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", true, 20);
    for (size_t i = 0; i < wire.size(); i += step)
      s.AppendBody(std::string_view(wire).substr(i, step));
    EXPECT_EQ(s.body, "helloabcdefghijklmno") << step;
    EXPECT_EQ(s.body_bytes, 31u) << step;
    EXPECT_EQ(s.body_seen, wire.size()) << step;
    EXPECT_TRUE(s.truncated) << step;
  }
  // Reset for the next request forgets the previous body and the scanner's state.
  Slot s;
  s.Reset(1, 0, "POST / HTTP/1.1\r\n\r\n", true, 100);
  s.AppendBody("3\r\nab");
  s.Reset(2, 0, "POST / HTTP/1.1\r\n\r\n", true, 100);
  s.AppendBody("2\r\nxy\r\n0\r\n\r\n");
  EXPECT_EQ(s.body, "xy");
  EXPECT_EQ(s.body_bytes, 2u);
  EXPECT_FALSE(s.truncated);
}

std::string TempPath() {
  char tmpl[] = "/tmp/ficus_record_testXXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  return tmpl;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(Recorder, WorkersHandOffToTheWriter) {
  std::string path = TempPath();
  {
    Recorder r(path);
    r.EnsureWorkers(2);
    uint32_t p = r.AddPolicy({"one", {}});
    EXPECT_EQ(r.AddPolicy({"one", {}}), p);  // interned
    uint32_t q = r.AddPolicy({"two", {"x-secret"}});
    EXPECT_NE(p, q);
    for (int i = 0; i < 1000; ++i) {  // more than a worker's slots: they come back
      int w = i % 2;
      std::string head = "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
      Slot* s = r.Begin(w, w == 0 ? p : q, head, false, 100);
      while (!s) {  // the writer has not caught up yet: a real worker would drop; wait here
        usleep(1000);
        s = r.Begin(w, w == 0 ? p : q, head, false, 100);
      }
      r.Commit(w, s);
    }
    r.Flush();
    EXPECT_EQ(r.recorded(), 1000u);
  }
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 1000u);
  int one = 0;
  for (const auto& l : lines) one += l.find("\"route\":\"one\"") != std::string::npos;
  EXPECT_EQ(one, 500);
  unlink(path.c_str());
}

TEST(Recorder, NoFreeSlotDropsAndCounts) {
  std::string path = TempPath();
  Recorder r(path);
  r.EnsureWorkers(1);
  std::vector<Slot*> held;
  for (size_t i = 0; i < Recorder::kSlotsPerWorker; ++i) {
    Slot* s = r.Begin(0, 0, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", false, 0);
    ASSERT_NE(s, nullptr);
    held.push_back(s);
  }
  EXPECT_EQ(r.Begin(0, 0, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", false, 0), nullptr);
  EXPECT_EQ(r.dropped(), 1u);
  r.AddPolicy({"p", {}});
  for (Slot* s : held) r.Commit(0, s);
  r.Flush();
  EXPECT_EQ(Lines(path).size(), Recorder::kSlotsPerWorker);
  unlink(path.c_str());
}

TEST(Recorder, SampleRatio) {
  int hits = 0;
  for (int i = 0; i < 100000; ++i) hits += Sample(0.1);
  EXPECT_NEAR(hits, 10000, 600);
  EXPECT_TRUE(Sample(1));
  EXPECT_FALSE(Sample(0));
}

}  // namespace
}  // namespace ficus::record
