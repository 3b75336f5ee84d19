#include "data/loader.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace ddpipe::data {

struct BatchLoader::Impl {
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };

  Impl(const Dataset* d, const Split* s, SampleSource* src, std::vector<int64_t> idx, Augment aug,
       LoaderOptions o)
      : dataset(d),
        split(s),
        source(src),
        indices(std::move(idx)),
        augment(std::move(aug)),
        opt(o) {}

  const Dataset* dataset;  // in memory; or
  const Split* split;
  SampleSource* source;  // streamed

  const std::vector<int64_t> indices;
  const Augment augment;
  const LoaderOptions opt;
  int64_t batches = 0;
  std::vector<int64_t> starts;  // batch b is indices[starts[b], starts[b + 1])
  int64_t delivered = 0;        // batches returned by next(); only the consumer touches it
  double wait_seconds = 0;      // consumer only
  std::exception_ptr failed;    // consumer only: rethrown by every next() after a failure

  std::mutex mu;
  std::condition_variable work_cv;   // workers: a slot in the window, or stop
  std::condition_variable ready_cv;  // consumer: a batch arrived
  std::map<int64_t, Slot> ready;     // built batches not yet delivered
  int64_t next_claim = 0;            // the next batch a worker builds
  int64_t window_end = 0;            // workers build batches < window_end (delivered + prefetch)
  bool stop = false;
  std::vector<std::thread> threads;

  Batch build(int64_t b) const {
    const int64_t start = starts[static_cast<size_t>(b)];
    const int64_t count = starts[static_cast<size_t>(b) + 1] - start;
    const int64_t c = source ? source->channels() : dataset->channels;
    const int64_t h = source ? source->height() : dataset->height;
    const int64_t w = source ? source->width() : dataset->width;
    const int64_t chw = c * h * w;
    torch::Tensor images = torch::empty({count, c, h, w}, torch::kFloat32);
    torch::Tensor labels = torch::empty({count}, torch::kInt64);
    float* out = images.data_ptr<float>();
    int64_t* lab = labels.data_ptr<int64_t>();
    int64_t kept = 0;  // samples in the batch: all but those the source left out
    for (int64_t i = 0; i < count; ++i) {
      const int64_t index = indices[static_cast<size_t>(start + i)];
      if (source) {
        const int64_t label = source->produce(start + i, index, out + kept * chw);
        if (label != SampleSource::kLeftOut) lab[kept++] = label;
        continue;
      }
      transform_image(*dataset, *split, index, augment, opt.train, opt.seed, opt.epoch,
                      out + i * chw);
      lab[kept++] = split->labels[static_cast<size_t>(index)];
    }
    if (kept < count) {
      if (kept == 0) {
        core::fail_data("batch " + std::to_string(b) + ": every one of its " +
                        std::to_string(count) +
                        " samples was left out as a bad image (data.bad_images=skip): nothing "
                        "to train on at this step");
      }
      images = images.narrow(0, 0, kept);
      labels = labels.narrow(0, 0, kept);
    }
    if (opt.channels_last) images = images.contiguous(at::MemoryFormat::ChannelsLast);
    return {std::move(images), std::move(labels)};
  }

  void work() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work_cv.wait(lock, [&] { return stop || next_claim >= batches || next_claim < window_end; });
      if (stop || next_claim >= batches) return;
      const int64_t b = next_claim++;
      lock.unlock();
      Slot slot;
      try {
        slot.batch = build(b);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      ready.emplace(b, std::move(slot));
      ready_cv.notify_one();
    }
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    work_cv.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  }
};

