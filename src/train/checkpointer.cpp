#include "train/checkpointer.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

namespace ddpipe::train {

using Clock = std::chrono::steady_clock;

struct Checkpointer::Impl {
  registry::Registry& registry;
  std::string model;
  std::filesystem::path local_dir;
  double grace_s;
  UploadObserver observer;

  struct Task {
    std::string what;
    std::function<void()> upload;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> queue;
  bool busy = false;
  bool stop = false;
  std::optional<Clock::time_point> failing_since;
  std::vector<std::filesystem::path> local_checkpoints;  // written by this process, oldest first
  std::string last_error;
  std::thread worker;

  Impl(registry::Registry& r, std::string m, std::filesystem::path dir, double g, UploadObserver o)
      : registry(r),
        model(std::move(m)),
        local_dir(std::move(dir)),
        grace_s(g),
        observer(std::move(o)) {
    worker = std::thread([this] { run(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    worker.join();
  }

  void run() {
    double backoff = 0.5;
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stop || !queue.empty(); });
      if (stop) return;
      Task task = queue.front();
      busy = true;
      lock.unlock();
      std::string error;
      const auto t0 = Clock::now();
      try {
        task.upload();
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (observer) {
        observer(task.what, std::chrono::duration<double>(Clock::now() - t0).count(),
                 error.empty());
      }
      lock.lock();
      busy = false;
      if (error.empty()) {
        queue.pop_front();
        if (failing_since) {
          core::log::info("checkpoint", "store reachable again; upload done",
                          {{"what", task.what}});
        }
        failing_since.reset();
        backoff = 0.5;
        cv.notify_all();
        continue;
      }
      if (!failing_since) {
        failing_since = Clock::now();
        core::log::warn("checkpoint", "upload failed; training goes on, retrying",
                        {{"what", task.what}, {"error", error}, {"grace_s", grace_s}});
      }
      last_error = error;
      cv.notify_all();
      cv.wait_for(lock, std::chrono::duration<double>(backoff), [&] { return stop; });
      backoff = std::min(backoff * 2, 5.0);
    }
  }

  // Caller holds `mu`.
  void throw_if_past_grace() {
    if (!failing_since) return;
    double away = std::chrono::duration<double>(Clock::now() - *failing_since).count();
    if (away > grace_s) {
      throw core::Error(core::ErrorKind::kRetryable,
                        "the artifact store has been failing for " + std::to_string(int(away)) +
                            " s (checkpoint.storage_grace_s = " + std::to_string(int(grace_s)) +
                            "); last error: " + last_error);
    }
  }
};

Checkpointer::Checkpointer(registry::Registry& registry, std::string model,
                           std::filesystem::path local_dir, double grace_s, UploadObserver observer)
    : impl_(std::make_unique<Impl>(registry, std::move(model), std::move(local_dir), grace_s,
                                   std::move(observer))) {}

Checkpointer::~Checkpointer() = default;

void Checkpointer::save(const registry::CheckpointRef& where, const std::vector<FileWriter>& files,
                        const nlohmann::json& state) {
  // The local copy first: it survives a store outage and a crash of this process.
  const std::filesystem::path dir = impl_->local_dir / where.id();
  for (const auto& [name, produce] : files) core::write_file_atomic(dir / name, produce());
  core::write_file_atomic(dir / "state.json", state.dump(2));
  Impl* impl = impl_.get();
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    // Leftovers of an earlier process are superseded by this one.
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(impl->local_dir, ec)) {
      const auto& known = impl->local_checkpoints;
      if (e.path() != dir && std::find(known.begin(), known.end(), e.path()) == known.end()) {
        std::filesystem::remove_all(e.path(), ec);
      }
    }
    impl->local_checkpoints.push_back(dir);
  }
  submit("checkpoint " + where.id(), [impl, where, dir] {
    impl->registry.upload_checkpoint(impl->model, where, dir);
    // Now in the store: the local copies older than this one are no longer needed.
    std::lock_guard<std::mutex> lock(impl->mu);
    auto& known = impl->local_checkpoints;
    auto it = std::find(known.begin(), known.end(), dir);
    std::error_code ec;
    for (auto old = known.begin(); old != it; ++old) std::filesystem::remove_all(*old, ec);
    known.erase(known.begin(), it);
  });
}

void Checkpointer::submit(const std::string& what, std::function<void()> upload) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->throw_if_past_grace();
  impl_->queue.push_back({what, std::move(upload)});
  impl_->cv.notify_all();
}

void Checkpointer::check() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->throw_if_past_grace();
}

void Checkpointer::flush() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  while (!impl_->queue.empty()) {
    impl_->throw_if_past_grace();
    impl_->cv.wait_for(lock, std::chrono::milliseconds(200));
  }
}

bool Checkpointer::flush_within(double seconds) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::duration<double>(std::max(0.0, seconds)),
                            [&] { return impl_->queue.empty(); });
}

int64_t upload_local_checkpoints(registry::Registry& registry, const std::string& model,
                                 const std::filesystem::path& local_dir,
                                 const std::string& run_id) {
  if (run_id.empty()) return 0;
  std::vector<std::pair<registry::CheckpointRef, std::filesystem::path>> found;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(local_dir, ec)) {
    const auto state_file = e.path() / "state.json";
    if (!std::filesystem::exists(state_file)) continue;  // cut short while it was written
    try {
      const auto state = nlohmann::json::parse(core::read_file(state_file));
      if (state.value("run_id", "") != run_id) continue;
      found.push_back(
          {{state.at("epoch").get<int64_t>(), state.at("step").get<int64_t>()}, e.path()});
    } catch (const std::exception& bad) {
      core::log::warn("checkpoint", "ignoring an unreadable local checkpoint",
                      {{"path", e.path().string()}, {"error", bad.what()}});
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  int64_t uploaded = 0;
  try {
    const auto stored = registry.checkpoints(model);
    for (const auto& [where, dir] : found) {
      const auto same = [&where = where](const registry::CheckpointRef& c) {
        return c.epoch == where.epoch && c.step == where.step;
      };
      if (std::any_of(stored.begin(), stored.end(), same)) continue;
      registry.upload_checkpoint(model, where, dir);
      core::log::info("checkpoint", "uploaded a checkpoint an earlier process left on local disk",
                      {{"checkpoint", where.id()}, {"run_id", run_id}});
      ++uploaded;
    }
  } catch (const core::Error& e) {
    core::log::warn("checkpoint", "could not upload the checkpoints left on local disk",
                    {{"error", e.what()}, {"dir", local_dir.string()}});
  }
  return uploaded;
}

}  // namespace ddpipe::train
