#include "serve/model_host.h"

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "registry/registry.h"

namespace ddpipe::serve {

ModelHost::ModelHost(storage::Store& store, std::string model, std::string ref)
    : store_(store), model_(std::move(model)), ref_(std::move(ref)) {}

ModelHost::~ModelHost() { stop(); }

bool ModelHost::refresh() {
  std::lock_guard<std::mutex> one_at_a_time(refresh_mu_);
  std::string version;
  try {
    registry::Registry reg(store_);
    version = reg.resolve(model_, ref_);
    std::string previous;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (current_ && current_->version == version) return false;
      if (version == failed_version_) return false;  // wait for the alias to move on
      if (current_) previous = current_->version;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto loaded = std::make_shared<eval::LoadedModel>(eval::load_model(store_, model_, version));
    // One forward pass now, so that the first requests do not pay for oneDNN's set-up.
    std::vector<float> zeros(
        static_cast<size_t>(loaded->channels * loaded->height * loaded->width));
    eval::classify(*loaded, zeros.data(), 1);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = std::move(loaded);
      error_.clear();
      failed_version_.clear();
      ++loads_;
    }
    core::log::info("serve", previous.empty() ? "model loaded" : "model version switched",
                    {{"model", model_},
                     {"version", version},
                     {"previous", previous},
                     {"load_seconds", seconds}});
    return true;
  } catch (const std::exception& e) {
    const auto* err = dynamic_cast<const core::Error*>(&e);
    const bool transient = err && (err->kind() == core::ErrorKind::kStorage ||
                                   err->kind() == core::ErrorKind::kRetryable);
    bool repeated;
    {
      std::lock_guard<std::mutex> lock(mu_);
      repeated = error_ == e.what();
      error_ = e.what();
      ++load_failures_;
      if (!version.empty() && !transient) failed_version_ = version;
    }
    if (!repeated) {
      core::log::error(
          "serve", "cannot load model",
          {{"model", model_}, {"ref", ref_}, {"version", version}, {"error", e.what()}});
    }
    return false;
  }
}

void ModelHost::watch(double poll_s) {
  thread_ = std::thread([this, poll_s] {
    refresh();
    if (poll_s <= 0) return;
    std::unique_lock<std::mutex> lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, std::chrono::duration<double>(poll_s),
                              [&] { return stopping_; })) {
      lock.unlock();
      refresh();
      lock.lock();
    }
  });
}

void ModelHost::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ModelPtr ModelHost::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

ModelStatus ModelHost::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {current_ != nullptr, current_ ? current_->version : "", error_, loads_, load_failures_};
}

}  // namespace ddpipe::serve
