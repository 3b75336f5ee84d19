#include "core/bearer.h"

#include <algorithm>

namespace ddpipe::core {

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0;
}

bool bearer_authorized(const std::string& authorization, const std::string& token) {
  if (token.empty()) return true;
  const std::string& h = authorization;
  const bool bearer =
      h.size() > 7 && (h.compare(0, 7, "Bearer ") == 0 || h.compare(0, 7, "bearer ") == 0);
  return bearer && constant_time_equal(h.substr(7), token);
}

}  // namespace ddpipe::core
