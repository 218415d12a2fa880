// ficus::route — the route table: first route (in config order) whose host, path, method and
// header matchers all match. Built once per config snapshot; Match() is const and lock-free.
#pragma once

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
  // Host is compared case-insensitively without its port. No allocation.
  int Match(const http::RequestHead& head) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ficus::route
