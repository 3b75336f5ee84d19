#include "train/preemption.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "dist/communicator.h"

namespace ddpipe::train {
namespace {

// A real SIGTERM is recorded, not fatal, while a PreemptionSignal lives.
TEST(Preemption, SigtermIsRecordedWhileWatched) {
  const PreemptionSignal watch;
  PreemptionSignal::set_for_test(false);
  EXPECT_FALSE(PreemptionSignal::requested());
  EXPECT_EQ(PreemptionSignal::seconds_since(), 0.0);
  ASSERT_EQ(raise(SIGTERM), 0);
  EXPECT_TRUE(PreemptionSignal::requested());
  EXPECT_GE(PreemptionSignal::seconds_since(), 0.0);
  EXPECT_LT(PreemptionSignal::seconds_since(), 60.0);
}

// The vote of a round is read one optimizer step later (it overlaps that step), and a drain at
// the end of an epoch reads the round in flight. One rank: the sum is its own ballot.
TEST(Preemption, VoteStopsOneStepAfterTheSignal) {
  dist::WorldInfo world;  // rank 0 of 1: no network
  dist::Communicator comm(world, std::chrono::seconds(5));
  StopVote vote(comm);
  PreemptionSignal::set_for_test(false);
  EXPECT_FALSE(vote.after_step());
  EXPECT_FALSE(vote.drain());
  PreemptionSignal::set_for_test(true);
  EXPECT_FALSE(vote.after_step());  // starts the round that carries the request
  EXPECT_TRUE(vote.after_step());   // … and reads it
  EXPECT_FALSE(vote.drain());       // nothing in flight
  EXPECT_FALSE(vote.after_step());
  EXPECT_TRUE(vote.drain());
}

}  // namespace
}  // namespace ddpipe::train
