// libFuzzer target: the YAML config (`--config FILE`, and the config stored in every manifest)
// and `--set key=value` overrides, through core::config_from_yaml (yaml-cpp, the schema, every
// validation), and the effective config written back (core::to_yaml), which must read back to
// the same config but for its credentials (written redacted, read back empty). Built with clang
// under ASan + UBSan; see cmake/DdpipeFuzz.cmake.
//
// Input: the YAML text, then optionally "\n--set\n" and one override per line. Expected refusals
// are core::Error; anything else escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/error.h"

using namespace ddpipe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSet = "\n--set\n";
  const size_t split = in.find(kSet);
  std::vector<std::string> overrides;
  if (split != std::string_view::npos) {
    for (size_t at = split + kSet.size(); at <= in.size();) {
      size_t end = in.find('\n', at);
      if (end == std::string_view::npos) end = in.size();
      overrides.emplace_back(in.substr(at, end - at));
      at = end + 1;
    }
  }
  core::Config config;
  try {
    config = core::config_from_yaml(std::string(in.substr(0, split)), overrides);
  } catch (const core::Error&) {
    return 0;
  }
  try {
    // Credentials are written as kRedacted, which reads back as "" (never stored): without them
    // the config must read back the same.
    const core::Config read = core::config_from_yaml(core::to_yaml(config));
    if (!read.s3.secret_access_key.empty() || !read.s3.session_token.empty()) __builtin_trap();
    config.s3.secret_access_key.clear();
    config.s3.session_token.clear();
    const std::string yaml = core::to_yaml(config);
    if (core::to_yaml(core::config_from_yaml(yaml)) != yaml) __builtin_trap();  // not the same
  } catch (const core::Error&) {
    __builtin_trap();  // what ddpipe writes, it must read
  }
  return 0;
}
