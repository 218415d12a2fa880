#include "proxy/internal/transfer_decoder.h"

#include <zlib.h>

namespace ficus::proxy {
namespace {

Unexpected Corrupt(const char* why) {
  return Fail(ErrorKind::kUpstreamProtocol, Side::kUpstream, why);
}

}  // namespace

struct TransferDecoder::Stream {
  z_stream z{};
  bool ready = false;
};

TransferDecoder::TransferDecoder(http::TransferCoding coding)
    : stream_(std::make_unique<Stream>()), coding_(coding) {
  // gzip: the gzip wrapper only (16 + window); deflate: the zlib format, as RFC 9112 §7.2 says.
  const int window_bits = coding == http::TransferCoding::kGzip ? 16 + MAX_WBITS : MAX_WBITS;
  stream_->ready = inflateInit2(&stream_->z, window_bits) == Z_OK;
}

TransferDecoder::~TransferDecoder() {
  if (stream_->ready) inflateEnd(&stream_->z);
}

void TransferDecoder::Input(const char* data, size_t size) {
  stream_->z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  stream_->z.avail_in = static_cast<uInt>(size);
}

Result<size_t> TransferDecoder::Output(char* out, size_t cap) {
  z_stream& z = stream_->z;
  if (!stream_->ready) return Corrupt("could not start a decoder for the transfer coding");
  for (;;) {
    if (z.avail_in == 0) return size_t{0};
    if (finished_) {
      // gzip allows several members one after the other; deflate is one stream.
      if (coding_ != http::TransferCoding::kGzip) return Corrupt("bytes after the deflate stream");
      inflateReset(&z);
      finished_ = false;
    }
    z.next_out = reinterpret_cast<Bytef*>(out);
    z.avail_out = static_cast<uInt>(cap);
    const int rc = inflate(&z, Z_NO_FLUSH);
    const size_t written = cap - z.avail_out;
    if (rc == Z_STREAM_END) {
      finished_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Corrupt(coding_ == http::TransferCoding::kGzip ? "invalid gzip transfer coding"
                                                            : "invalid deflate transfer coding");
    }
    if (written > 0) return written;
    if (rc == Z_BUF_ERROR) return size_t{0};  // needs more input than it has
  }
}

}  // namespace ficus::proxy
