#include "train/sgd.h"

#include <torch/torch.h>

namespace ddpipe::train {
namespace {

struct Hyper {
  float lr, momentum, dampening, weight_decay;
  bool nesterov, first;
};

// The update over n elements of three tensors with identical dense layouts.
void update(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
            const Hyper& h) {
  const float keep = 1.0f - h.dampening;
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + h.weight_decay * p[i];
    const float b = h.first ? d : h.momentum * buf[i] + keep * d;
    buf[i] = b;
    p[i] -= h.lr * (h.nesterov ? d + h.momentum * b : b);
  }
}

bool same_dense_layout(const torch::Tensor& a, const torch::Tensor& b) {
  return a.is_non_overlapping_and_dense() && b.is_non_overlapping_and_dense() &&
         a.sizes() == b.sizes() && a.strides() == b.strides();
}

}  // namespace

FusedSGD::FusedSGD(std::vector<torch::Tensor> params, torch::optim::SGDOptions options)
    : torch::optim::SGD(std::move(params), options) {}

torch::Tensor FusedSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& g = p.grad();
      const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto it = state_.find(key);
      const bool first = it == state_.end();  // before an insert moves end()
      torch::optim::SGDParamState* st = nullptr;
      if (o.momentum() != 0 && first) {
        auto fresh = std::make_unique<torch::optim::SGDParamState>();
        fresh->momentum_buffer(torch::empty_like(p));
        st = fresh.get();
        state_[key] = std::move(fresh);
      } else if (!first) {
        st = static_cast<torch::optim::SGDParamState*>(it->second.get());
      }
      const bool fused = o.momentum() != 0 && p.scalar_type() == torch::kFloat &&
                         g.scalar_type() == torch::kFloat && p.device().is_cpu() &&
                         same_dense_layout(p, g) && same_dense_layout(p, st->momentum_buffer());
      if (fused) {
        Hyper h{static_cast<float>(o.lr()),
                static_cast<float>(o.momentum()),
                static_cast<float>(o.dampening()),
                static_cast<float>(o.weight_decay()),
                o.nesterov(),
                first};
        update(p.data_ptr<float>(), g.data_ptr<float>(), st->momentum_buffer().data_ptr<float>(),
               p.numel(), h);
        continue;
      }
      // Any other case (no momentum, other dtypes or layouts): torch's SGD arithmetic.
      auto d = g;
      if (o.weight_decay() != 0) d = d.add(p, o.weight_decay());
      if (o.momentum() != 0) {
        auto& buf = st->momentum_buffer();
        if (first) {
          buf = d.clone();
        } else {
          buf.mul_(o.momentum()).add_(d, 1 - o.dampening());
        }
        d = o.nesterov() ? d.add(buf, o.momentum()) : buf;
      }
      p.add_(d, -o.lr());
    }
  }
  return loss;
}

}  // namespace ddpipe::train
