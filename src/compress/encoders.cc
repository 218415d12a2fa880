// The streaming encoders over Debian's zlib, brotli and zstd. Each appends codec output to the
// caller's string in steps of at most kStep bytes, so a large body never needs its compressed
// form whole either.
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>

#include "compress/compress.h"

namespace ficus::compress {

namespace {

constexpr size_t kStep = 16 * 1024;

// Room for the codec's output without clearing it first (the codec writes it; the caller
// shrinks the string to what was written).
void GrowUninitialized(std::string& out, size_t size) {
  out.resize_and_overwrite(size, [](char*, size_t n) { return n; });
}

Status Broken(const char* what) {
  return Unexpected{Error{ErrorKind::kInternal, Side::kInternal, false, what}};
}

class Gzip final : public Encoder {
 public:
  explicit Gzip(int level) {
    // windowBits 15 + 16: the gzip wrapper; memLevel 8 as zlib's default.
    ok_ = deflateInit2(&z_, std::clamp(level, 1, 9), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) ==
          Z_OK;
  }
  ~Gzip() override {
    if (ok_) deflateEnd(&z_);
  }
  Status Write(std::string_view in, std::string& out) override { return Run(in, Z_NO_FLUSH, out); }
  Status Flush(std::string& out) override { return Run({}, Z_SYNC_FLUSH, out); }
  Status Finish(std::string& out) override { return Run({}, Z_FINISH, out); }
  bool Reset() override { return ok_ && deflateReset(&z_) == Z_OK; }

 private:
  Status Run(std::string_view in, int flush, std::string& out) {
    if (!ok_) return Broken("gzip encoder not initialised");
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    for (;;) {
      const size_t old = out.size();
      GrowUninitialized(out, old + kStep);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
      z_.avail_out = static_cast<uInt>(kStep);
      const int rc = deflate(&z_, flush);
      out.resize(old + kStep - z_.avail_out);
      if (rc == Z_STREAM_END) return {};
      if (rc != Z_OK && rc != Z_BUF_ERROR) return Broken("gzip: deflate failed");
      // Done when the codec left room: it has nothing more to say for this flush mode.
      if (z_.avail_out != 0 && z_.avail_in == 0 && flush != Z_FINISH) return {};
    }
  }
  z_stream z_{};
  bool ok_ = false;
};

class Brotli final : public Encoder {
 public:
  explicit Brotli(int level) : s_(BrotliEncoderCreateInstance(nullptr, nullptr, nullptr)) {
    if (s_) BrotliEncoderSetParameter(s_, BROTLI_PARAM_QUALITY, std::clamp(level, 0, 11));
  }
  ~Brotli() override {
    if (s_) BrotliEncoderDestroyInstance(s_);
  }
  Status Write(std::string_view in, std::string& out) override {
    return Run(in, BROTLI_OPERATION_PROCESS, out);
  }
  Status Flush(std::string& out) override { return Run({}, BROTLI_OPERATION_FLUSH, out); }
  Status Finish(std::string& out) override { return Run({}, BROTLI_OPERATION_FINISH, out); }
  bool Reset() override { return false; }  // brotli has no reset: an instance per body

 private:
  Status Run(std::string_view in, BrotliEncoderOperation op, std::string& out) {
    if (!s_) return Broken("brotli encoder not initialised");
    size_t avail_in = in.size();
    const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
    for (;;) {
      const size_t old = out.size();
      GrowUninitialized(out, old + kStep);
      size_t avail_out = kStep;
      uint8_t* next_out = reinterpret_cast<uint8_t*>(out.data() + old);
      if (!BrotliEncoderCompressStream(s_, op, &avail_in, &next_in, &avail_out, &next_out,
                                       nullptr)) {
        out.resize(old);
        return Broken("brotli: compression failed");
      }
      out.resize(old + kStep - avail_out);
      const bool more = BrotliEncoderHasMoreOutput(s_);
      if (op == BROTLI_OPERATION_FINISH) {
        if (BrotliEncoderIsFinished(s_)) return {};
      } else if (avail_in == 0 && !more) {
        return {};
      }
    }
  }
  BrotliEncoderState* s_;
};

class Zstd final : public Encoder {
 public:
  explicit Zstd(int level) : c_(ZSTD_createCCtx()) {
    if (c_) ZSTD_CCtx_setParameter(c_, ZSTD_c_compressionLevel, std::clamp(level, 1, 19));
  }
  ~Zstd() override { ZSTD_freeCCtx(c_); }
  Status Write(std::string_view in, std::string& out) override {
    return Run(in, ZSTD_e_continue, out);
  }
  Status Flush(std::string& out) override { return Run({}, ZSTD_e_flush, out); }
  Status Finish(std::string& out) override { return Run({}, ZSTD_e_end, out); }
  bool Reset() override {
    return c_ && !ZSTD_isError(ZSTD_CCtx_reset(c_, ZSTD_reset_session_only));
  }

 private:
  Status Run(std::string_view in, ZSTD_EndDirective mode, std::string& out) {
    if (!c_) return Broken("zstd encoder not initialised");
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    for (;;) {
      const size_t old = out.size();
      GrowUninitialized(out, old + kStep);
      ZSTD_outBuffer output{out.data() + old, kStep, 0};
      const size_t left = ZSTD_compressStream2(c_, &output, &input, mode);
      out.resize(old + output.pos);
      if (ZSTD_isError(left)) return Broken("zstd: compression failed");
      if (mode == ZSTD_e_continue) {
        if (input.pos == input.size) return {};
      } else if (left == 0) {
        return {};
      }
    }
  }
  ZSTD_CCtx* c_;
};

}  // namespace

std::unique_ptr<Encoder> MakeEncoder(Coding coding, int level) {
  switch (coding) {
    case Coding::kGzip:
      return std::make_unique<Gzip>(level);
    case Coding::kBrotli:
      return std::make_unique<Brotli>(level);
    case Coding::kZstd:
      return std::make_unique<Zstd>(level);
    case Coding::kIdentity:
      break;
  }
  FICUS_CHECK(false && "MakeEncoder: identity has no encoder");
  return nullptr;
}

}  // namespace ficus::compress
