#include "model/linear.h"

#include <ATen/autocast_mode.h>
#include <dnnl.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "model/gemm.h"

namespace ddpipe::model {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float* c) {
  const int64_t lda = trans_a ? m : k;
  const int64_t ldb = trans_b ? k : n;
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a,
                                      lda, b, ldb, 0.0f, c, n);
  if (st != dnnl_success) {
    throw core::Error(core::ErrorKind::kInternal,
                      "oneDNN sgemm failed with status " + std::to_string(static_cast<int>(st)) +
                          " for a " + std::to_string(m) + "x" + std::to_string(k) + " by " +
                          std::to_string(k) + "x" + std::to_string(n) + " product");
  }
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct LinearFn : torch::autograd::Function<LinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& w_in) {
    auto x = x_in.contiguous();
    auto w = w_in.contiguous();
    const int64_t n = x.size(0), c = x.size(1), k = w.size(0);
    auto y = torch::empty({n, k}, x.options());
    sgemm(false, true, n, k, c, x.data_ptr<float>(), w.data_ptr<float>(), y.data_ptr<float>());
    ctx->save_for_backward({x, w});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    auto gy = grads[0].contiguous();
    const int64_t n = x.size(0), c = x.size(1), k = w.size(0);
    torch::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {
      gx = torch::empty({n, c}, x.options());
      sgemm(false, false, n, c, k, gy.data_ptr<float>(), w.data_ptr<float>(), gx.data_ptr<float>());
    }
    if (ctx->needs_input_grad(1)) {
      gw = torch::empty({k, c}, w.options());
      sgemm(true, false, k, c, n, gy.data_ptr<float>(), x.data_ptr<float>(), gw.data_ptr<float>());
    }
    return {gx, gw};
  }
};

bool fast_path(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (at::autocast::is_cpu_enabled()) return false;  // autocast decides the dtype
  auto ok = [](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided;
  };
  return x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1) && x.size(0) > 0 && ok(x) &&
         ok(w) && (!b.defined() || (ok(b) && b.dim() == 1 && b.size(0) == w.size(0)));
}

// Without autograd (evaluation, serving): one product per row, so that a row's result does not
// depend on the batch it is in (sgemm's kernels and threading vary with the row count).
torch::Tensor rowwise(const torch::Tensor& x_in, const torch::Tensor& w_in) {
  auto x = x_in.contiguous();
  auto w = w_in.contiguous();
  const int64_t n = x.size(0), c = x.size(1), k = w.size(0);
  auto y = torch::empty({n, k}, x.options());
  for (int64_t i = 0; i < n; ++i) {
    sgemm(false, true, 1, k, c, x.data_ptr<float>() + i * c, w.data_ptr<float>(),
          y.data_ptr<float>() + i * k);
  }
  return y;
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (!fast_path(x, w, b)) return torch::linear(x, w, b);
  auto y = torch::GradMode::is_enabled() ? LinearFn::apply(x, w) : rowwise(x, w);
  return b.defined() ? y + b : y;
}

}  // namespace ddpipe::model
