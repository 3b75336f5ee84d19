#include "model/conv.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/torch.h>

#include "model/linear.h"
#include "model/winograd.h"

namespace ddpipe::model {
namespace {

// Rows of a [N, H·W·C] matrix: the input in (h, w, c) order (a view for channels-last input).
torch::Tensor rows_hwc(const torch::Tensor& x) {
  return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1});
}

// The matrix product is worth it on float32 (oneDNN GEMM); under bf16 autocast oneDNN's bf16
// convolution is faster than building the matrix, so those keep the convolution. Only while
// autograd records (training): inference keeps torch::conv2d, whose result for an input does
// not depend on the batch it runs in (the inference service batches requests).
bool use_gemm(const torch::Tensor& x, const torch::Tensor& w) {
  return torch::GradMode::is_enabled() && !at::autocast::is_cpu_enabled() &&
         x.scalar_type() == torch::kFloat && w.scalar_type() == torch::kFloat &&
         x.device().is_cpu() && x.dim() == 4;
}

// The [4K, 4C] matrix of a [K, C, 3, 3] weight's four 2×2 windows: row (a, b, k), column
// (iy, ix, c) holds w[k, c, a + iy, b + ix]. Sixteen [K, C] block copies forward and block adds
// backward (Tensor::unfold's backward, the obvious alternative, is a scalar loop: 4× slower).
struct WindowMatrix : torch::autograd::Function<WindowMatrix> {
  template <typename F>
  static void for_each_block(F f) {
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t iy = 0; iy < 2; ++iy)
          for (int64_t ix = 0; ix < 2; ++ix) f(a, b, iy, ix);
  }
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& w) {
    const int64_t k = w.size(0), c = w.size(1);
    auto out = torch::empty({2, 2, k, 2, 2, c}, w.options());
    for_each_block([&](int64_t a, int64_t b, int64_t iy, int64_t ix) {
      out[a][b].select(1, iy).select(1, ix).copy_(w.select(3, b + ix).select(2, a + iy));
    });
    ctx->saved_data["format"] = static_cast<int64_t>(w.suggest_memory_format());
    ctx->saved_data["k"] = k;
    ctx->saved_data["c"] = c;
    return out.view({4 * k, 4 * c});
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const int64_t k = ctx->saved_data["k"].toInt(), c = ctx->saved_data["c"].toInt();
    const auto format = static_cast<c10::MemoryFormat>(ctx->saved_data["format"].toInt());
    auto g = grads[0].contiguous().view({2, 2, k, 2, 2, c});
    auto gw = torch::zeros({k, c, 3, 3}, g.options().memory_format(format));
    for_each_block([&](int64_t a, int64_t b, int64_t iy, int64_t ix) {
      gw.select(3, b + ix).select(2, a + iy).add_(g[a][b].select(1, iy).select(1, ix));
    });
    return {gw};
  }
};

}  // namespace

torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& w, int64_t stride, int64_t pad) {
  const int64_t h = x.dim() == 4 ? x.size(2) : 0, wd = x.dim() == 4 ? x.size(3) : 0;
  const int64_t k = w.size(0), kh = w.size(2), kw = w.size(3);
  if (use_gemm(x, w) && kh == 3 && kw == 3 && pad == 1) {
    if (h == 1 && wd == 1) {
      // Only the centre tap sees data; any stride gives one output pixel.
      auto wm = w.select(3, 1).select(2, 1);
      return model::linear(rows_hwc(x), wm).view({x.size(0), k, 1, 1});
    }
    if (h == 2 && wd == 2 && stride == 2) {
      // One output pixel, centred on input (0, 0): taps (1..2, 1..2) cover the 2×2 input.
      auto wm = w.slice(2, 1).slice(3, 1).permute({0, 2, 3, 1}).reshape({k, -1});
      return model::linear(rows_hwc(x), wm).view({x.size(0), k, 1, 1});
    }
    if (h == 2 && wd == 2 && stride == 1) {
      // Output (oy, ox) from input (iy, ix) uses tap (iy − oy + 1, ix − ox + 1). With a = 1 − oy
      // and b = 1 − ox that is tap (a + iy, b + ix).
      auto wm = WindowMatrix::apply(w);  // rows (a, b, k), columns (iy, ix, c)
      auto y = model::linear(rows_hwc(x), wm).view({x.size(0), 2, 2, k});  // (a, b, k)
      return y.flip({1, 2}).permute({0, 3, 1, 2});                         // (k, oy, ox)
    }
  }
  if (use_gemm(x, w) && kh == 1 && kw == 1 && pad == 0 && (h - 1) / stride == 0 &&
      (wd - 1) / stride == 0) {
    // A 1×1 convolution with a single output pixel reads input (0, 0) only.
    auto wm = w.view({k, -1});
    auto x0 = h > 1 || wd > 1 ? x.select(3, 0).select(2, 0) : x.flatten(1);
    return model::linear(x0, wm).view({x.size(0), k, 1, 1});
  }
  if (winograd_applies(x, w, stride, pad)) return winograd_conv3x3(x, w);
  return torch::conv2d(x, w, {}, stride, pad);
}

ConvImpl::ConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad)
    : in_(in), out_(out), kernel_(kernel), stride_(stride), pad_(pad) {
  reset();
}

void ConvImpl::reset() {
  weight = register_parameter("weight", torch::empty({out_, in_, kernel_, kernel_}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));  // nn::Conv2d's default
}

torch::Tensor ConvImpl::forward(const torch::Tensor& x) { return conv2d(x, weight, stride_, pad_); }

}  // namespace ddpipe::model
