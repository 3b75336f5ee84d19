#include "dist/communicator.h"

#include <gloo/allreduce.h>
#include <gloo/rendezvous/context.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace ddpipe::dist {

struct Communicator::Impl {
  WorldInfo world;
  std::string local_address;
  std::string master_ip;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::shared_ptr<gloo::transport::Device> device;   // the process group's
  std::shared_ptr<gloo::rendezvous::Context> ctx16;  // allreduce_sum_16bit's, on first use
  std::chrono::milliseconds timeout;
  std::chrono::milliseconds heartbeat_timeout{30000};

  // Heartbeat thread, with its own store connection so that it never waits behind the trainer.
  std::thread heartbeat;
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool hb_stop = false;

  ~Impl() { stop_heartbeat(); }

  void stop_heartbeat() {
    {
      std::lock_guard<std::mutex> lock(hb_mu);
      hb_stop = true;
    }
    hb_cv.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }

  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
  static std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

  [[noreturn]] void leave(const std::string& reason) {
    core::log::error("dist", reason + "; leaving with exit code 128 so the group can restart");
    core::record_error_file(reason, core::ErrorKind::kRetryable);
    std::fflush(nullptr);
    std::_Exit(core::exit_code(core::ErrorKind::kRetryable));
  }

  void heartbeat_loop() {
    c10::intrusive_ptr<c10d::TCPStore> client;
    auto last_contact = std::chrono::steady_clock::now();
    const std::string me = std::to_string(world.rank);
    std::unique_lock<std::mutex> lock(hb_mu);
    while (!hb_stop) {
      lock.unlock();
      try {
        if (!client) {
          c10d::TCPStoreOptions o;
          o.port = static_cast<uint16_t>(world.master_port);
          o.isServer = false;
          o.waitWorkers = false;
          o.timeout = std::chrono::seconds(2);
          client = c10::make_intrusive<c10d::TCPStore>(master_ip, o);
        }
        client->set("ddpipe/hb/" + me, bytes(std::to_string(now_ms())));
        last_contact = std::chrono::steady_clock::now();
        if (client->check({"ddpipe/abort"})) {
          std::string why = text(client->get("ddpipe/abort"));
          if (!hb_stop) leave("another rank failed: " + why);
        }
        const int64_t now = now_ms();
        for (int64_t r = 0; r < world.world_size && !hb_stop; ++r) {
          if (r == world.rank) continue;
          const int64_t seen = std::stoll(text(client->get("ddpipe/hb/" + std::to_string(r))));
          if (now - seen > heartbeat_timeout.count()) {
            std::string addr = text(client->get("ddpipe/addr/" + std::to_string(r)));
            std::string why = "rank " + std::to_string(r) + " (" + addr +
                              ") lost: no heartbeat for " + std::to_string((now - seen) / 1000) +
                              " s";
            client->set("ddpipe/abort", bytes(why));
            leave(why);
          }
        }
      } catch (const std::exception& e) {
        client.reset();  // reconnect next time
        auto silent = std::chrono::steady_clock::now() - last_contact;
        if (silent > heartbeat_timeout && !hb_stop) {
          leave("lost contact with the rendezvous store of the master at " + master_ip + ":" +
                std::to_string(world.master_port) + " for " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silent).count()) +
                " s");
        }
      }
      lock.lock();
      hb_cv.wait_for(lock, std::chrono::seconds(1), [&] { return hb_stop; });
    }
  }
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

// Resolves `host` to an IPv4 address, or "" while it does not resolve (yet).
std::string resolve_ipv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return "";
  char buf[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
  freeaddrinfo(res);
  return buf;
}

// The local IPv4 address the kernel would use to reach `ip` (no packet is sent).
std::string route_source(const std::string& ip, int64_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return "";
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &dst.sin_addr);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) {
    sockaddr_in src{};
    socklen_t len = sizeof src;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&src), &len) == 0) {
      char buf[INET_ADDRSTRLEN] = {0};
      inet_ntop(AF_INET, &src.sin_addr, buf, sizeof buf);
      out = buf;
    }
  }
  ::close(fd);
  return out;
}

// The name of the interface that holds `ip`, for the log.
std::string interface_of(const std::string& ip) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "?";
  std::string name = "?";
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN] = {0};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    if (ip == buf) {
      name = i->ifa_name;
      break;
    }
  }
  freeifaddrs(list);
  return name;
}

}  // namespace

