// ficus::compress — streaming response encoders (gzip via zlib, brotli, zstd: Debian's
// libraries) and the negotiation that picks one from a request's Accept-Encoding (RFC 9110
// §12.5.3, with q-values, "identity;q=0" and "*"). An encoder takes the body piece by piece as
// it is relayed and never holds it whole: memory is the codec's window, not the body.
//
// As a route policy (`compress:` on a route, policy::Order::kCompress), the relay runs the
// chosen encoder over the upstream's body through policy::BodyTransform (docs/architecture.md,
// "Compression").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/base.h"
#include "policy/policy.h"

namespace ficus::compress {

enum class Coding : uint8_t { kIdentity, kGzip, kBrotli, kZstd };
// The content-coding token: "identity", "gzip", "br", "zstd".
std::string_view CodingName(Coding c);

// One member of an Accept-Encoding value.
struct Accepted {
  std::string_view name;  // as sent: compare case-insensitively
  int q = 1000;           // q-value in thousandths
};
// Parses an Accept-Encoding value into `out` (appends; at most 16 members kept). Malformed
// members are skipped; a malformed q counts as q=0 (never chosen).
void ParseAcceptEncoding(std::string_view value, std::vector<Accepted>& out);

// Which codings the server offers, and its preference when the client ranks them equally
// (`order`, most preferred first; a coding not offered is skipped).
struct Offer {
  bool gzip = true;
  bool brotli = true;
  bool zstd = true;
  std::array<Coding, 3> order = {Coding::kZstd, Coding::kBrotli, Coding::kGzip};
};

// The coding to send for an Accept-Encoding value (`present` false: the request had none, which
// means identity). The highest q wins, ties go to the server's preference (Offer::order);
// identity is acceptable unless "identity;q=0" or "*;q=0" without an identity entry. nullopt:
// nothing acceptable (a server answers 406 or sends identity anyway, RFC 9110 §12.5.3).
std::optional<Coding> Negotiate(std::string_view accept_encoding, bool present, const Offer& offer);

// A strong ETag made weak (W/"x") for a re-encoded body (RFC 9110 §8.8.3: the bytes differ);
// weak ones are returned unchanged.
std::string WeakenETag(std::string_view etag);

// One streaming encoder for one body. Thread safety: none (one exchange).
class Encoder {
 public:
  virtual ~Encoder() = default;
  // Compresses `in`, appending whatever output the codec has ready to `out`.
  virtual Status Write(std::string_view in, std::string& out) = 0;
  // Pushes out everything written so far (a flush point: a streamed response that pauses).
  virtual Status Flush(std::string& out) = 0;
  // Ends the stream (trailer, checksum). No Write after it.
  virtual Status Finish(std::string& out) = 0;
  // Makes the encoder ready for another body with the same settings, keeping its memory (a
  // codec's window and tables are hundreds of KiB: allocating and clearing them per response
  // costs more than compressing a small body). False when this coding cannot (then make one).
  virtual bool Reset() = 0;
};

// An encoder for `coding` at `level` (gzip 1..9, brotli 0..11, zstd 1..19; out of range is
// clamped). REQUIRES: coding != kIdentity.
std::unique_ptr<Encoder> MakeEncoder(Coding coding, int level);

// Appends the route's compression policy when its config has `compress:`.
void BuildPolicies(const policy::BuildContext& ctx, policy::Chain& chain);

// Accept-Encoding in a canonical form (members lower-cased, sorted, q-values normalised as
// "q=0.5", "q=1" left out): two values with the same meaning get the same text, itself a valid
// Accept-Encoding value with that meaning. A cache's secondary key
// (RFC 9111 §4.1 allows normalising a field "in a way that is known to have identical
// semantics"), so that "gzip, br" and "br,GZIP" share a stored variant. Appends to `out`.
void AppendCanonicalAcceptEncoding(std::string_view value, std::string& out);

}  // namespace ficus::compress
