// Addresses: IPv4/IPv6 socket addresses, their text form and comparison.
#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

#include "net/net.h"

namespace ficus::net {

uint16_t Address::port() const {
  if (storage.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
}

std::string Address::ToString() const {
  char ip[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(storage).sin_addr, ip, sizeof ip);
    return std::string(ip).append(":").append(std::to_string(port()));
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(storage).sin6_addr, ip, sizeof ip);
  return std::string("[").append(ip).append("]:").append(std::to_string(port()));
}

bool Address::operator==(const Address& o) const {
  return length == o.length && std::memcmp(&storage, &o.storage, length) == 0;
}

Address MakeAddress(const std::string& ip, uint16_t port) {
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.length = sizeof(sockaddr_in6);
  } else {
    throw std::runtime_error("not an IP address: '" + ip + "'");
  }
  return a;
}

}  // namespace ficus::net
