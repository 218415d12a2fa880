// ficus::route — the route table: first route (in config order) whose host, path, method and
// header matchers all match. Built once per config snapshot; Match() is const and lock-free.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "config/config.h"
#include "http/http.h"

namespace ficus::route {

class RouteTable {
 public:
  // REQUIRES: config was validated (regexes compile, clusters resolved).
  explicit RouteTable(const config::Config& config);
  ~RouteTable();
  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;

  // Index into config.routes of the first matching route, or -1 when none matches.
  // Host is compared case-insensitively without its port (and without a trailing dot).
  // Paths are compared as received: not percent-decoded, not normalized ("/a/../b" is not "/b").
  // path_regex uses boost::regex (ECMAScript/Perl syntax, whole-path match). Fail-closed: when a
  // route's other matchers all match but its regex cannot be evaluated — the path is longer than
  // kMaxRegexPathBytes, or the regex exceeds boost's complexity bound — Match returns -1 instead
  // of falling through to later routes (a long path must not slip past a regex route).
  // No allocation, except the first regex match on each thread (a per-thread match buffer).
  // Thread safety: const, callable from every worker at once.
  int Match(const http::RequestHead& head) const;

  // Bounds the cost of one regex match (boost's bound grows with the square of the length).
  static constexpr size_t kMaxRegexPathBytes = 2048;

  size_t size() const;  // number of routes

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ficus::route
