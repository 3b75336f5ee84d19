#include "serve/batcher.h"

#include "core/error.h"

namespace ddpipe::serve {

Batcher::Batcher(BatcherOptions options, std::function<void(int64_t)> on_batch)
    : options_(options), on_batch_(std::move(on_batch)), thread_([this] { loop(); }) {}

Batcher::~Batcher() { stop(); }

std::future<Batcher::Result> Batcher::submit(ModelPtr model, std::vector<float> inputs, int64_t n) {
  const int64_t per_input = model->channels * model->height * model->width;
  if (n <= 0 || static_cast<int64_t>(inputs.size()) != n * per_input) {
    core::fail_usage("batcher: expected " + std::to_string(n) + " inputs of " +
                     std::to_string(per_input) + " floats, got " + std::to_string(inputs.size()) +
                     " floats");
  }
  Job job{std::move(model), std::move(inputs), n, {}, Clock::now()};
  std::future<Result> result = job.done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw core::Error(core::ErrorKind::kRetryable, "the server is shutting down");
    if (queued_ + n > options_.max_queue) {
      throw core::Error(core::ErrorKind::kRetryable,
                        "server overloaded: " + std::to_string(queued_) +
                            " inputs are waiting (serve.max_queue = " +
                            std::to_string(options_.max_queue) + "); retry later");
    }
    queued_ += n;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return result;
}

int64_t Batcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_;
}

void Batcher::hurry() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    hurry_ = true;
  }
  cv_.notify_all();
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = hurry_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Batcher::loop() {
  const auto max_delay = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(options_.max_delay_ms));
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything has run
    cv_.wait_until(lock, queue_.front().queued + max_delay,
                   [&] { return hurry_ || queued_ >= options_.max_batch; });
    const ModelPtr model = queue_.front().model;
    std::vector<Job> jobs;
    int64_t n = 0;
    while (!queue_.empty() && queue_.front().model == model &&
           (jobs.empty() || n + queue_.front().n <= options_.max_batch)) {
      n += queue_.front().n;
      jobs.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_ -= n;
    lock.unlock();
    run(*model, jobs, n);
    lock.lock();
  }
}

void Batcher::run(const eval::LoadedModel& model, std::vector<Job>& jobs, int64_t n) {
  try {
    std::vector<float> joined;
    const float* inputs = jobs.front().inputs.data();
    if (jobs.size() > 1) {
      joined.reserve(static_cast<size_t>(n) * jobs.front().inputs.size() / jobs.front().n);
      for (const Job& j : jobs) joined.insert(joined.end(), j.inputs.begin(), j.inputs.end());
      inputs = joined.data();
    }
    std::vector<eval::Prediction> predictions = eval::classify(model, inputs, n);
    if (on_batch_) on_batch_(n);
    auto next = std::make_move_iterator(predictions.begin());
    for (Job& j : jobs) {
      j.done.set_value(Result(next, next + j.n));
      next += j.n;
    }
  } catch (...) {
    for (Job& j : jobs) {
      try {
        j.done.set_exception(std::current_exception());
      } catch (const std::future_error&) {  // this job already has its value
      }
    }
  }
}

}  // namespace ddpipe::serve
