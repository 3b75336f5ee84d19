// ddpipe::model — the convolution layer of ddpipe's networks.
//
// Same parameters, initialisation and results as torch::nn::Conv2d without bias (the weight is
// "weight", [out, in, k, k]), with one shape specialisation: when the input is so small that
// most kernel taps fall on the zero padding (ResNet-18's last stages at 32×32: 3×3 kernels on
// 2×2 and 1×1 maps), the convolution is computed as one matrix product over the taps that touch
// data, on oneDNN's GEMM (model::linear). At 1×1 a padded 3×3 convolution does 9× the
// arithmetic it needs; at 2×2, 2.25×. Outputs and gradients equal torch::conv2d's up to float
// rounding (tests/model/conv_test.cpp); other shapes call torch::conv2d. Both fast paths (and
// Winograd, winograd.h) apply while autograd records, i.e. in training. Inference (evaluation,
// `ddpipe serve`) runs torch::conv2d, whose result for an input is the same in any batch.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace ddpipe::model {

// The convolution itself, for a weight [K, C, kh, kw] with symmetric padding `pad`.
torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride,
                     int64_t pad);

class ConvImpl : public torch::nn::Cloneable<ConvImpl> {
 public:
  ConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;

 private:
  int64_t in_, out_, kernel_, stride_, pad_;
};
TORCH_MODULE(Conv);

}  // namespace ddpipe::model
