#include "dist/communicator.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <map>

#include "core/error.h"
#include "core/log.h"

namespace ddpipe::dist {

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
};

namespace {

[[noreturn]] void rethrow(const std::string& what, const std::exception& e) {
  std::string msg = e.what();
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
  throw core::Error(core::ErrorKind::kRetryable, what + " failed: " + msg);
}

void wait_work(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what,
               std::chrono::milliseconds timeout) {
  try {
    work->wait(timeout);
  } catch (const std::exception& e) {
    rethrow(what, e);
  }
}

class GlooPending : public Communicator::Pending {
 public:
  GlooPending(c10::intrusive_ptr<c10d::Work> w, std::chrono::milliseconds t)
      : work_(std::move(w)), timeout_(t) {}
  void wait() override { wait_work(work_, "allreduce", timeout_); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::chrono::milliseconds timeout_;
};

class DonePending : public Communicator::Pending {
 public:
  void wait() override {}
};

}  // namespace

Communicator::Communicator(const WorldInfo& world, std::chrono::milliseconds timeout)
    : world_(world), impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  if (world.world_size == 1) return;
  std::string where = world.master_addr + ":" + std::to_string(world.master_port);
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<uint16_t>(world.master_port);
    opts.isServer = world.rank == 0;
    opts.numWorkers = static_cast<size_t>(world.world_size);
    opts.waitWorkers = true;
    opts.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, opts);
  } catch (const std::exception& e) {
    rethrow("rendezvous with the master at " + where + " (rank " + std::to_string(world.rank) +
                " of " + std::to_string(world.world_size) + ")",
            e);
  }
  try {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
          world.master_addr == "localhost" ? "127.0.0.1" : world.master_addr));
    }
    opts->threads = 2;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(
        impl_->store, static_cast<int>(world.rank), static_cast<int>(world.world_size), opts);
  } catch (const std::exception& e) {
    rethrow("creating the Gloo process group via " + where, e);
  }
  core::log::info("dist", "process group ready",
                  {{"world_size", world.world_size}, {"master", where}, {"backend", "gloo"}});
}

Communicator::~Communicator() = default;

void Communicator::allreduce_sum(std::vector<torch::Tensor>& tensors) {
  if (world_.world_size == 1 || tensors.empty()) return;
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = impl_->timeout;
  wait_work(impl_->pg->allreduce(tensors, opts), "allreduce", impl_->timeout);
}

std::unique_ptr<Communicator::Pending> Communicator::allreduce_sum_async(torch::Tensor& flat) {
  if (world_.world_size == 1) return std::make_unique<DonePending>();
  std::vector<torch::Tensor> v{flat};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = impl_->timeout;
  try {
    return std::make_unique<GlooPending>(impl_->pg->allreduce(v, opts), impl_->timeout);
  } catch (const std::exception& e) {
    rethrow("allreduce", e);
  }
}

void Communicator::broadcast(std::vector<torch::Tensor>& tensors, int64_t root) {
  if (world_.world_size == 1 || tensors.empty()) return;
  // One collective per dtype: flatten, broadcast, copy back.
  std::map<c10::ScalarType, std::vector<torch::Tensor*>> groups;
  for (auto& t : tensors) groups[t.scalar_type()].push_back(&t);
  torch::NoGradGuard no_grad;
  for (auto& [dtype, group] : groups) {
    std::vector<torch::Tensor> flat_parts;
    for (auto* t : group) flat_parts.push_back(t->contiguous().view(-1));
    std::vector<torch::Tensor> one{torch::cat(flat_parts)};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = impl_->timeout;
    wait_work(impl_->pg->broadcast(one, opts), "broadcast", impl_->timeout);
    int64_t offset = 0;
    for (auto* t : group) {
      int64_t n = t->numel();
      t->copy_(one[0].slice(0, offset, offset + n).view(t->sizes()));
      offset += n;
    }
  }
}

void Communicator::barrier() {
  if (world_.world_size == 1) return;
  c10d::BarrierOptions opts;
  opts.timeout = impl_->timeout;
  wait_work(impl_->pg->barrier(opts), "barrier", impl_->timeout);
}

}  // namespace ddpipe::dist
