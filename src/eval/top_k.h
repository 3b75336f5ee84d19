// ddpipe::eval — the k most probable classes, in the one order every caller reports them
// (`ddpipe predict --top-k`, the server's `top_k`).
#pragma once

#include <cstdint>
#include <vector>

namespace ddpipe::eval {

// Class indices by descending probability; equal probabilities keep ascending index order, so
// the answer is the same on every run and in every caller. At most `k` indices (all of them
// when k exceeds the class count, none when k <= 0). Pure; thread-safe.
std::vector<int64_t> top_k(const std::vector<float>& probabilities, int64_t k);

}  // namespace ddpipe::eval