namespace {

// Where each batch begins in the indices, and where the last one ends.
std::vector<int64_t> batch_starts(const LoaderOptions& options, int64_t n) {
  std::vector<int64_t> starts{0};
  if (options.batch_sizes.empty()) {
    const int64_t whole = n / options.batch_size;
    for (int64_t b = 1; b <= whole; ++b) starts.push_back(b * options.batch_size);
    if (!options.drop_last && n % options.batch_size != 0) starts.push_back(n);
    return starts;
  }
  for (int64_t size : options.batch_sizes) {
    if (size <= 0) core::fail_usage("batch loader: batch sizes must be positive");
    starts.push_back(starts.back() + size);
  }
  if (starts.back() != n) {
    core::fail_usage("batch loader: the batch sizes add up to " + std::to_string(starts.back()) +
                     ", not to the " + std::to_string(n) + " indices");
  }
  return starts;
}

}  // namespace

namespace {

void check_options(const LoaderOptions& options) {
  if (options.batch_size <= 0 || options.workers < 0 || options.prefetch <= 0) {
    core::fail_usage("batch loader: batch_size (" + std::to_string(options.batch_size) +
                     ") and prefetch (" + std::to_string(options.prefetch) +
                     ") must be positive, workers (" + std::to_string(options.workers) +
                     ") at least 0");
  }
}

void check_indices(const std::vector<int64_t>& indices, int64_t size) {
  for (int64_t index : indices) {
    if (index < 0 || index >= size) {
      core::fail_usage("batch loader: index " + std::to_string(index) + " is out of range (" +
                       std::to_string(size) + " images)");
    }
  }
}

}  // namespace

BatchLoader::BatchLoader(const Dataset& dataset, const Split& split, std::vector<int64_t> indices,
                         Augment augment, LoaderOptions options) {
  check_options(options);
  check_indices(indices, split.size());
  impl_ = std::make_unique<Impl>(&dataset, &split, nullptr, std::move(indices), std::move(augment),
                                 options);
  start();
}

BatchLoader::BatchLoader(SampleSource& source, std::vector<int64_t> indices,
                         LoaderOptions options) {
  check_options(options);
  check_indices(indices, source.size());
  impl_ = std::make_unique<Impl>(nullptr, nullptr, &source, std::move(indices), Augment{}, options);
  start();
}

void BatchLoader::start() {
  const LoaderOptions& options = impl_->opt;
  impl_->starts = batch_starts(options, static_cast<int64_t>(impl_->indices.size()));
  impl_->batches = static_cast<int64_t>(impl_->starts.size()) - 1;
  impl_->window_end = options.prefetch;
  const int64_t threads = std::min(options.workers, impl_->batches);
  try {
    for (int64_t t = 0; t < threads; ++t) impl_->threads.emplace_back([this] { impl_->work(); });
  } catch (...) {
    impl_->shutdown();
    throw;
  }
}

BatchLoader::~BatchLoader() { impl_->shutdown(); }

std::optional<Batch> BatchLoader::next() {
  Impl& m = *impl_;
  if (m.failed) std::rethrow_exception(m.failed);
  if (m.delivered >= m.batches) return std::nullopt;
  const auto t0 = std::chrono::steady_clock::now();
  auto waited = [&] {
    m.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if (m.threads.empty()) {  // workers = 0: build on the caller's thread
    try {
      Batch b = m.build(m.delivered++);
      waited();
      return b;
    } catch (...) {
      m.failed = std::current_exception();
      throw;
    }
  }
  Impl::Slot slot;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    m.ready_cv.wait(lock, [&] { return m.ready.count(m.delivered) > 0; });
    auto it = m.ready.find(m.delivered);
    slot = std::move(it->second);
    m.ready.erase(it);
    ++m.delivered;
    m.window_end = m.delivered + m.opt.prefetch;
  }
  waited();
  m.work_cv.notify_all();
  if (slot.error) {
    m.failed = slot.error;
    m.shutdown();
    std::rethrow_exception(slot.error);
  }
  return std::move(slot.batch);
}

int64_t BatchLoader::num_batches() const { return impl_->batches; }

double BatchLoader::wait_seconds() const { return impl_->wait_seconds; }

}  // namespace ddpipe::data
