// What the client's TCP and TLS halves share.
#pragma once

#include <string>

namespace ficus::client {

// The oldest error on OpenSSL's thread-local queue, as text (and the queue cleared).
std::string OpenSslError();

}  // namespace ficus::client
