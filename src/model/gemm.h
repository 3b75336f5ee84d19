// ddpipe::model — float32 matrix products on oneDNN's sgemm. Debian's libtorch is built with the
// reference BLAS, so torch::mm in float32 runs at about 1 GFLOP/s; oneDNN's sgemm (the library
// libtorch already uses for convolutions) reaches ~100 GFLOP/s per core here.
#pragma once

#include <cstdint>

namespace ddpipe::model {

// Row-major C[m, n] = op(A) · op(B), op = transpose when asked; A, B, C contiguous float32
// (A is m × k, or k × m transposed; B is k × n, or n × k transposed). Throws
// core::Error(kInternal) if oneDNN refuses.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float* c);

}  // namespace ddpipe::model