Communicator::Communicator(const WorldInfo& world, std::chrono::milliseconds timeout,
                           std::chrono::milliseconds rendezvous_timeout,
                           std::chrono::milliseconds heartbeat_timeout)
    : world_(world), impl_(std::make_unique<Impl>()) {
  impl_->world = world;
  impl_->timeout = timeout;
  impl_->heartbeat_timeout = heartbeat_timeout;
  if (rendezvous_timeout.count() <= 0) rendezvous_timeout = timeout;
  if (world.world_size == 1) return;
  const std::string where = world.master_addr + ":" + std::to_string(world.master_port);
  const std::string who =
      "rank " + std::to_string(world.rank) + " of " + std::to_string(world.world_size);
  const auto deadline = std::chrono::steady_clock::now() + rendezvous_timeout;

  // Workers may start before the master's name resolves (a pod whose Service is not there yet):
  // retry with back-off until the rendezvous deadline.
  std::string master_ip;
  double backoff = 0.1;
  while ((master_ip = resolve_ipv4(world.master_addr)).empty()) {
    if (std::chrono::steady_clock::now() + std::chrono::duration<double>(backoff) > deadline) {
      throw core::Error(core::ErrorKind::kRetryable,
                        "rendezvous: MASTER_ADDR '" + world.master_addr +
                            "' did not resolve within " +
                            std::to_string(rendezvous_timeout.count() / 1000) + " s (" + who + ")");
    }
    core::log::info("dist", "waiting for the master address to resolve",
                    {{"master_addr", world.master_addr}, {"retry_in_s", backoff}});
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
    backoff = std::min(backoff * 2, 5.0);
  }

  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<uint16_t>(world.master_port);
    opts.isServer = world.rank == 0;
    opts.numWorkers = static_cast<size_t>(world.world_size);
    opts.waitWorkers = true;
    opts.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    impl_->store = c10::make_intrusive<c10d::TCPStore>(master_ip, opts);
    impl_->store->setTimeout(timeout);
    impl_->master_ip = master_ip;
  } catch (const std::exception& e) {
    rethrow("rendezvous with the master at " + where + " (" + who + ")", e);
  }
  try {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      impl_->local_address = std::string("interface ") + ifname;
      core::log::info("dist", "gloo uses GLOO_SOCKET_IFNAME", {{"interface", ifname}});
    } else {
      impl_->local_address = route_source(master_ip, world.master_port);
      if (impl_->local_address.empty()) impl_->local_address = master_ip;
      opts->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(impl_->local_address));
      core::log::info("dist", "gloo interface chosen by route to the master",
                      {{"address", impl_->local_address},
                       {"interface", interface_of(impl_->local_address)},
                       {"master", where}});
    }
    opts->threads = 2;
    impl_->device = opts->devices.front();
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(
        impl_->store, static_cast<int>(world.rank), static_cast<int>(world.world_size), opts);
  } catch (const std::exception& e) {
    rethrow("creating the Gloo process group via " + where + " (" + who + ")", e);
  }
  impl_->store->set("ddpipe/addr/" + std::to_string(world.rank), Impl::bytes(impl_->local_address));
  impl_->store->set("ddpipe/hb/" + std::to_string(world.rank),
                    Impl::bytes(std::to_string(Impl::now_ms())));
  impl_->heartbeat = std::thread([impl = impl_.get()] { impl->heartbeat_loop(); });
  core::log::info("dist", "process group ready",
                  {{"world_size", world.world_size}, {"master", where}, {"backend", "gloo"}});
}

const std::string& Communicator::local_address() const { return impl_->local_address; }

void Communicator::abort(const std::string& reason) noexcept {
  if (world_.world_size == 1 || !impl_->store) return;
  try {
    impl_->store->set("ddpipe/abort",
                      Impl::bytes("rank " + std::to_string(world_.rank) + ": " + reason));
  } catch (...) {
  }
}

void Communicator::stop_heartbeat() noexcept { impl_->stop_heartbeat(); }

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

namespace {

// Gloo's reduce function for 16-bit floats: out = a + b in fp32, rounded to nearest even, on
// ATen's vectorised kernels. ATen adds bf16 vectorised; its float16 add is a scalar loop, 2.5×
// slower here than widening both to fp32, adding and narrowing the sum.
template <c10::ScalarType kType>
void sum_16bit(void* out, const void* a, const void* b, size_t n) {
  const auto opts = torch::TensorOptions().dtype(kType);
  const auto len = static_cast<int64_t>(n);
  auto o = torch::from_blob(out, {len}, opts);
  auto x = torch::from_blob(const_cast<void*>(a), {len}, opts);
  auto y = torch::from_blob(const_cast<void*>(b), {len}, opts);
  if constexpr (kType == torch::kBFloat16) {
    at::add_out(o, x, y);
  } else {
    o.copy_(x.to(torch::kFloat).add_(y.to(torch::kFloat)));
  }
}

}  // namespace

void Communicator::allreduce_sum_16bit(torch::Tensor& t) {
  if (world_.world_size == 1 || t.numel() == 0) return;
  const bool bf16 = t.scalar_type() == torch::kBFloat16;
  if ((!bf16 && t.scalar_type() != torch::kHalf) || !t.is_contiguous()) {
    core::fail_usage("allreduce_sum_16bit takes a contiguous bfloat16 or float16 tensor");
  }
  try {
    if (!impl_->ctx16) {
      auto ctx = std::make_shared<gloo::rendezvous::Context>(static_cast<int>(world_.rank),
                                                             static_cast<int>(world_.world_size));
      ctx->setTimeout(impl_->timeout);
      c10d::ProcessGroupGloo::GlooStore store(
          c10::make_intrusive<c10d::PrefixStore>("ddpipe/16bit", impl_->store));
      ctx->connectFullMesh(store, impl_->device);
      impl_->ctx16 = std::move(ctx);
    }
    gloo::AllreduceOptions opts(impl_->ctx16);
    opts.setOutput(static_cast<uint16_t*>(t.data_ptr()), static_cast<size_t>(t.numel()));
    opts.setReduceFunction(bf16 ? sum_16bit<torch::kBFloat16> : sum_16bit<torch::kHalf>);
    opts.setTimeout(impl_->timeout);
    gloo::allreduce(opts);
  } catch (const std::exception& e) {
    rethrow("16-bit allreduce", e);
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
