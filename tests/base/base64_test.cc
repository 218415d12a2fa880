// Base64 (RFC 4648): the RFC's test vectors both ways, the URL-safe alphabet, and what a decoder
// must refuse.
#include "base/base64.h"

#include <gtest/gtest.h>

namespace ficus {
namespace {

TEST(Base64Test, TheRfcVectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(EncodeBase64(plain), encoded);
    std::string decoded;
    ASSERT_TRUE(DecodeBase64(encoded, &decoded)) << encoded;
    EXPECT_EQ(decoded, plain);
    std::string unpadded = encoded;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    decoded.clear();
    ASSERT_TRUE(DecodeBase64(unpadded, &decoded)) << unpadded;
    EXPECT_EQ(decoded, plain);
  }
}

TEST(Base64Test, TheUrlAlphabet) {
  const std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(EncodeBase64(bytes), "+/+/");
  std::string out;
  ASSERT_TRUE(DecodeBase64("-_-_", &out, /*url=*/true));
  EXPECT_EQ(out, bytes);
  out.clear();
  EXPECT_FALSE(DecodeBase64("-_-_", &out));        // not the standard alphabet
  EXPECT_FALSE(DecodeBase64("+/+/", &out, true));  // nor the other way round
}

TEST(Base64Test, RefusesWhatNoEncoderWrites) {
  std::string out;
  EXPECT_FALSE(DecodeBase64("Zm9v!", &out));
  EXPECT_FALSE(DecodeBase64("Z", &out));         // one character left over
  EXPECT_FALSE(DecodeBase64("Zg=", &out));       // padding that does not complete a quantum
  EXPECT_FALSE(DecodeBase64("Zg==Zg==", &out));  // data after padding
  EXPECT_FALSE(DecodeBase64("Zm 9v", &out));
}

}  // namespace
}  // namespace ficus
