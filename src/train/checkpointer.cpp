#include "train/checkpointer.h"

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
  std::string last_error;
  std::thread worker;

  Impl(registry::Registry& r, std::string m, std::filesystem::path dir, double g)
      : registry(r), model(std::move(m)), local_dir(std::move(dir)), grace_s(g) {
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
      try {
        task.upload();
      } catch (const std::exception& e) {
        error = e.what();
      }
      lock.lock();
      busy = false;
      if (error.empty()) {
        queue.pop_front();
        if (failing_since) {
          core::log::info("checkpoint", "store reachable again; upload done", {{"what", task.what}});
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
                           std::filesystem::path local_dir, double grace_s)
    : impl_(std::make_unique<Impl>(registry, std::move(model), std::move(local_dir), grace_s)) {}

Checkpointer::~Checkpointer() = default;

void Checkpointer::save(const registry::CheckpointRef& where, registry::Files files,
                        nlohmann::json state) {
  // The local copy first: it survives a store outage and a crash of this process.
  std::filesystem::path dir = impl_->local_dir / where.id();
  for (const auto& [name, bytes] : files) core::write_file_atomic(dir / name, bytes);
  core::write_file_atomic(dir / "state.json", state.dump(2));
  // Only the newest local checkpoint is kept.
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(impl_->local_dir, ec)) {
    if (e.path() != dir) std::filesystem::remove_all(e.path(), ec);
  }
  Impl* impl = impl_.get();
  submit("checkpoint " + where.id(), [impl, where, files = std::move(files), state = std::move(state)] {
    impl->registry.save_checkpoint(impl->model, where, files, state);
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

}  // namespace ddpipe::train
