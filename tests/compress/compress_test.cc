// Accept-Encoding negotiation and the streaming encoders, checked by decoding what they wrote.
#include "compress/compress.h"

#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>
#include <vector>

namespace ficus::compress {
namespace {

TEST(AcceptEncodingTest, ParsesQValues) {
  std::vector<Accepted> a;
  ParseAcceptEncoding("gzip;q=0.8, br, identity;q=0, *;Q=0.001, zstd;q=2, x;q=0.1234, ;q=1", a);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[0].name, "gzip");
  EXPECT_EQ(a[0].q, 800);
  EXPECT_EQ(a[1].q, 1000);
  EXPECT_EQ(a[2].q, 0);
  EXPECT_EQ(a[3].q, 1);
  EXPECT_EQ(a[4].q, 0);  // malformed: never chosen
  EXPECT_EQ(a[5].q, 0);
}

TEST(NegotiateTest, HighestQThenServerPreference) {
  const Offer all;
  EXPECT_EQ(Negotiate("", false, all), Coding::kIdentity);
  EXPECT_EQ(Negotiate("gzip, br", true, all), Coding::kBrotli);
  EXPECT_EQ(Negotiate("gzip, br;q=0.5", true, all), Coding::kGzip);
  EXPECT_EQ(Negotiate("gzip, br, zstd", true, all), Coding::kZstd);
  EXPECT_EQ(Negotiate("GZIP", true, all), Coding::kGzip);
  EXPECT_EQ(Negotiate("deflate", true, all), Coding::kIdentity);
  EXPECT_EQ(Negotiate("", true, all), Coding::kIdentity);
  EXPECT_EQ(Negotiate("*", true, all), Coding::kZstd);
  EXPECT_EQ(Negotiate("*;q=0, gzip", true, all), Coding::kGzip);
  EXPECT_EQ(Negotiate("identity;q=0, deflate", true, all), std::nullopt);
  EXPECT_EQ(Negotiate("*;q=0", true, all), std::nullopt);
  EXPECT_EQ(Negotiate("gzip;q=0, identity", true, all), Coding::kIdentity);
  Offer gzip_only{true, false, false};
  EXPECT_EQ(Negotiate("br, zstd, gzip;q=0.1", true, gzip_only), Coding::kGzip);
}

TEST(NegotiateTest, TiesGoToTheServersOrder) {
  Offer gzip_first;
  gzip_first.order = {Coding::kGzip, Coding::kBrotli, Coding::kZstd};
  EXPECT_EQ(Negotiate("zstd, br, gzip", true, gzip_first), Coding::kGzip);
  EXPECT_EQ(Negotiate("zstd, br, gzip;q=0.9", true, gzip_first), Coding::kBrotli);
  Offer no_zstd;
  no_zstd.zstd = false;
  EXPECT_EQ(Negotiate("zstd", true, no_zstd), Coding::kIdentity);
  EXPECT_EQ(Negotiate("zstd, identity;q=0", true, no_zstd), std::nullopt);
}

TEST(AcceptEncodingTest, CanonicalFormIsTheSameForTheSameMeaning) {
  auto canon = [](std::string_view v) {
    std::string out;
    AppendCanonicalAcceptEncoding(v, out);
    return out;
  };
  EXPECT_EQ(canon("gzip, br;q=0.5"), "br;q=0.5,gzip");
  EXPECT_EQ(canon("BR;Q=0.500 ,\tGZIP;q=1"), "br;q=0.5,gzip");
  EXPECT_EQ(canon("zstd;q=0.125, x;q=0.01, identity;q=0"), "identity;q=0,x;q=0.01,zstd;q=0.125");
  EXPECT_EQ(canon("gzip;q=1.000, deflate"), "deflate,gzip");
  EXPECT_NE(canon("gzip"), canon("gzip;q=0"));
  EXPECT_EQ(canon(""), "");
}

TEST(ETagTest, ReencodedBodiesGetWeakETags) {
  EXPECT_EQ(WeakenETag("\"a\""), "W/\"a\"");
  EXPECT_EQ(WeakenETag("W/\"a\""), "W/\"a\"");
}

std::string Decode(Coding c, const std::string& in) {
  std::string out(1 << 22, '\0');
  if (c == Coding::kGzip) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
  } else if (c == Coding::kBrotli) {
    size_t n = out.size();
    EXPECT_EQ(BrotliDecoderDecompress(in.size(), reinterpret_cast<const uint8_t*>(in.data()), &n,
                                      reinterpret_cast<uint8_t*>(out.data())),
              BROTLI_DECODER_RESULT_SUCCESS);
    out.resize(n);
  } else {
    const size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(ZSTD_isError(n) ? 0 : n);
  }
  return out;
}

TEST(EncoderTest, StreamsPieceByPieceAndRoundTrips) {
  std::string body;
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    body += "{\"id\":" + std::to_string(rng() % 1000) + ",\"name\":\"item\"},";
  }
  for (Coding c : {Coding::kGzip, Coding::kBrotli, Coding::kZstd}) {
    std::unique_ptr<Encoder> e = MakeEncoder(c, c == Coding::kGzip ? 6 : 3);
    std::string out;
    size_t max_step = 0;
    for (size_t i = 0; i < body.size(); i += 7919) {
      const size_t before = out.size();
      ASSERT_TRUE(e->Write(std::string_view(body).substr(i, 7919), out)) << CodingName(c);
      max_step = std::max(max_step, out.size() - before);
      if (i == 7919 * 10) {
        ASSERT_TRUE(e->Flush(out));
        // Everything written so far decodes once flushed (a paused stream is not held back).
        EXPECT_GT(out.size(), 0u) << CodingName(c);
      }
    }
    ASSERT_TRUE(e->Finish(out)) << CodingName(c);
    EXPECT_LT(out.size(), body.size() / 4) << CodingName(c);
    EXPECT_EQ(Decode(c, out), body) << CodingName(c);
  }
}

TEST(EncoderTest, EmptyBodies) {
  for (Coding c : {Coding::kGzip, Coding::kBrotli, Coding::kZstd}) {
    std::unique_ptr<Encoder> e = MakeEncoder(c, 1);
    std::string out;
    ASSERT_TRUE(e->Finish(out));
    EXPECT_EQ(Decode(c, out), "") << CodingName(c);
  }
}

TEST(EncoderTest, AResetEncoderWritesAnotherWholeStream) {
  const std::string first(50000, 'a');
  std::string second;
  for (int i = 0; i < 4000; ++i) second += std::to_string(i * 7919) + ",";
  for (Coding c : {Coding::kGzip, Coding::kZstd, Coding::kBrotli}) {
    auto e = MakeEncoder(c, 3);
    std::string out;
    ASSERT_TRUE(e->Write(first, out));
    ASSERT_TRUE(e->Finish(out));
    EXPECT_EQ(Decode(c, out), first) << CodingName(c);
    if (!e->Reset()) {
      EXPECT_EQ(c, Coding::kBrotli);  // the one coding without a reset
      continue;
    }
    out.clear();
    ASSERT_TRUE(e->Write(second, out));
    ASSERT_TRUE(e->Finish(out));
    EXPECT_EQ(Decode(c, out), second) << CodingName(c);
  }
}

}  // namespace
}  // namespace ficus::compress
