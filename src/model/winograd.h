// ddpipe::model — 3×3 convolutions by Winograd's minimal filtering, on oneDNN.
//
// oneDNN (the library libtorch's CPU convolutions already run on) implements F(4×4, 3×3)
// Winograd convolution for training: forward, backward data and backward weights, with 4× fewer
// multiplications than direct convolution. libtorch 1.13 never selects it; on this AVX-512 CPU
// it runs each of the three passes about twice as fast as the direct kernels libtorch uses for
// ResNet layers with 64–512 channels. Results differ from direct convolution by float rounding
// of the transforms (relative error ~1e-5, tests/model/conv_test.cpp).
#pragma once

#include <torch/types.h>

namespace ddpipe::model {

// True when winograd_conv3x3() handles this input and weight: float32 CPU tensors, 3×3 kernel,
// stride 1, padding 1, at least 32 channels in and out and multiples of 16, maps of at least 4×4,
// no autocast, and
// Winograd not disabled (set_winograd(false) or DDPIPE_WINOGRAD=0).
bool winograd_applies(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride,
                      int64_t pad);

// conv2d(x, weight, stride 1, padding 1), differentiable in both; output in x's memory format.
torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& weight);

// Process-wide switch (default on).
void set_winograd(bool enabled);

}  // namespace ddpipe::model
