#include "serve/metrics.h"

#include <gtest/gtest.h>

namespace ddpipe::serve {
namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(Metrics, RequestsLatencyBatchesAndGauges) {
  Metrics m;
  m.observe_request("/predict", 200, 0.004);
  m.observe_request("/predict", 200, 0.2);
  m.observe_request("/predict", 415, 0.0001);
  m.observe_request("/v2/models/:name/infer", 400, 20.0);
  m.observe_batch(1);
  m.observe_batch(7);
  m.observe_batch(32);
  LiveGauges live;
  live.queue_depth = 5;
  live.in_flight = 2;
  live.ready = true;
  live.model = "fmnist";
  live.version = "model_v1";
  live.loads = 1;
  live.load_failures = 3;
  const std::string t = m.render(live);
  EXPECT_TRUE(has(t, "ddpipe_serve_requests_total{endpoint=\"/predict\",code=\"200\"} 2")) << t;
  EXPECT_TRUE(has(t, "ddpipe_serve_requests_total{endpoint=\"/predict\",code=\"415\"} 1"));
  EXPECT_TRUE(
      has(t, "ddpipe_serve_request_duration_seconds_bucket{endpoint=\"/predict\",le=\"0.001\"} 1"));
  EXPECT_TRUE(
      has(t, "ddpipe_serve_request_duration_seconds_bucket{endpoint=\"/predict\",le=\"0.005\"} 2"));
  EXPECT_TRUE(
      has(t, "ddpipe_serve_request_duration_seconds_bucket{endpoint=\"/predict\",le=\"+Inf\"} 3"));
  EXPECT_TRUE(has(t, "ddpipe_serve_request_duration_seconds_count{endpoint=\"/predict\"} 3"));
  EXPECT_TRUE(has(t,
                  "ddpipe_serve_request_duration_seconds_bucket{endpoint=\"/v2/models/:name/"
                  "infer\",le=\"10\"} 0"));
  EXPECT_TRUE(has(t, "ddpipe_serve_batch_size_bucket{le=\"1\"} 1"));
  EXPECT_TRUE(has(t, "ddpipe_serve_batch_size_bucket{le=\"8\"} 2"));
  EXPECT_TRUE(has(t, "ddpipe_serve_batch_size_bucket{le=\"32\"} 3"));
  EXPECT_TRUE(has(t, "ddpipe_serve_batch_size_sum 40"));
  EXPECT_TRUE(has(t, "ddpipe_serve_batch_size_count 3"));
  EXPECT_TRUE(has(t, "ddpipe_serve_queue_depth 5"));
  EXPECT_TRUE(has(t, "ddpipe_serve_in_flight_requests 2"));
  EXPECT_TRUE(has(t, "ddpipe_serve_model_ready 1"));
  EXPECT_TRUE(has(t, "ddpipe_serve_model_info{model=\"fmnist\",version=\"model_v1\"} 1"));
  EXPECT_TRUE(has(t, "ddpipe_serve_model_loads_total{result=\"error\"} 3"));
  // Every sample line belongs to a declared family.
  for (const char* family :
       {"requests_total", "request_duration_seconds", "batch_size", "queue_depth",
        "in_flight_requests", "model_ready", "model_info", "model_loads_total"}) {
    EXPECT_NE(t.find(std::string("# TYPE ddpipe_serve_") + family + " "), std::string::npos)
        << family;
  }
}

TEST(Metrics, NoModelMeansNoInfoSample) {
  Metrics m;
  const std::string t = m.render({});
  EXPECT_TRUE(has(t, "ddpipe_serve_model_ready 0"));
  EXPECT_EQ(t.find("ddpipe_serve_model_info{"), std::string::npos);
  EXPECT_TRUE(has(t, "ddpipe_serve_batch_size_count 0"));
}

}  // namespace
}  // namespace ddpipe::serve
