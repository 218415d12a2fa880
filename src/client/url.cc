// URLs, and the addresses and TLS context a call to one goes to.
#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "client/client.h"

namespace ficus::client {

std::string Url::Authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (https ? 443 : 80)) out.append(":").append(std::to_string(port));
  return out;
}

bool ParseUrl(std::string_view text, Url* out, std::string* error) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      *error = "a URL must not contain spaces, control or non-ASCII characters";
      return false;
    }
  }
  auto starts = [&](std::string_view scheme) {
    return text.size() >= scheme.size() &&
           std::equal(scheme.begin(), scheme.end(), text.begin(), [](char a, char b) {
             return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
           });
  };
  Url url;
  if (starts("https://")) {
    url.https = true;
    text.remove_prefix(8);
  } else if (starts("http://")) {
    text.remove_prefix(7);
  } else {
    *error = "expected an http:// or https:// URL";
    return false;
  }
  const size_t end = text.find_first_of("/?#");
  std::string_view authority = text.substr(0, end);
  const std::string_view rest = end == std::string_view::npos ? "" : text.substr(end);
  if (rest.find('#') != std::string_view::npos) {
    *error = "a URL must not have a fragment ('#')";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    *error = "a URL must not contain credentials ('user@')";
    return false;
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "unterminated '[' in the host";
      return false;
    }
    url.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        *error = "unexpected text after ']'";
        return false;
      }
      port = after.substr(1);
      if (port.empty()) port = "x";  // "[::1]:" is an error below
    }
    in6_addr a;
    if (::inet_pton(AF_INET6, url.host.c_str(), &a) != 1) {
      *error = "'" + url.host + "' is not an IPv6 address";
      return false;
    }
  } else {
    const size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) port = "x";
    }
  }
  if (url.host.empty()) {
    *error = "the URL has no host";
    return false;
  }
  url.port = url.https ? 443 : 80;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) {
      *error = "bad port '" + std::string(port) + "' (1..65535)";
      return false;
    }
    url.port = static_cast<uint16_t>(v);
  }
  if (rest.empty()) {
    url.target = "/";
  } else if (rest.front() == '?') {
    url.target.assign(1, '/').append(rest);
  } else {
    url.target = std::string(rest);
  }
  *out = std::move(url);
  return true;
}

bool Destination::Resolve(const Url& url, std::shared_ptr<TlsContext> tls, Destination* out,
                          std::string* error) {
  Destination d;
  d.host = url.host;
  d.port = url.port;
  d.https = url.https;
  if (url.https) {
    if (tls == nullptr) tls = TlsContext::Create({}, error);
    if (tls == nullptr) return false;
    d.tls = std::move(tls);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(url.port);
  const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return false;
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    sockaddr_storage s{};
    std::memcpy(&s, ai->ai_addr, std::min<size_t>(ai->ai_addrlen, sizeof s));
    d.addresses.push_back(s);
  }
  ::freeaddrinfo(res);
  *out = std::move(d);
  return true;
}

Destination Destination::Of(const sockaddr* address, socklen_t length, std::string host,
                            uint16_t port) {
  Destination d;
  d.host = std::move(host);
  d.port = port;
  sockaddr_storage s{};
  std::memcpy(&s, address, std::min<size_t>(length, sizeof s));
  d.addresses.push_back(s);
  return d;
}

}  // namespace ficus::client
