#include "dist/data_parallel.h"

#include <torch/torch.h>

#include <chrono>
#include <mutex>

#include "core/error.h"

namespace ddpipe::dist {

struct DataParallel::Impl {
  struct Slot {
    torch::Tensor param;
    int64_t bucket = 0;
    int64_t offset = 0;
  };
  struct Bucket {
    torch::Tensor flat;
    std::vector<int64_t> slots;
    int64_t ready = 0;
    std::unique_ptr<Communicator::Pending> pending;
  };

  Communicator& comm;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<torch::Tensor> buffers;
  std::mutex mu;  // hooks may run on autograd worker threads
  bool active = false;
  size_t next_launch = 0;
  double exposed = 0.0;

  explicit Impl(Communicator& c) : comm(c) {}

  void launch_ready_buckets() {
    while (next_launch < buckets.size() &&
           buckets[next_launch].ready == static_cast<int64_t>(buckets[next_launch].slots.size())) {
      Bucket& b = buckets[next_launch];
      b.pending = comm.allreduce_sum_async(b.flat);
      ++next_launch;
    }
  }

  // Autograd hook: `grad` is this backward's gradient of slots[i].param.
  void on_grad(size_t i, const torch::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    if (!active) return;
    Slot& s = slots[i];
    Bucket& b = buckets[s.bucket];
    auto dst = b.flat.slice(0, s.offset, s.offset + s.param.numel()).view(s.param.sizes());
    torch::NoGradGuard no_grad;
    // Earlier micro-batches of an accumulation window live in .grad already.
    const auto& acc = s.param.grad();
    if (acc.defined()) {
      torch::add_out(dst, acc, grad);
    } else {
      dst.copy_(grad);
    }
    ++b.ready;
    launch_ready_buckets();
  }
};

DataParallel::DataParallel(Communicator& comm, torch::nn::Module& module, double bucket_mb)
    : impl_(std::make_unique<Impl>(comm)) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> state;
  std::vector<torch::Tensor> params;
  for (auto& p : module.parameters()) {
    if (p.requires_grad()) params.push_back(p);
    state.push_back(p);
  }
  for (auto& b : module.buffers()) {
    state.push_back(b);
    impl_->buffers.push_back(b);
  }
  comm.broadcast(state, 0);

  // Buckets in reverse registration order: roughly the order backward produces gradients.
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024 * 1024 / 4));
  std::vector<std::vector<int64_t>> bucket_slots;
  int64_t fill = cap;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->scalar_type() != torch::kFloat) {
      core::fail_usage("data parallel training supports float32 parameters only");
    }
    if (fill + it->numel() > cap && fill > 0) {
      bucket_slots.emplace_back();
      fill = 0;
    }
    int64_t idx = static_cast<int64_t>(impl_->slots.size());
    impl_->slots.push_back({*it, static_cast<int64_t>(bucket_slots.size() - 1), fill});
    bucket_slots.back().push_back(idx);
    fill += it->numel();
  }
  for (auto& bs : bucket_slots) {
    Impl::Bucket b;
    int64_t n = 0;
    for (int64_t i : bs) n += impl_->slots[i].param.numel();
    b.flat = torch::zeros({n});
    b.slots = bs;
    impl_->buckets.push_back(std::move(b));
  }
  if (comm.world_size() > 1) {
    Impl* impl = impl_.get();
    for (size_t i = 0; i < impl_->slots.size(); ++i) {
      impl_->slots[i].param.register_hook([impl, i](torch::Tensor grad) {
        impl->on_grad(i, grad);
        return torch::Tensor();  // keep the gradient unchanged
      });
    }
  }
}

DataParallel::~DataParallel() = default;

void DataParallel::sync_buffers() {
  if (impl_->comm.world_size() > 1) impl_->comm.broadcast(impl_->buffers, 0);
}

void DataParallel::begin_backward(bool sync) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->active = sync && impl_->comm.world_size() > 1;
  impl_->next_launch = 0;
  for (auto& b : impl_->buckets) {
    b.ready = 0;
    b.pending.reset();
  }
}

void DataParallel::finish_gradients() {
  if (!impl_->active) return;
  auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // Parameters that took no part in this backward contribute their current (or zero) grad.
    for (size_t bi = impl_->next_launch; bi < impl_->buckets.size(); ++bi) {
      auto& b = impl_->buckets[bi];
      if (b.ready == static_cast<int64_t>(b.slots.size())) continue;
      core::fail_usage("a parameter received no gradient in this step; every parameter must be "
                       "used in the forward pass for data parallel training");
    }
    impl_->active = false;
  }
  torch::NoGradGuard no_grad;
  const double inv_world = 1.0 / static_cast<double>(impl_->comm.world_size());
  for (auto& b : impl_->buckets) {
    b.pending->wait();
    b.flat.mul_(inv_world);
    for (int64_t i : b.slots) {
      auto& s = impl_->slots[i];
      auto src = b.flat.slice(0, s.offset, s.offset + s.param.numel()).view(s.param.sizes());
      auto& g = s.param.mutable_grad();
      if (g.defined()) {
        g.copy_(src);
      } else {
        g = src.clone();
      }
    }
  }
  impl_->exposed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double DataParallel::exposed_comm_seconds() const { return impl_->exposed; }
int64_t DataParallel::num_buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }

}  // namespace ddpipe::dist
