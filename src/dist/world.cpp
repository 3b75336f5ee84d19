#include "dist/world.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace ddpipe::dist {
namespace {

bool env_int(const char* name, int64_t& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x < 0) {
    core::fail_usage(std::string("environment variable ") + name +
                     ": expected a non-negative integer, got '" + v + "'");
  }
  out = x;
  return true;
}

}  // namespace

WorldInfo world_from_env() {
  WorldInfo w;
  if (!env_int("WORLD_SIZE", w.world_size)) return w;
  if (w.world_size < 1) core::fail_usage("environment variable WORLD_SIZE: must be at least 1");
  env_int("RANK", w.rank);
  if (w.rank >= w.world_size) {
    core::fail_usage("RANK=" + std::to_string(w.rank) + " is not below WORLD_SIZE=" +
                     std::to_string(w.world_size));
  }
  if (!env_int("LOCAL_RANK", w.local_rank)) w.local_rank = w.rank;
  if (!env_int("LOCAL_WORLD_SIZE", w.local_world_size)) w.local_world_size = w.world_size;
  if (w.world_size > 1) {
    const char* addr = std::getenv("MASTER_ADDR");
    if (!addr || !*addr) core::fail_usage("WORLD_SIZE > 1 but MASTER_ADDR is not set");
    w.master_addr = addr;
    if (!env_int("MASTER_PORT", w.master_port)) {
      core::fail_usage("WORLD_SIZE > 1 but MASTER_PORT is not set");
    }
    if (w.master_port < 1 || w.master_port > 65535) {
      core::fail_usage("MASTER_PORT must be between 1 and 65535, got " + std::to_string(w.master_port));
    }
  }
  return w;
}

}  // namespace ddpipe::dist
