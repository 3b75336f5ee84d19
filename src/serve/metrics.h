// ddpipe::serve — the service's Prometheus metrics (text exposition format 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ddpipe::serve {

// Values owned elsewhere (queue, model host), read when /metrics is scraped.
struct LiveGauges {
  int64_t queue_depth = 0;  // inputs waiting for a batch
  int64_t in_flight = 0;    // requests being handled
  bool ready = false;
  std::string model, version;  // the loaded version ("" when none)
  int64_t loads = 0, load_failures = 0;
};

// Counters and histograms of requests and batches. Thread-safe.
class Metrics {
 public:
  Metrics();

  // `endpoint` is a route template ("/v2/models/:name/infer"), never a raw path, so the label
  // set stays bounded.
  void observe_request(const std::string& endpoint, int status, double seconds);
  void observe_batch(int64_t size);

  std::string render(const LiveGauges& live) const;

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket (not cumulative), +Inf last
    double sum = 0.0;
    uint64_t count = 0;
  };
  static void observe(Histogram& h, const std::vector<double>& bounds, double v);
  static void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                               const std::vector<double>& bounds, const Histogram& h);

  mutable std::mutex mu_;
  std::vector<double> latency_bounds_, batch_bounds_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status) → count
  std::map<std::string, Histogram> latency_;                  // endpoint → seconds
  Histogram batches_;
};

}  // namespace ddpipe::serve
