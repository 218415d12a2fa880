// The compression policy of a route (policy::Order::kCompress): on the upstream's response head
// it decides whether the body is re-encoded, and how (RFC 9110 §8.4, §12.5.3), and gives the
// relay the encoder as the body transform. It runs before the cache, which so stores the
// encoded variant under Vary: Accept-Encoding and answers later requests with it.
#include <algorithm>

#include "compress/compress.h"
#include "http/http.h"

namespace ficus::compress {

namespace {

std::optional<std::string_view> Field(std::span<const http::Header> fields, std::string_view name) {
  for (const http::Header& h : fields) {
    if (http::EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return std::nullopt;
}

// Whether a comma-separated list field (every line of it) has `member`, any case.
bool ListHas(std::span<const http::Header> fields, std::string_view name, std::string_view member) {
  for (const http::Header& h : fields) {
    if (!http::EqualsIgnoreCase(h.name, name)) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view m = http::TrimOws(rest.substr(0, comma));
      // A directive with an argument ("max-age=0") is compared by its name.
      m = m.substr(0, m.find('='));
      if (http::EqualsIgnoreCase(http::TrimOws(m), member)) return true;
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return false;
}

// Encoders that finished a body on this worker thread, reset for the next one with the same
// coding and level: a response then costs the compression, not a codec's allocation and
// clearing. At most kPooled per thread (a gzip encoder holds about 270 KiB).
struct Pooled {
  Coding coding;
  int level;
  std::unique_ptr<Encoder> encoder;
};
constexpr size_t kPooled = 8;
thread_local std::vector<Pooled> t_pool;

// One exchange's encoder, taken on the first byte (a HEAD response sets the transform for its
// framing and never writes), given back to the thread's pool when the body ended cleanly.
class Transform final : public policy::BodyTransform {
 public:
  Transform(Coding coding, int level) : coding_(coding), level_(level) {}
  ~Transform() override {
    if (encoder_ && finished_ && t_pool.size() < kPooled && encoder_->Reset()) {
      t_pool.push_back({coding_, level_, std::move(encoder_)});
    }
  }
  Status Write(std::string_view payload, std::string& out) override {
    return Get().Write(payload, out);
  }
  Status Flush(std::string& out) override { return Get().Flush(out); }
  Status Finish(std::string& out) override {
    Status s = Get().Finish(out);
    finished_ = static_cast<bool>(s);
    return s;
  }

 private:
  Encoder& Get() {
    if (!encoder_) {
      for (size_t i = t_pool.size(); i-- > 0;) {
        if (t_pool[i].coding == coding_ && t_pool[i].level == level_) {
          encoder_ = std::move(t_pool[i].encoder);
          t_pool.erase(t_pool.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
      }
      if (!encoder_) encoder_ = MakeEncoder(coding_, level_);
    }
    return *encoder_;
  }
  Coding coding_;
  int level_;
  bool finished_ = false;  // the stream ended whole: the encoder may serve another body
  std::unique_ptr<Encoder> encoder_;
};

class CompressPolicy final : public policy::Policy {
 public:
  explicit CompressPolicy(const config::Compress& c) : config_(c) {
    // The config's order is the preference on ties; codings it leaves out are not offered.
    size_t n = 0;
    for (const std::string& name : c.codings) {
      Coding coding = Coding::kIdentity;
      if (name == "gzip") offer_.gzip = true, coding = Coding::kGzip;
      if (name == "br") offer_.brotli = true, coding = Coding::kBrotli;
      if (name == "zstd") offer_.zstd = true, coding = Coding::kZstd;
      if (coding != Coding::kIdentity && n < offer_.order.size()) offer_.order[n++] = coding;
    }
    for (Coding c : {Coding::kZstd, Coding::kBrotli, Coding::kGzip}) {  // the rest, not offered
      bool listed = false;
      for (size_t i = 0; i < n; ++i) listed = listed || offer_.order[i] == c;
      if (!listed && n < offer_.order.size()) offer_.order[n++] = c;
    }
  }

  policy::Order order() const override { return policy::Order::kCompress; }
  policy::Decision Admit(policy::Context& /*ctx*/) override { return policy::Decision::Pass(); }

  policy::Decision OnResponse(policy::Context& ctx, const http::ResponseHead& r) override {
    const http::RequestHead& req = ctx.request();
    auto accept = Field(req.headers, "Accept-Encoding");
    if (r.status == 304) {
      // A validation of what may be an encoded variant: its validator is the weak form, so a
      // client holding the encoded body can select it (RFC 9111 §4.3.4).
      if (Chosen(accept) != Coding::kIdentity) WeakenStrongETag(ctx, r);
      return policy::Decision::Pass();
    }
    if (!Compressible(req, r)) return policy::Decision::Pass();
    // The representation now depends on Accept-Encoding, whichever coding this client gets.
    if (!ListHas(r.headers, "Vary", "accept-encoding") && !ListHas(r.headers, "Vary", "*")) {
      ctx.AddRepresentationHeader("Vary", "Accept-Encoding");
    }
    // RFC 9110 §7.7, RFC 9111 §5.2.1.6: a client that says no-transform gets the upstream's
    // body; others with its Accept-Encoding would not, so the response still varies (and the
    // cache does not store this one in their variant's place).
    if (ListHas(req.headers, "Cache-Control", "no-transform")) return policy::Decision::Pass();
    const Coding coding = Chosen(accept);
    // Nothing acceptable (identity;q=0 and no coding we offer): the identity body all the same,
    // which RFC 9110 §12.5.3 allows, rather than a 406 for a response already made.
    if (coding == Coding::kIdentity) return policy::Decision::Pass();
    auto* t = new Transform(coding, Level(coding));
    ctx.state() = reinterpret_cast<uint64_t>(t);
    ctx.TransformResponseBody(t);
    ctx.AddRepresentationHeader("Content-Encoding", CodingName(coding));
    WeakenStrongETag(ctx, r);
    // What described the identity body's bytes no longer does.
    ctx.DropResponseField("Accept-Ranges");
    ctx.DropResponseField("Content-MD5");
    ctx.DropResponseField("Repr-Digest");
    return policy::Decision::Pass();
  }

  void End(policy::Context& ctx, const policy::Outcome& /*outcome*/) override {
    uint64_t& state = ctx.state();
    delete reinterpret_cast<Transform*>(state);
    state = 0;
  }

 private:
  Coding Chosen(std::optional<std::string_view> accept) const {
    return Negotiate(accept.value_or(""), accept.has_value(), offer_).value_or(Coding::kIdentity);
  }

  int Level(Coding c) const {
    switch (c) {
      case Coding::kGzip:
        return config_.gzip_level;
      case Coding::kBrotli:
        return config_.brotli_level;
      case Coding::kZstd:
        return config_.zstd_level;
      case Coding::kIdentity:
        break;
    }
    return 0;
  }

  // RFC 9110 §8.8.3: a strong validator names these exact bytes, so the encoded body must not
  // share it with the identity one; its weak form says "equivalent", which both are.
  static void WeakenStrongETag(policy::Context& ctx, const http::ResponseHead& r) {
    auto etag = Field(r.headers, "ETag");
    if (!etag || etag->empty() || etag->starts_with("W/")) return;
    ctx.DropResponseField("ETag");
    ctx.AddRepresentationHeader("ETag", WeakenETag(*etag));
  }

  bool TypeListed(std::string_view content_type) const {
    std::string_view media = http::TrimOws(content_type.substr(0, content_type.find(';')));
    const size_t slash = media.find('/');
    if (slash == std::string_view::npos) return false;
    for (const std::string& t : config_.types) {
      if (http::EqualsIgnoreCase(t, media)) return true;
      if (t.ends_with("/*") &&
          http::EqualsIgnoreCase(t.substr(0, t.size() - 1), media.substr(0, slash + 1))) {
        return true;
      }
    }
    return false;
  }

  // Whether this response's body may and should be re-encoded.
  bool Compressible(const http::RequestHead& req, const http::ResponseHead& r) const {
    // Statuses with a body that is the whole representation: not 1xx, 204, 206 (a part of
    // it) or 304.
    if (r.status < 200 || r.status == 204 || r.status == 206) return false;
    // A HEAD response says what the GET's would (RFC 9110 §9.3.2), so it is decided alike.
    const bool head = req.method == http::Method::kHead;
    if (r.framing == http::BodyFraming::kNone && !head) return false;
    // A transfer coding the relay removes on the way is not re-encoded as well.
    if (r.framing == http::BodyFraming::kChunked &&
        r.transfer_coding != http::TransferCoding::kNone) {
      return false;
    }
    const bool length_known = r.framing == http::BodyFraming::kContentLength ||
                              (head && Field(r.headers, "Content-Length"));
    if (length_known && r.content_length < config_.min_size) return false;
    // Already encoded (any coding but identity), or a range of the representation.
    if (auto ce = Field(r.headers, "Content-Encoding");
        ce && !http::EqualsIgnoreCase(http::TrimOws(*ce), "identity")) {
      return false;
    }
    if (Field(r.headers, "Content-Range")) return false;
    // RFC 9110 §7.7, RFC 9111 §5.2.2.6: an intermediary must not transform the content when
    // the response says no-transform (the request's no-transform: OnResponse).
    if (ListHas(r.headers, "Cache-Control", "no-transform")) return false;
    auto type = Field(r.headers, "Content-Type");
    return type && TypeListed(*type);
  }

  const config::Compress config_;
  Offer offer_{false, false, false};
};

}  // namespace

void BuildPolicies(const policy::BuildContext& ctx, policy::Chain& chain) {
  if (!ctx.route.compress) return;
  chain.push_back(std::make_unique<CompressPolicy>(*ctx.route.compress));
}

}  // namespace ficus::compress
