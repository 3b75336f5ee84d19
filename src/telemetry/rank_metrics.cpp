#include "telemetry/rank_metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <exception>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace ddpipe::telemetry {
namespace {

// Steps of a small model on a fast node (1 ms) up to a ResNet-50 batch on a slow CPU (60 s).
const prometheus::Histogram::BucketBoundaries kStepBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
// A local file (0.1 s) up to a slow S3 multipart upload of a large model (10 min).
const prometheus::Histogram::BucketBoundaries kUploadBuckets = {0.1, 0.25, 0.5, 1,   2.5, 5,
                                                                10,  30,   60,  120, 300, 600};

prometheus::Labels label_set(const RankLabels& l) {
  return {{"model", l.model}, {"rank", l.rank}, {"local_rank", l.local_rank}};
}

// ddpipe_process_resident_memory_bytes, read from /proc/self/statm when scraped.
class ResidentMemory : public prometheus::Collectable {
 public:
  explicit ResidentMemory(const prometheus::Labels& labels) {
    for (const auto& [name, value] : labels) labels_.push_back({name, value});
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    long long pages = 0, resident = 0;
    std::ifstream statm("/proc/self/statm");
    if (!(statm >> pages >> resident)) return {};
    prometheus::ClientMetric m;
    m.label = labels_;
    m.gauge.value = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
    return {{"ddpipe_process_resident_memory_bytes",
             "Resident memory of this process (bytes).",
             prometheus::MetricType::Gauge,
             {m}}};
  }

 private:
  std::vector<prometheus::ClientMetric::Label> labels_;
};

// "0.0.0.0:9400", "[::]:9400": civetweb's listening_ports syntax.
std::string listen_address(const std::string& bind_address, int port) {
  const std::string host = bind_address.empty() ? "0.0.0.0" : bind_address;
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

// The registry of the families, each with one metric (the rank's labels are the families'
// constant labels). prometheus-cpp's counters, gauges and histograms are thread-safe.
struct RankMetrics::Impl {
  explicit Impl(const prometheus::Labels& labels);

  prometheus::Counter& counter(const std::string& name, const std::string& help) {
    return prometheus::BuildCounter().Name(name).Help(help).Labels(labels).Register(*registry).Add(
        {});
  }
  prometheus::Gauge& gauge(const std::string& name, const std::string& help) {
    return prometheus::BuildGauge().Name(name).Help(help).Labels(labels).Register(*registry).Add(
        {});
  }
  prometheus::Histogram& histogram(const std::string& name, const std::string& help,
                                   const prometheus::Histogram::BucketBoundaries& buckets) {
    return prometheus::BuildHistogram()
        .Name(name)
        .Help(help)
        .Labels(labels)
        .Register(*registry)
        .Add({}, buckets);
  }

  const prometheus::Labels labels;
  const std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  const std::shared_ptr<ResidentMemory> memory = std::make_shared<ResidentMemory>(labels);
  prometheus::Histogram& step_seconds;
  prometheus::Counter &steps, &images;
  prometheus::Gauge &images_per_second, &loss, &epoch, &step, &epoch_steps;
  prometheus::Counter &data_wait, &comm_exposed, &comm;
  prometheus::Histogram& upload_seconds;
  prometheus::Counter& upload_failures;
  prometheus::Gauge& restarts;
  int port = 0;
  std::unique_ptr<prometheus::Exposer> exposer;  // last: its threads stop before the rest goes
};

RankMetrics::Impl::Impl(const prometheus::Labels& l)
    : labels(l),
      step_seconds(
          histogram("ddpipe_train_step_seconds", "Duration of one training step.", kStepBuckets)),
      steps(counter("ddpipe_train_steps_total", "Training steps done by this rank.")),
      images(counter("ddpipe_train_images_total", "Images trained on by this rank.")),
      images_per_second(gauge("ddpipe_train_images_per_second",
                              "Training throughput of the job (all ranks), images per second.")),
      loss(gauge("ddpipe_train_loss", "Training loss over the last progress window.")),
      epoch(gauge("ddpipe_train_epoch", "Current epoch (1-based).")),
      step(gauge("ddpipe_train_step", "Steps done in the current epoch.")),
      epoch_steps(gauge("ddpipe_train_epoch_steps", "Steps of one epoch.")),
      data_wait(counter("ddpipe_train_data_wait_seconds_total",
                        "Time the training loop waited for the next batch.")),
      comm_exposed(counter("ddpipe_train_comm_exposed_seconds_total",
                           "Gradient allreduce time not hidden behind backward.")),
      comm(counter("ddpipe_train_comm_seconds_total", "Gradient allreduce time in all.")),
      upload_seconds(histogram("ddpipe_train_checkpoint_upload_seconds",
                               "Duration of checkpoint uploads, failed ones included.",
                               kUploadBuckets)),
      upload_failures(counter("ddpipe_train_checkpoint_upload_failures_total",
                              "Checkpoint uploads that failed.")),
      restarts(gauge("ddpipe_train_restarts", "Restarts of the training job so far.")) {}

RankMetrics::RankMetrics(int port, RankLabels labels, std::string bind_address) {
  if (port < 0 || port > 65535) {
    core::fail_usage("metrics.port: expected 0 (off) or a TCP port 1-65535, got " +
                     std::to_string(port));
  }
  if (port == 0) return;
  auto impl = std::make_unique<Impl>(label_set(labels));
  const std::string address = listen_address(bind_address, port);
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(address, 2);
    impl->exposer->RegisterCollectable(impl->registry);
    impl->exposer->RegisterCollectable(impl->memory);
    impl->port = port;
  } catch (const std::exception& e) {
    core::log::warn("telemetry",
                    "cannot serve /metrics on " + address +
                        "; training goes on without metrics (set metrics.port to a free port, "
                        "or 0 to turn them off)",
                    {{"port", port}, {"config_key", "metrics.port"}, {"error", e.what()}});
    return;
  }
  impl_ = std::move(impl);
}

RankMetrics::~RankMetrics() = default;

int RankMetrics::port() const { return impl_ ? impl_->port : 0; }

void RankMetrics::observe_step(double seconds, double images) {
  if (!impl_) return;
  impl_->step_seconds.Observe(seconds);
  impl_->steps.Increment();
  impl_->images.Increment(images);
}

void RankMetrics::set_progress(int64_t epoch, int64_t step, int64_t steps, double loss,
                               double images_per_second) {
  if (!impl_) return;
  impl_->epoch.Set(static_cast<double>(epoch));
  impl_->step.Set(static_cast<double>(step));
  impl_->epoch_steps.Set(static_cast<double>(steps));
  impl_->loss.Set(loss);
  impl_->images_per_second.Set(images_per_second);
}

void RankMetrics::add_data_wait(double seconds) {
  if (impl_) impl_->data_wait.Increment(seconds);
}

void RankMetrics::add_comm(double exposed_seconds, double total_seconds) {
  if (!impl_) return;
  impl_->comm_exposed.Increment(exposed_seconds);
  impl_->comm.Increment(total_seconds);
}

void RankMetrics::observe_checkpoint_upload(double seconds, bool ok) {
  if (!impl_) return;
  impl_->upload_seconds.Observe(seconds);
  if (!ok) impl_->upload_failures.Increment();
}

void RankMetrics::set_restarts(int64_t restarts) {
  if (impl_) impl_->restarts.Set(static_cast<double>(restarts));
}

}  // namespace ddpipe::telemetry
