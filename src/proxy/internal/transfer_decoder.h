// Removes a compression transfer coding (gzip or deflate, applied under the final chunked) from
// a response body on its way downstream. Transfer codings are hop-by-hop and ficus sends no TE
// upstream, so an upstream that applies one anyway gets it decoded rather than a 502 for a
// valid response. Internal to proxy/.
#pragma once

#include <cstddef>
#include <memory>

#include "base/base.h"
#include "http/http.h"

namespace ficus::proxy {

class TransferDecoder {
 public:
  // REQUIRES: coding != kNone.
  explicit TransferDecoder(http::TransferCoding coding);
  ~TransferDecoder();
  TransferDecoder(const TransferDecoder&) = delete;
  TransferDecoder& operator=(const TransferDecoder&) = delete;

  // Hands over the next compressed bytes; they must stay valid until Output returns 0.
  void Input(const char* data, size_t size);
  // Decodes into out[0, cap): the number of bytes written, 0 when the input given so far is
  // used up, or kUpstreamProtocol when it is not a valid stream of the coding.
  Result<size_t> Output(char* out, size_t cap);
  // The coded stream ended (gzip: the last member read so far ended).
  bool finished() const { return finished_; }

 private:
  struct Stream;
  std::unique_ptr<Stream> stream_;
  http::TransferCoding coding_;
  bool finished_ = false;
};

}  // namespace ficus::proxy
