// ddpipe::train — preemption without lost work.
//
// A cluster takes a node away by sending SIGTERM to its pods (eviction, a node drain, Kueue
// suspending the job, a spot instance reclaimed) and SIGKILL after the pod's grace period; a
// local launcher passes a SIGTERM it gets on to its ranks. SIGTERM to any rank asks the whole
// job to stop: the ranks agree on one step boundary (StopVote), rank 0 checkpoints there and
// waits until the checkpoint is in the store, at most until checkpoint.preempt_grace_s after
// the signal (past that it stays on local disk and the restarted job uploads it first), and
// every rank exits 143 (core::ErrorKind::kPreempted: 128 + SIGTERM, retryable, and a code a
// cluster's failure policy can tell from a crash's). A restarted job resumes at that step: no
// completed step is lost, and with `deterministic: true` the final weights equal an
// uninterrupted run's.
#pragma once

#include <memory>
#include <string>

#include <torch/types.h>

#include "core/error.h"

namespace ddpipe::dist {
class Communicator;
}

namespace ddpipe::train {

// What every rank throws once the job stopped for a preemption (kind kPreempted: exit 143).
class Preempted : public core::Error {
 public:
  explicit Preempted(const std::string& message)
      : core::Error(core::ErrorKind::kPreempted, message) {}
};

// SIGTERM, seen by this process: installed by the first PreemptionSignal and restored when it
// goes away. The handler only records the time; nothing else runs in the signal.
class PreemptionSignal {
 public:
  PreemptionSignal();
  ~PreemptionSignal();
  PreemptionSignal(const PreemptionSignal&) = delete;
  PreemptionSignal& operator=(const PreemptionSignal&) = delete;

  static bool requested();
  // Seconds since the signal came (0 when none came).
  static double seconds_since();
  // Test support: what the handler does (true), or forget it (false).
  static void set_for_test(bool requested);
};

// The ranks' agreement on where to stop. After each optimizer step every rank starts a one-number
// allreduce of "I got SIGTERM" and finishes the one it started the step before: the vote never
// waits for the network, and every rank reads the same sum after the same step, so all stop at
// the same boundary — at most one step after the signal reached any rank.
class StopVote {
 public:
  explicit StopVote(dist::Communicator& comm);
  ~StopVote();
  // After an optimizer step: true when the previous round says some rank was asked to stop.
  bool after_step();
  // At the end of an epoch's steps: finishes the round in flight; true = stop.
  bool drain();

 private:
  bool finish();
  dist::Communicator& comm_;
  torch::Tensor ballot_;
  struct Round;
  std::unique_ptr<Round> round_;
};

}  // namespace ddpipe::train
