#include "runs/tracker.h"

#include <chrono>
#include <exception>
#include <utility>

#include "core/error.h"
#include "core/log.h"

namespace ddpipe::runs {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kComponent[] = "runs";
// finish(): the final write is tried until it succeeds, at most kFinalAttempts times, sleeping
// kFirstBackoffS, then twice as long each time; no attempt starts after kFinalBudgetS.
constexpr int kFinalAttempts = 5;
constexpr double kFirstBackoffS = 0.25;
constexpr double kFinalBudgetS = 10.0;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

void stamp(std::string& iso, double& unix_seconds) {
  unix_seconds = unix_now();
  iso = iso_utc(unix_seconds);
}

}  // namespace

RunTracker::RunTracker(storage::Store& store, RunRecord initial, double heartbeat_s)
    : store_(store), key_(run_key(initial.name, initial.run_id)), heartbeat_s_(heartbeat_s) {
  if (initial.status.empty()) initial.status = kRunning;
  if (!is_stored_status(initial.status)) {
    core::fail_usage("run " + key_ + ": status '" + initial.status +
                     "' is not one a record stores (running, restarting, succeeded, failed)");
  }
  if (initial.started.empty()) stamp(initial.started, initial.started_unix);
  record_ = std::move(initial);
  write(stamp_heartbeat());
  if (heartbeat_s_ > 0) thread_ = std::thread([this] { loop(); });
}

RunTracker::~RunTracker() { stop_thread(); }

void RunTracker::update(const std::function<void(RunRecord&)>& change) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string name = record_.name, run_id = record_.run_id;
  change(record_);
  record_.name = name;
  record_.run_id = run_id;
}

void RunTracker::finish(const std::string& status, std::optional<RunError> error,
                        const std::string& version) {
  if (!is_stored_status(status)) {
    core::fail_usage("run " + key_ + ": finish with status '" + status +
                     "': expected succeeded or failed (or running, restarting)");
  }
  std::lock_guard<std::mutex> finishing(finish_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    record_.status = status;
    record_.error = std::move(error);
    if (!version.empty()) record_.version = version;
    if (is_final_status(status)) record_.finished = iso_utc(unix_now());
  }
  stop_thread();
  const Clock::time_point deadline = Clock::now() + seconds(kFinalBudgetS);
  double backoff_s = kFirstBackoffS;
  for (int attempt = 1; attempt <= kFinalAttempts; ++attempt) {
    if (write(stamp_heartbeat())) return;
    if (attempt == kFinalAttempts || Clock::now() + seconds(backoff_s) >= deadline) break;
    std::this_thread::sleep_for(seconds(backoff_s));
    backoff_s *= 2;
  }
  core::log::error(kComponent,
                   "gave up writing the final status of the run: `ddpipe runs show` keeps the "
                   "last status written (a running one is shown as lost)",
                   {{"key", key_}, {"status", status}, {"store", store_.url()}});
}

RunRecord RunTracker::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return record_;
}

void RunTracker::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  Clock::time_point next = Clock::now() + seconds(heartbeat_s_);
  while (!wake_.wait_until(lock, next, [this] { return stop_; })) {
    lock.unlock();
    next = Clock::now() + seconds(heartbeat_s_);
    write(stamp_heartbeat());
    lock.lock();
  }
}

RunRecord RunTracker::stamp_heartbeat() {
  std::lock_guard<std::mutex> lock(mu_);
  stamp(record_.heartbeat, record_.heartbeat_unix);
  return record_;
}

bool RunTracker::write(const RunRecord& record) {
  std::lock_guard<std::mutex> lock(write_mu_);
  try {
    store_.put(key_, record.to_json().dump(2));
  } catch (const std::exception& e) {
    ++failed_writes_;
    if (!failing_) {
      failing_ = true;
      core::log::warn(kComponent,
                      "cannot write the run record; training goes on and the write is retried "
                      "every heartbeat (this warning is not repeated until a write succeeds)",
                      {{"key", key_}, {"store", store_.url()}, {"error", e.what()}});
    }
    return false;
  }
  if (failing_) {
    core::log::info(kComponent, "the run record is written again",
                    {{"key", key_}, {"failed_writes", failed_writes_}});
    failing_ = false;
    failed_writes_ = 0;
  }
  return true;
}

void RunTracker::stop_thread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ddpipe::runs
