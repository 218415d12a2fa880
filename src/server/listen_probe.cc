#include "server/internal/listen_probe.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/net.h"

namespace ficus::server {
namespace {

// The error text of opening a listening socket at `l`, or "" when it can be opened.
std::string Probe(const config::Listener& l) {
  net::Address at;
  try {
    at = net::MakeAddress(l.address, l.port);
  } catch (const std::exception& e) {
    return e.what();
  }
  const int fd = ::socket(at.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  int one = 1;
  std::string error;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&at.storage), at.length) != 0 ||
      ::listen(fd, 1) != 0) {
    error = std::strerror(errno);
  }
  ::close(fd);
  return error;
}

}  // namespace

std::vector<std::string> ProbeNewListeners(const config::Config& running,
                                           const config::Config& next) {
  std::vector<std::string> errors;
  for (size_t i = 0; i < next.listeners.size(); ++i) {
    const config::Listener& l = next.listeners[i];
    const bool have =
        std::any_of(running.listeners.begin(), running.listeners.end(),
                    [&](const config::Listener& r) { return r.Address() == l.Address(); });
    if (have) continue;
    std::string error = Probe(l);
    if (!error.empty()) {
      errors.push_back("listeners[" + std::to_string(i) + "] " + l.Address() + ": " + error);
    }
  }
  return errors;
}

}  // namespace ficus::server
