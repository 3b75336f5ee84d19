// ddpipe::runs — RunTracker: rank 0's writer of its run record (runs/<name>/<run_id>.json).
//
// Writing the record must never slow training nor fail the job: update() only changes an
// in-memory record under a mutex, and a background thread writes it; a store that is slow or
// down delays the record, never the caller, and is logged (core::log, component "runs") as one
// warning when writes start failing and one info when they succeed again — not once per attempt.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "runs/run_record.h"
#include "storage/store.h"

namespace ddpipe::runs {

class RunTracker {
 public:
  // Starts tracking `initial` (name and run_id set; they are fixed from here on). Sets status to
  // kRunning when empty, started to now when empty, heartbeat to now, and writes the record once
  // before returning; a failed write is logged, not thrown. Then, with heartbeat_s > 0, a
  // background thread writes the latest record with a fresh heartbeat every heartbeat_s seconds
  // (so a change appears within one heartbeat_s, and a record whose heartbeat stops advancing is
  // shown as lost); with heartbeat_s <= 0 nothing is written between here and finish().
  // Throws core::Error(kUsage) for an invalid name or run id or a status that is not stored.
  // `store` must outlive the tracker.
  RunTracker(storage::Store& store, RunRecord initial, double heartbeat_s);
  // Stops the thread (waiting for a write in progress) without writing a final status: the
  // record keeps its last status and, if it was running, is shown as lost once stale.
  ~RunTracker();
  RunTracker(const RunTracker&) = delete;
  RunTracker& operator=(const RunTracker&) = delete;

  // Applies `change` to the record under the tracker's mutex and returns: the write happens on
  // the thread. Never waits for the store. Changes to name and run_id are undone; the heartbeat
  // is the tracker's. After finish() a change is applied but no longer written. An exception
  // thrown by `change` reaches the caller.
  void update(const std::function<void(RunRecord&)>& change);

  // Ends the run: sets status (usually kSucceeded or kFailed; any stored status is accepted),
  // error, version when not empty, and finished (for a final status), stops the thread and
  // writes the record, retrying a failed write with backoff for at most ~10 s (plus a
  // background write that was in progress). Gives up with a logged error, never throws for the
  // store. Throws core::Error(kUsage), before changing anything, for a status that is not
  // stored. Idempotent: calls after the first (or concurrent with it, which wait for it) do
  // nothing.
  void finish(const std::string& status, std::optional<RunError> error = std::nullopt,
              const std::string& version = "");

  // A copy of the record as it is now (including changes not yet written).
  RunRecord snapshot() const;
  // The record's store key.
  const std::string& key() const { return key_; }

 private:
  void loop();
  // The record with a fresh heartbeat, taken under mu_.
  RunRecord stamp_heartbeat();
  // One put of `record`; logs when an outage starts or ends. Returns whether it succeeded.
  bool write(const RunRecord& record);
  void stop_thread();

  storage::Store& store_;
  const std::string key_;
  const double heartbeat_s_;

  mutable std::mutex mu_;  // guards record_, stop_, finished_
  std::condition_variable wake_;
  RunRecord record_;
  bool stop_ = false;
  bool finished_ = false;

  std::mutex finish_mu_;  // one finish() at a time
  std::mutex write_mu_;   // one put at a time; guards failing_, failed_writes_
  bool failing_ = false;
  int64_t failed_writes_ = 0;

  std::thread thread_;  // last: started once everything above is initialized
};

}  // namespace ddpipe::runs
