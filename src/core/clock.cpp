#include "core/clock.h"

#include <chrono>
#include <ctime>

namespace ddpipe::core {
namespace {
std::string format_now(const char* fmt) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}
}  // namespace

std::string version_timestamp() { return format_now("%Y%m%d_%H%M%S"); }
std::string iso_timestamp() { return format_now("%Y-%m-%dT%H:%M:%SZ"); }
double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ddpipe::core
