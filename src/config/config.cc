// Loading a config: the file or string, its defaults, and the errors of a load that failed.
#include "config/config.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "config/internal/loader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config {

namespace {

// Far above any real config; stops `ficus check -c /dev/zero` from eating memory.
constexpr size_t kMaxFileBytes = 16 << 20;

LoadResult Failure(std::string_view source, std::string reason) {
  LoadResult r;
  r.errors.push_back(ConfigError{std::string(source), 0, 0, "", std::move(reason)});
  return r;
}

LoadOptions WithDefaults(const LoadOptions& options) {
  LoadOptions o = options;
  if (!o.resolve) o.resolve = internal::ResolveWithGetaddrinfo;
  if (!o.getenv) {
    o.getenv = [](const std::string& name) -> std::optional<std::string> {
      const char* v = std::getenv(name.c_str());
      if (!v) return std::nullopt;
      return std::string(v);
    };
  }
  return o;
}

}  // namespace

std::string ConfigError::ToString() const {
  // Appends only: g++ 12 -O3 warns falsely (-Wrestrict) on "literal" + std::string.
  std::string out = file;
  if (line > 0) {
    out.append(":").append(std::to_string(line));
    if (column > 0) out.append(":").append(std::to_string(column));
  }
  out.append(": ");
  if (!field.empty()) out.append(field).append(": ");
  out.append(reason);
  return out;
}

std::string Endpoint::Address() const { return internal::JoinHostPort(host, port); }
std::string Listener::Address() const { return internal::JoinHostPort(address, port); }
std::string Admin::Address() const { return internal::JoinHostPort(address, port); }
std::string PgServer::Address() const { return internal::JoinHostPort(host, port); }
bool Admin::IsLoopback() const { return internal::IsLoopbackIp(address); }

LoadResult LoadString(std::string_view yaml, std::string_view source_name,
                      const LoadOptions& options) {
  try {
    return internal::LoadYaml(yaml, source_name, WithDefaults(options));
  } catch (const std::exception& e) {
    return Failure(source_name,
                   std::string("internal error while loading the config: ") + e.what());
  } catch (...) {
    return Failure(source_name, "internal error while loading the config");
  }
}

LoadResult LoadString(std::string_view yaml, std::string_view source_name) {
  return LoadString(yaml, source_name, LoadOptions{});
}

LoadResult LoadFile(const std::string& path, const LoadOptions& options) {
  try {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Failure(path, std::string("cannot open: ") + std::strerror(errno));
    std::string text;
    char buf[64 * 1024];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        return Failure(path, std::string("cannot read: ") + std::strerror(err));
      }
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxFileBytes) {
        ::close(fd);
        return Failure(path, "file is larger than " + FormatSize(kMaxFileBytes));
      }
    }
    ::close(fd);
    return LoadString(text, path, options);
  } catch (const std::exception& e) {
    return Failure(path, std::string("internal error while loading the config: ") + e.what());
  }
}

LoadResult LoadFile(const std::string& path) { return LoadFile(path, LoadOptions{}); }

}  // namespace ficus::config
