// ddpipe::model — a matrix product for training and inference that runs on oneDNN's GEMM
// (model/gemm.h: torch::linear in float32 runs on Debian's reference BLAS). linear() has the
// semantics of torch::linear(x, w, b), gradients included, and takes that path for float32 CPU
// tensors; any other dtype (bf16 under autocast) goes to torch::linear, which uses oneDNN for bf16.
// Without autograd (inference) each row is its own product, so a row's result never depends on its
// batch.
#pragma once

#include <torch/types.h>

namespace ddpipe::model {

// y = x · wᵀ (+ b): x [N, C], w [K, C], b [K] or undefined → y [N, K]. Differentiable in x, w, b.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w,
                     const torch::Tensor& b = torch::Tensor());

}  // namespace ddpipe::model
