// ddpipe::core — small deterministic random functions whose results must be the same on every
// machine and standard library (seeded splits, augmentation keys, synthetic data): the C++
// standard fixes std::mt19937_64 but not std::uniform_int_distribution.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace ddpipe::core {

// SplitMix64's finaliser: a well-mixed 64-bit function of x.
uint64_t splitmix64(uint64_t x) noexcept;

// FNV-1a, 64 bits, of the bytes of `s`.
uint64_t fnv1a(const std::string& s) noexcept;

// Uniform in [0, n) (n > 0) from `rng`, by rejection: the same draws everywhere.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

}  // namespace ddpipe::core
