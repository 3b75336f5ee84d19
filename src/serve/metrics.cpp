#include "serve/metrics.h"

#include <sstream>

namespace ddpipe::serve {
namespace {

std::string number(double v) {
  std::ostringstream o;
  o.precision(10);
  o << v;
  return o.str();
}

// Label values: escape backslash, quote and newline (exposition format).
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

Metrics::Metrics()
    : latency_bounds_{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
      batch_bounds_{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024} {
  batches_.counts.assign(batch_bounds_.size() + 1, 0);
}

void Metrics::observe(Histogram& h, const std::vector<double>& bounds, double v) {
  if (h.counts.empty()) h.counts.assign(bounds.size() + 1, 0);
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++h.counts[i];
  h.sum += v;
  ++h.count;
}

void Metrics::observe_request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
  observe(latency_[endpoint], latency_bounds_, seconds);
}

void Metrics::observe_batch(int64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  observe(batches_, batch_bounds_, static_cast<double>(size));
}

void Metrics::render_histogram(std::string& out, const std::string& name, const std::string& labels,
                               const std::vector<double>& bounds, const Histogram& h) {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += h.counts.empty() ? 0 : h.counts[i];
    const std::string le = i < bounds.size() ? number(bounds[i]) : "+Inf";
    out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(h.sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
}

std::string Metrics::render(const LiveGauges& live) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out +=
      "# HELP ddpipe_serve_requests_total HTTP requests answered, by endpoint and status code.\n"
      "# TYPE ddpipe_serve_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += "ddpipe_serve_requests_total{endpoint=\"" + label(key.first) + "\",code=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  }
  out +=
      "# HELP ddpipe_serve_request_duration_seconds Time from a request's arrival to its "
      "response, by endpoint.\n"
      "# TYPE ddpipe_serve_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_) {
    render_histogram(out, "ddpipe_serve_request_duration_seconds",
                     "endpoint=\"" + label(endpoint) + "\"", latency_bounds_, h);
  }
  out +=
      "# HELP ddpipe_serve_batch_size Inputs per forward pass of the network.\n"
      "# TYPE ddpipe_serve_batch_size histogram\n";
  render_histogram(out, "ddpipe_serve_batch_size", "", batch_bounds_, batches_);
  out +=
      "# HELP ddpipe_serve_queue_depth Inputs waiting for a batch.\n"
      "# TYPE ddpipe_serve_queue_depth gauge\n"
      "ddpipe_serve_queue_depth " +
      std::to_string(live.queue_depth) + "\n";
  out +=
      "# HELP ddpipe_serve_in_flight_requests Requests being handled.\n"
      "# TYPE ddpipe_serve_in_flight_requests gauge\n"
      "ddpipe_serve_in_flight_requests " +
      std::to_string(live.in_flight) + "\n";
  out +=
      "# HELP ddpipe_serve_model_ready 1 when a model version is loaded and requests are served.\n"
      "# TYPE ddpipe_serve_model_ready gauge\n"
      "ddpipe_serve_model_ready " +
      std::string(live.ready ? "1" : "0") + "\n";
  out +=
      "# HELP ddpipe_serve_model_info The model version being served (value 1).\n"
      "# TYPE ddpipe_serve_model_info gauge\n";
  if (!live.version.empty()) {
    out += "ddpipe_serve_model_info{model=\"" + label(live.model) + "\",version=\"" +
           label(live.version) + "\"} 1\n";
  }
  out +=
      "# HELP ddpipe_serve_model_loads_total Model versions loaded, by result.\n"
      "# TYPE ddpipe_serve_model_loads_total counter\n"
      "ddpipe_serve_model_loads_total{result=\"ok\"} " +
      std::to_string(live.loads) +
      "\n"
      "ddpipe_serve_model_loads_total{result=\"error\"} " +
      std::to_string(live.load_failures) + "\n";
  return out;
}

}  // namespace ddpipe::serve
