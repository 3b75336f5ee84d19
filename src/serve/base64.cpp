#include "serve/base64.h"

#include <cstdint>

#include "core/error.h"

namespace ddpipe::serve {
namespace {

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

}  // namespace

std::string base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      if (++padding > 2)
        core::fail_usage("base64: too much padding at offset " + std::to_string(i));
      continue;
    }
    const int v = sextet(c);
    if (v < 0 || padding > 0) {
      core::fail_usage("base64: invalid character at offset " + std::to_string(i));
    }
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) core::fail_usage("base64: the input ends in the middle of a byte");
  return out;
}

}  // namespace ddpipe::serve
