#include "dist/data_parallel.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

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
  double buffer_sync = 0.0;
  double comm_window = 0.0;  // Σ per step: first bucket launched → every bucket reduced
  std::chrono::steady_clock::time_point first_launch;

  // With compression: complete buckets queue for the worker, which reduces them in order.
  std::unique_ptr<BucketReducer> reducer;
  std::thread worker;
  std::condition_variable cv;  // with mu: queue, reduced, stop
  std::deque<size_t> queue;
  size_t reduced = 0;
  std::exception_ptr failure;  // the worker's first error this step
  bool stop = false;

  explicit Impl(Communicator& c) : comm(c) {}
  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (worker.joinable()) worker.join();
  }

  void launch_ready_buckets() {
    while (next_launch < buckets.size() &&
           buckets[next_launch].ready == static_cast<int64_t>(buckets[next_launch].slots.size())) {
      Bucket& b = buckets[next_launch];
      if (next_launch == 0) first_launch = std::chrono::steady_clock::now();
      if (reducer) {
        queue.push_back(next_launch);
        cv.notify_all();
      } else {
        b.pending = comm.allreduce_sum_async(b.flat);
      }
      ++next_launch;
    }
  }

  // The worker: each queued bucket in turn; after an error it only counts the rest.
  void work() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stop || !queue.empty(); });
      if (stop) return;
      const size_t i = queue.front();
      queue.pop_front();
      const bool skip = failure != nullptr;
      lock.unlock();
      std::exception_ptr error;
      if (!skip) {
        try {
          torch::NoGradGuard no_grad;
          reducer->reduce(i, buckets[i].flat);
        } catch (...) {
          error = std::current_exception();
        }
      }
      lock.lock();
      if (error) failure = error;
      ++reduced;
      cv.notify_all();
    }
  }

  // Waits for the worker to reduce every bucket of this step; rethrows its error.
  void wait_for_worker() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return reduced == buckets.size(); });
    if (failure) std::rethrow_exception(std::exchange(failure, nullptr));
    reducer->step_done();
  }

  // Runs after autograd has accumulated this backward's gradient of slots[i].param into its
  // .grad, which is a view of the bucket: the bucket is complete once every slot has reported.
  void on_accumulated(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!active) return;
    Bucket& b = buckets[slots[i].bucket];
    ++b.ready;
    launch_ready_buckets();
  }

  // The gradient of every parameter lives in its bucket (PyTorch's gradient_as_bucket_view),
  // laid out like the parameter: no copy in or out, one buffer per gradient instead of two.
  // Gradients accumulated before (a resumed step) move into the bucket.
  void bind_gradients() {
    torch::NoGradGuard no_grad;
    for (auto& s : slots) {
      auto view = buckets[s.bucket]
                      .flat.slice(0, s.offset, s.offset + s.param.numel())
                      .as_strided(s.param.sizes(), s.param.strides());
      if (s.param.grad().defined()) view.copy_(s.param.grad());
      s.param.mutable_grad() = view;
    }
  }

  // Each bucket's gradients: offset and shape (what a BucketReducer sees).
  std::vector<BucketLayout> layout() const {
    std::vector<BucketLayout> out(buckets.size());
    for (const auto& s : slots) {
      out[s.bucket].push_back({s.offset, s.param.sizes().vec()});
    }
    return out;
  }

  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // keeps the hooks alive
};

DataParallel::DataParallel(Communicator& comm, torch::nn::Module& module, double bucket_mb,
                           const CompressionOptions& compression)
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
    if (it->scalar_type() != torch::kFloat || !it->is_non_overlapping_and_dense()) {
      core::fail_usage("data parallel training supports dense float32 parameters only");
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
    if (comm.world_size() > 1) b.flat = torch::zeros({n});
    b.slots = bs;
    impl_->buckets.push_back(std::move(b));
  }
  if (comm.world_size() > 1) {
    impl_->reducer = make_bucket_reducer(compression, comm, impl_->layout());
    if (impl_->reducer) impl_->worker = std::thread([impl = impl_.get()] { impl->work(); });
    impl_->bind_gradients();
    Impl* impl = impl_.get();
    for (size_t i = 0; i < impl_->slots.size(); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(impl_->slots[i].param);
      acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [impl, i](const torch::autograd::variable_list& outputs,
                    const torch::autograd::variable_list&) {
            impl->on_accumulated(i);
            return outputs;
          }));
      impl_->accumulators.push_back(std::move(acc));
    }
  }
}

DataParallel::~DataParallel() = default;

void DataParallel::sync_buffers() {
  if (impl_->comm.world_size() <= 1) return;
  const auto t0 = std::chrono::steady_clock::now();
  impl_->comm.broadcast(impl_->buffers, 0);
  impl_->buffer_sync +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void DataParallel::begin_backward(bool sync) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->active = sync && impl_->comm.world_size() > 1;
  impl_->next_launch = 0;
  impl_->reduced = 0;
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
      core::fail_usage(
          "a parameter received no gradient in this step; every parameter must be "
          "used in the forward pass for data parallel training");
    }
    impl_->active = false;
  }
  if (impl_->reducer) {
    impl_->wait_for_worker();  // the reducer averages
  } else {
    torch::NoGradGuard no_grad;
    const double inv_world = 1.0 / static_cast<double>(impl_->comm.world_size());
    for (auto& b : impl_->buckets) {
      b.pending->wait();
      b.flat.mul_(inv_world);  // the parameters' .grad are views of it
    }
  }
  const auto done = std::chrono::steady_clock::now();
  impl_->exposed += std::chrono::duration<double>(done - t0).count();
  impl_->comm_window += std::chrono::duration<double>(done - impl_->first_launch).count();
}

std::string DataParallel::compression_state() {
  return impl_->reducer ? impl_->reducer->state_bytes() : std::string();
}

void DataParallel::load_compression_state(const std::string& bytes, const std::string& where) {
  if (impl_->reducer) impl_->reducer->load_state(bytes, where);
}

void DataParallel::zero_grad() {
  torch::NoGradGuard no_grad;
  if (impl_->comm.world_size() > 1) {
    for (auto& b : impl_->buckets) b.flat.zero_();
    return;
  }
  for (auto& s : impl_->slots) {
    if (s.param.grad().defined()) s.param.mutable_grad().zero_();
  }
}

double DataParallel::exposed_comm_seconds() const { return impl_->exposed; }
double DataParallel::buffer_sync_seconds() const { return impl_->buffer_sync; }
double DataParallel::comm_seconds() const { return impl_->comm_window; }
int64_t DataParallel::num_buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }

}  // namespace ddpipe::dist
