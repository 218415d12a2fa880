// cache::SharedCacheMayReuse: what the report's cacheability samples count. A body that repeats
// is evidence for a cache only when the upstream lets a shared cache reuse it.
#include <gtest/gtest.h>

#include <vector>

#include "cache/cache.h"

namespace ficus::cache {
namespace {

bool Reusable(std::vector<http::Header> response, std::vector<http::Header> request = {},
              http::Method method = http::Method::kGet, uint16_t status = 200) {
  http::RequestHead req;
  req.method = method;
  req.headers = request;
  http::ResponseHead resp;
  resp.status = status;
  resp.headers = response;
  return SharedCacheMayReuse(req, resp);
}

TEST(SharedCacheMayReuseTest, TheUpstreamsCacheControlDecides) {
  EXPECT_TRUE(Reusable({}));  // no directive: a ttl may be given (the report's suggestion)
  EXPECT_TRUE(Reusable({{"Cache-Control", "max-age=60"}}));
  EXPECT_TRUE(Reusable({{"Cache-Control", "public, max-age=60"}}));
  EXPECT_FALSE(Reusable({{"Cache-Control", "no-store"}}));
  EXPECT_FALSE(Reusable({{"Cache-Control", "private, max-age=60"}}));
  EXPECT_FALSE(Reusable({{"Cache-Control", "no-cache"}}));
  EXPECT_FALSE(Reusable({{"cache-control", "max-age=0, NO-CACHE"}}));
  EXPECT_FALSE(Reusable({{"Set-Cookie", "session=1"}}));
  EXPECT_FALSE(Reusable({{"Vary", "*"}}));
  // A targeted field wins over Cache-Control (RFC 9213).
  EXPECT_TRUE(Reusable({{"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=30"}}));
  EXPECT_FALSE(Reusable({{"Cache-Control", "max-age=30"}, {"Ficus-Cache-Control", "no-store"}}));
}

TEST(SharedCacheMayReuseTest, CredentialsAndHeadAndStatus) {
  const std::vector<http::Header> auth = {{"Authorization", "Bearer x"}};
  EXPECT_FALSE(Reusable({}, auth));
  EXPECT_TRUE(Reusable({{"Cache-Control", "public"}}, auth));
  EXPECT_TRUE(Reusable({}, {}, http::Method::kHead));  // judged as the GET it stands for
  EXPECT_FALSE(Reusable({{"Cache-Control", "private"}}, {}, http::Method::kHead));
  EXPECT_FALSE(Reusable({}, {}, http::Method::kGet, 206));  // not a status ficus stores
  // A client's own no-cache is its choice for itself, not the upstream's word.
  EXPECT_TRUE(Reusable({}, {{"Cache-Control", "no-cache"}}));
}

}  // namespace
}  // namespace ficus::cache
