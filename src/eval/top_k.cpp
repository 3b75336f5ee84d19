#include "eval/top_k.h"

#include <algorithm>

namespace ddpipe::eval {

std::vector<int64_t> top_k(const std::vector<float>& probabilities, int64_t k) {
  if (k <= 0) return {};
  std::vector<int64_t> order(probabilities.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  // Stable: ties stay in index order.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return probabilities[static_cast<size_t>(a)] > probabilities[static_cast<size_t>(b)];
  });
  if (static_cast<uint64_t>(k) < order.size()) order.resize(static_cast<size_t>(k));
  return order;
}

}  // namespace ddpipe::eval
