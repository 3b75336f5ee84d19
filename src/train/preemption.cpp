#include "train/preemption.h"

#include <signal.h>
#include <time.h>

#include <atomic>

#include <torch/torch.h>

#include "core/error.h"
#include "dist/communicator.h"

namespace ddpipe::train {
namespace {

std::atomic<int64_t> g_signal_ns{0};  // CLOCK_MONOTONIC of the SIGTERM; 0 = none
std::atomic<int> g_installed{0};
struct sigaction g_previous {};

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void on_sigterm(int) {
  int64_t none = 0;
  g_signal_ns.compare_exchange_strong(none, monotonic_ns());
}

}  // namespace

PreemptionSignal::PreemptionSignal() {
  if (g_installed.fetch_add(1) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &sa, &g_previous) != 0) core::fail_system("sigaction(SIGTERM)");
}

PreemptionSignal::~PreemptionSignal() {
  if (g_installed.fetch_sub(1) == 1) sigaction(SIGTERM, &g_previous, nullptr);
}

bool PreemptionSignal::requested() { return g_signal_ns.load() != 0; }

double PreemptionSignal::seconds_since() {
  const int64_t at = g_signal_ns.load();
  return at == 0 ? 0.0 : static_cast<double>(monotonic_ns() - at) / 1e9;
}

void PreemptionSignal::set_for_test(bool requested) {
  if (requested) {
    on_sigterm(SIGTERM);
  } else {
    g_signal_ns = 0;
  }
}

struct StopVote::Round {
  std::unique_ptr<dist::Communicator::Pending> pending;
};

StopVote::StopVote(dist::Communicator& comm)
    : comm_(comm), ballot_(torch::zeros({1}, torch::kFloat)) {}

StopVote::~StopVote() = default;

bool StopVote::finish() {
  if (!round_) return false;
  round_->pending->wait();
  round_.reset();
  return ballot_.item<float>() > 0.0f;
}

bool StopVote::after_step() {
  const bool stop = finish();
  if (stop) return true;
  ballot_.fill_(PreemptionSignal::requested() ? 1.0f : 0.0f);
  round_ = std::make_unique<Round>(Round{comm_.allreduce_sum_async(ballot_)});
  return false;
}

bool StopVote::drain() { return finish(); }

}  // namespace ddpipe::train
