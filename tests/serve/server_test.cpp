// The inference service over real HTTP on a loopback port (in-process server, cpp-httplib
// client): every endpoint, every error case, batching, hot reload, draining, slow clients and
// the shared PngSuite / hostile images.
#include "serve/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "data/image.h"
#include "fixtures.h"
#include "http_client.h"
#include "registry/registry.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::serve {
namespace {

namespace fs = std::filesystem;
using fixtures::Client;
using fixtures::Reply;
using nlohmann::json;

const std::string kMultipart = "multipart/form-data; boundary=" + fixtures::kBoundary;

class Served {
 public:
  explicit Served(const fs::path& store, const std::vector<std::string>& sets = {},
                  bool wait_ready = true) {
    std::vector<std::string> all = {"store=" + store.string(), "name=m", "serve.port=0",
                                    "serve.poll_s=0.1", "serve.access_log=false"};
    all.insert(all.end(), sets.begin(), sets.end());
    server_ = std::make_unique<Server>(core::config_from_yaml("", all));
    port_ = server_->start();
    if (wait_ready && !wait_version("")) ADD_FAILURE() << "model not loaded within 20 s";
  }
  // Waits until `version` ("" = any) is served.
  bool wait_version(const std::string& version) {
    for (int i = 0; i < 400; ++i) {
      ModelPtr m = server_->models().current();
      if (m && (version.empty() || m->version == version)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  Server& server() { return *server_; }
  int port() const { return port_; }
  Client client(const std::string& token = "") const { return Client(port_, token); }

 private:
  std::unique_ptr<Server> server_;
  int port_ = 0;
};

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<storage::LocalStore>(dir_.path() / "store");
    version_ = fixtures::publish_model(*store_, "m", 11);
    model_ = eval::load_model(*store_, "m", version_);
  }
  // What eval::predict says for an encoded image.
  eval::Prediction expected(const std::string& bytes) {
    return eval::predict(model_, {data::decode_image(bytes, "expected")}).at(0);
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::LocalStore> store_;
  std::string version_;
  eval::LoadedModel model_;
};

std::string grey_png(uint64_t seed, int64_t w = 28, int64_t h = 28) {
  return fixtures::encode_png(w, h, 1, fixtures::random_pixels(static_cast<size_t>(w * h), seed));
}

void expect_error(const Reply& r, int status, const std::string& fragment,
                  const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  json j;
  try {
    j = r.json();
  } catch (const std::exception&) {
    ADD_FAILURE() << what << ": body is not JSON: " << r.body;
    return;
  }
  ASSERT_TRUE(j.contains("error")) << what << ": " << r.body;
  EXPECT_NE(j["error"].get<std::string>().find(fragment), std::string::npos)
      << what << ": " << j["error"];
}

TEST_F(ServeTest, PredictMultipartRawJpegAndTopK) {
  Served s(dir_.path() / "store");
  Client c = s.client();
  const std::string png = grey_png(1);
  const eval::Prediction want = expected(png);

  Reply r = c.post_file("/predict", "file", "test_image.png", png);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  EXPECT_EQ(j["prediction"], want.label);
  EXPECT_EQ(j["class_index"], want.class_index);
  EXPECT_EQ(j["confidence"].get<float>(), want.confidence);
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["version"], version_);
  EXPECT_FALSE(j.contains("top_k"));
  EXPECT_FALSE(r.header("X-Request-Id").empty());

  Reply raw = c.post("/predict", png, "image/png");
  ASSERT_EQ(raw.status, 200) << raw.body;
  EXPECT_EQ(raw.json(), j) << "multipart and raw body differ";
  Reply own = c.post("/predict", fixtures::multipart("file", "x.png", png), kMultipart);
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(own.json(), j);

  // Any size and colour mode, converted as in training.
  const auto rgba = fixtures::random_pixels(61 * 37 * 4, 5);
  const std::string big_rgba = fixtures::encode_png(61, 37, 4, rgba);
  Reply r2 = c.post("/predict", big_rgba, "image/png");
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r2.json()["confidence"].get<float>(), expected(big_rgba).confidence);
  const std::string jpeg =
      fixtures::encode_jpeg(40, 30, 3, fixtures::random_pixels(40 * 30 * 3, 6));
  Reply r3 = c.post("/predict", jpeg, "image/jpeg");
  ASSERT_EQ(r3.status, 200) << r3.body;
  EXPECT_EQ(r3.json()["class_index"], expected(jpeg).class_index);

  Reply top = c.post("/predict?top_k=3", png, "image/png");
  ASSERT_EQ(top.status, 200) << top.body;
  const json t = top.json()["top_k"];
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0]["class"], want.label);
  EXPECT_EQ(t[0]["probability"].get<float>(), want.confidence);
  EXPECT_GE(t[0]["probability"].get<float>(), t[1]["probability"].get<float>());
  EXPECT_GE(t[1]["probability"].get<float>(), t[2]["probability"].get<float>());
  Reply all = c.post("/predict?top_k=50", png, "image/png");
  EXPECT_EQ(all.json()["top_k"].size(), 10u) << "top_k is capped at the class count";
}

TEST_F(ServeTest, EveryErrorIsAJsonAnswerWithItsStatus) {
  Served s(dir_.path() / "store", {"serve.max_body_mb=1", "serve.max_pixels=1000000"});
  Client c = s.client();
  const std::string png = grey_png(2);

  expect_error(c.get("/predict"), 405, "GET is not allowed on /predict", "GET /predict");
  EXPECT_EQ(c.get("/predict").header("Allow"), "POST");
  expect_error(c.send("DELETE", "/predict"), 405, "use POST", "DELETE /predict");
  expect_error(c.send("PUT", "/v2/health/live", "x"), 405, "use GET", "PUT health");
  expect_error(c.send("POST", "/metrics", "x"), 405, "use GET", "POST /metrics");
  expect_error(c.get("/nope"), 404, "no endpoint /nope", "unknown path");
  expect_error(c.get("/v2/models/m/explain"), 404, "no endpoint", "unknown V2 path");

  expect_error(c.post("/predict", "hello", "text/plain"), 415, "text/plain is not supported",
               "text body");
  expect_error(c.post("/predict", "GIF89a\x01\x00\x01\x00", "image/png"), 415, "not a PNG or JPEG",
               "GIF as image/png");
  expect_error(c.post("/predict", "hello, not an image", "image/png"), 415, "not a PNG or JPEG",
               "text as image/png");
  expect_error(c.post("/predict", png.substr(0, png.size() / 2), "image/png"), 400, "corrupt PNG",
               "truncated PNG");
  expect_error(c.post("/predict", "", "image/png"), 400, "body is empty", "empty body");
  const std::string form = fixtures::multipart("file", "a.png", png);
  expect_error(c.post("/predict", form.substr(0, form.size() - 30), kMultipart), 400,
               "closing boundary", "unterminated multipart");
  expect_error(c.post("/predict", form.substr(0, 60), kMultipart), 400, "headers do not end",
               "multipart cut in the part headers");
  expect_error(c.post("/predict", fixtures::multipart("file", "a.png", png), "multipart/form-data"),
               400, "boundary", "multipart without boundary");
  expect_error(c.post("/predict", fixtures::multipart("image", "a.png", png), kMultipart), 400,
               "field 'file' is missing", "wrong field");
  expect_error(c.post("/predict?top_k=abc", png, "image/png"), 400, "top_k", "top_k=abc");
  expect_error(c.post("/predict?top_k=0", png, "image/png"), 400, "top_k", "top_k=0");

  // 1001×1000 > serve.max_pixels: refused from the header, before decoding.
  const std::string wide = fixtures::encode_png(1001, 1000, 1, std::vector<uint8_t>(1001 * 1000));
  expect_error(c.post("/predict", wide, "image/png"), 413, "over the limit of 1000000 pixels",
               "dimensions");
  expect_error(c.post("/predict", std::string(1536 * 1024, 'x'), "image/png"), 413,
               "over the limit of 1", "body size");
  expect_error(c.post_file("/predict", "file", "big.png", std::string(1536 * 1024, 'x')), 413,
               "serve.max_body_mb", "multipart body size");

  expect_error(c.post("/v2/models/m/infer", "{\"inputs\": [", "application/json"), 400,
               "malformed JSON", "bad JSON");
  expect_error(c.post("/v2/models/other/infer", "{}", "application/json"), 404,
               "unknown model 'other'", "V2 unknown model");
  expect_error(c.get("/v2/models/other"), 404, "unknown model", "V2 metadata unknown model");
  expect_error(c.get("/v2/models/m/versions/model_v19990101_000000/ready"), 404, "is not loaded",
               "V2 unknown version");
  expect_error(c.get("/v1/models/other"), 404, "unknown model", "V1 unknown model");
  expect_error(c.post("/v1/models/m:predict", "{\"instances\": []}", "application/json"), 400,
               "at least one instance", "V1 no instances");
  expect_error(
      c.post("/v1/models/m:predict", "{\"instances\": [{\"b64\": \"%%%\"}]}", "application/json"),
      400, "base64", "V1 bad base64");

  // What the transport answers itself is JSON too, and the connection closes.
  const std::string bad = fixtures::raw_exchange(s.port(), "GARBAGE\r\n\r\n", 3.0, true);
  EXPECT_EQ(bad.rfind("HTTP/1.1 400", 0), 0u) << bad;
  EXPECT_NE(bad.find("{\"error\":"), std::string::npos) << bad;

  // A refused body is never read as the next request on the connection (request smuggling).
  const std::string smuggled = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string body;
  while (body.size() < 1536 * 1024) body += smuggled;
  const std::string refused = fixtures::raw_exchange(
      s.port(),
      "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body,
      5.0, true);
  EXPECT_EQ(refused.rfind("HTTP/1.1 413", 0), 0u) << refused.substr(0, 300);
  EXPECT_EQ(refused.find("HTTP/1.1", 1), std::string::npos) << "a second answer: " << refused;

  // Still serving after all of that.
  EXPECT_EQ(c.post("/predict", png, "image/png").status, 200);
}

TEST_F(ServeTest, KServeV1) {
  Served s(dir_.path() / "store");
  Client c = s.client();
  EXPECT_EQ(c.get("/v1/models").json(), json({{"models", json::array({"m"})}}));
  Reply ready = c.get("/v1/models/m");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json(), json({{"name", "m"}, {"ready", true}}));

  const std::string png = grey_png(3),
                    jpeg = fixtures::encode_jpeg(28, 28, 1, fixtures::random_pixels(784, 4));
  std::vector<float> tensor(784);
  eval::preprocess(model_, data::decode_image(png, "x"), tensor.data());
  json nested = json::array({json::array()});  // [C][H][W]
  for (int y = 0; y < 28; ++y) {
    json row = json::array();
    for (int x = 0; x < 28; ++x) row.push_back(tensor[y * 28 + x]);
    nested[0].push_back(row);
  }
  json body = {{"instances",
                {{{"b64", fixtures::base64_encode(png)}},
                 {{"image_bytes", {{"b64", fixtures::base64_encode(jpeg)}}}},
                 fixtures::base64_encode(png),
                 nested}}};
  Reply r = c.post("/v1/models/m:predict", body.dump(), "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  const json p = r.json()["predictions"];
  ASSERT_EQ(p.size(), 4u);
  const eval::Prediction a = expected(png), b = expected(jpeg);
  EXPECT_EQ(p[0]["class_index"], a.class_index);
  EXPECT_EQ(p[0]["confidence"].get<float>(), a.confidence);
  EXPECT_EQ(p[1]["confidence"].get<float>(), b.confidence);
  EXPECT_EQ(p[2], p[0]);
  EXPECT_EQ(p[3], p[0]) << "a preprocessed tensor gives the same answer as its image";
  expect_error(c.post("/v1/models/m:predict",
                      json({{"instances", json::array({json::array({1, 2, 3})})}}).dump(),
                      "application/json"),
               400, "expected 1x28x28 = 784 numbers, got 3", "V1 wrong tensor size");
}

TEST_F(ServeTest, OpenInferenceProtocolV2) {
  Served s(dir_.path() / "store");
  Client c = s.client();
  EXPECT_EQ(c.get("/v2/health/live").status, 200);
  EXPECT_EQ(c.get("/v2/health/ready").json(), json({{"ready", true}}));
  EXPECT_EQ(c.get("/v2").json()["name"], "ddpipe");

  const json meta = c.get("/v2/models/m").json();
  EXPECT_EQ(meta["name"], "m");
  EXPECT_EQ(meta["versions"], json::array({version_}));
  EXPECT_EQ(
      meta["inputs"][0],
      json({{"name", "input"}, {"datatype", "FP32"}, {"shape", json::array({-1, 1, 28, 28})}}));
  EXPECT_EQ(meta["inputs"][1],
            json({{"name", "image"}, {"datatype", "BYTES"}, {"shape", json::array({-1})}}));
  EXPECT_EQ(meta["outputs"][0]["shape"], json({-1, 10}));
  EXPECT_EQ(meta["parameters"]["classes"].size(), 10u);
  EXPECT_EQ(c.get("/v2/models/m/versions/" + version_).status, 200);
  const Reply ready = c.get("/v2/models/m/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json()["version"], version_);
  EXPECT_EQ(c.get("/v2/models/m/versions/" + version_ + "/ready").status, 200);

  // FP32: two preprocessed inputs, flat.
  const std::string png1 = grey_png(7), png2 = grey_png(8);
  std::vector<float> flat(2 * 784);
  eval::preprocess(model_, data::decode_image(png1, "1"), flat.data());
  eval::preprocess(model_, data::decode_image(png2, "2"), flat.data() + 784);
  const auto want = eval::classify(model_, flat.data(), 2);
  json req = {
      {"id", "req-1"},
      {"inputs",
       {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {2, 1, 28, 28}}, {"data", flat}}}}};
  Reply r = c.post("/v2/models/m/infer", req.dump(), "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  json out = r.json();
  EXPECT_EQ(out["model_name"], "m");
  EXPECT_EQ(out["model_version"], version_);
  EXPECT_EQ(out["id"], "req-1");
  ASSERT_EQ(out["outputs"].size(), 4u);
  std::map<std::string, json> by_name;
  for (const json& o : out["outputs"]) by_name[o["name"]] = o;
  EXPECT_EQ(by_name["probabilities"]["shape"], json({2, 10}));
  EXPECT_EQ(by_name["probabilities"]["datatype"], "FP32");
  EXPECT_EQ(by_name["class_index"]["data"], json({want[0].class_index, want[1].class_index}));
  EXPECT_EQ(by_name["class_index"]["datatype"], "INT64");
  EXPECT_EQ(by_name["prediction"]["data"], json({want[0].label, want[1].label}));
  EXPECT_EQ(by_name["confidence"]["data"][1].get<float>(), want[1].confidence);
  for (size_t k = 0; k < 10; ++k) {
    EXPECT_EQ(by_name["probabilities"]["data"][10 + k].get<float>(), want[1].probabilities[k]);
  }

  // BYTES: base64 images, only the outputs asked for.
  json breq = {{"inputs",
                {{{"name", "image"},
                  {"datatype", "BYTES"},
                  {"shape", {2}},
                  {"data", {fixtures::base64_encode(png1), fixtures::base64_encode(png2)}}}}},
               {"outputs", {{{"name", "prediction"}}, {{"name", "confidence"}}}}};
  Reply br =
      c.post("/v2/models/m/versions/" + version_ + "/infer", breq.dump(), "application/json");
  ASSERT_EQ(br.status, 200) << br.body;
  const json bo = br.json()["outputs"];
  ASSERT_EQ(bo.size(), 2u);
  EXPECT_EQ(bo[0]["name"], "prediction");
  EXPECT_EQ(bo[0]["data"], json({want[0].label, want[1].label}));
  EXPECT_EQ(bo[1]["data"][0].get<float>(), want[0].confidence);

  auto infer_error = [&](const json& input, int status, const std::string& fragment) {
    expect_error(c.post("/v2/models/m/infer", json({{"inputs", json::array({input})}}).dump(),
                        "application/json"),
                 status, fragment, input.dump().substr(0, 80));
  };
  infer_error({{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 3, 28, 28}}, {"data", flat}},
              400, "expected [1,1,28,28]");
  infer_error(
      {{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 1, 28, 28}}, {"data", {1, 2}}}, 400,
      "2 numbers for shape");
  infer_error({{"name", "input"}, {"datatype", "INT8"}, {"shape", {1}}, {"data", {1}}}, 400,
              "expected name 'input' with datatype FP32");
  infer_error({{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {"aGVsbG8="}}},
              415, "not a PNG or JPEG");
  infer_error({{"name", "input"},
               {"datatype", "FP32"},
               {"shape", {5000, 1, 28, 28}},
               {"data", json::array()}},
              413, "over the limit");
  infer_error({{"name", "input"}, {"datatype", "FP32"}, {"shape", "1x1"}, {"data", json::array()}},
              400, "shape: expected an array of integers");
  expect_error(
      c.post("/v2/models/m/infer", json({{"inputs", json::array()}}).dump(), "application/json"),
      400, "expected {\"inputs\": [one input]}", "no inputs");
  json unknown_output = breq;
  unknown_output["outputs"] = {{{"name", "logits"}}};
  expect_error(c.post("/v2/models/m/infer", unknown_output.dump(), "application/json"), 400,
               "unknown output 'logits'", "unknown output");
}

TEST(ServeNotReady, ReadinessCarriesTheLoadErrorUntilAModelAppears) {
  testing::TempDir dir;
  Served s(dir.path() / "store", {"serve.poll_s=0.1"}, false);
  Client c = s.client();
  EXPECT_EQ(c.get("/v2/health/live").status, 200);
  EXPECT_EQ(c.get("/v2/health/ready").status, 503);
  const Reply ready = c.get("/v2/models/m/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.json()["ready"], false);
  EXPECT_NE(ready.json()["error"].get<std::string>().find("no model named 'm'"), std::string::npos)
      << ready.body;
  EXPECT_EQ(c.get("/v1/models/m").status, 503);
  expect_error(c.post("/predict", grey_png(1), "image/png"), 503,
               "model m is not ready: no model named", "predict before load");
  expect_error(c.get("/v2/models/m"), 503, "not ready", "metadata before load");

  storage::LocalStore store(dir.path() / "store");
  const std::string v = fixtures::publish_model(store, "m", 1);
  ASSERT_TRUE(s.wait_version(v));
  EXPECT_EQ(c.get("/v2/health/ready").status, 200);
  EXPECT_EQ(c.post("/predict", grey_png(1), "image/png").status, 200);
}

// The alias the server follows names "../../etc": not ready, and the reason names the alias file;
// once the pointer is removed and the alias moved again, the version is served.
TEST(ServeNotReady, AliasNamingAPathIsTheReasonNotARead) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path() / "store");
  const std::string v = fixtures::publish_model(store, "m", 1);
  store.put("models/m/aliases/prod", R"({"version": "../../etc"})");
  Served s(dir.path() / "store", {"serve.version=prod"}, false);
  Client c = s.client();
  Reply ready;
  for (int i = 0; i < 200 && ready.body.find("names version") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ready = c.get("/v2/models/m/ready");
  }
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("alias models/m/aliases/prod names version '../../etc'"),
            std::string::npos)
      << ready.body;
  store.remove("models/m/aliases/prod");  // as the error says
  registry::Registry(store).set_alias("m", "prod", v);
  EXPECT_TRUE(s.wait_version(v));
}

TEST(ServeNotReady, BrokenModelReportsWhyNotAnOpaque500) {
  testing::TempDir dir;
  storage::LocalStore store(dir.path() / "store");
  registry::Registry reg(store);
  reg.publish("m", {{"model.pt", "not a model"}},
              {{"dataset", {{"classes", {"a", "b"}}}}});  // incomplete manifest
  Served s(dir.path() / "store", {}, false);
  Client c = s.client();
  Reply r = c.get("/v2/models/m/ready");
  for (int i = 0; i < 100 && r.json().value("error", "").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = c.get("/v2/models/m/ready");
  }
  ASSERT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.json()["error"].get<std::string>().find("is incomplete"), std::string::npos)
      << r.body;
}

TEST_F(ServeTest, MetricsCountRequestsBatchesAndTheLoadedVersion) {
  Served s(dir_.path() / "store");
  Client c = s.client();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.post("/predict", grey_png(i), "image/png").status, 200);
  c.post("/predict", "nope", "text/plain");
  const Reply r = c.get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  const std::string& t = r.body;
  EXPECT_NE(t.find("ddpipe_serve_requests_total{endpoint=\"/predict\",code=\"200\"} 3\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("ddpipe_serve_requests_total{endpoint=\"/predict\",code=\"415\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("ddpipe_serve_request_duration_seconds_count{endpoint=\"/predict\"} 4\n"),
            std::string::npos);
  EXPECT_NE(t.find("ddpipe_serve_batch_size_sum 3\n"), std::string::npos);
  EXPECT_NE(t.find("ddpipe_serve_model_info{model=\"m\",version=\"" + version_ + "\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("ddpipe_serve_model_ready 1\n"), std::string::npos);
  EXPECT_NE(t.find("ddpipe_serve_queue_depth 0\n"), std::string::npos);
  EXPECT_NE(t.find("ddpipe_serve_model_loads_total{result=\"ok\"} 1\n"), std::string::npos);
}

TEST_F(ServeTest, BearerTokenGuardsEverythingButHealth) {
  ::setenv("DDPIPE_SERVE_TEST_TOKEN", "s3cret-token", 1);
  Served s(dir_.path() / "store", {"serve.auth_token_env=DDPIPE_SERVE_TEST_TOKEN"});
  const std::string png = grey_png(1);
  const Reply none = s.client().post("/predict", png, "image/png");
  expect_error(none, 401, "bearer token", "no token");
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer");
  expect_error(s.client("s3cret-tokeX").post("/predict", png, "image/png"), 401, "bearer token",
               "wrong");
  expect_error(s.client().get("/metrics"), 401, "bearer token", "metrics");
  EXPECT_EQ(s.client("s3cret-token").post("/predict", png, "image/png").status, 200);
  EXPECT_EQ(s.client().get("/v2/health/live").status, 200);
  EXPECT_EQ(s.client().get("/v2/health/ready").status, 200);

  ::unsetenv("DDPIPE_SERVE_TEST_TOKEN");
  try {
    Server bad(core::config_from_yaml("", {"store=" + (dir_.path() / "store").string(),
                                           "serve.auth_token_env=DDPIPE_SERVE_TEST_TOKEN"}));
    FAIL() << "a missing token variable must stop the server from starting";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("DDPIPE_SERVE_TEST_TOKEN is not set"), std::string::npos);
  }
}

TEST_F(ServeTest, ListensOnLoopbackOnlyByDefault) {
  Served s(dir_.path() / "store");
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", s.port());
  // /proc/net/tcp: "sl local_address rem_address st ...", state 0A = LISTEN.
  std::ifstream tcp("/proc/net/tcp");
  std::string line, local;
  while (std::getline(tcp, line)) {
    std::istringstream f(line);
    std::string sl, addr, remote, state;
    f >> sl >> addr >> remote >> state;
    if (state == "0A" && addr.size() > 5 && addr.substr(addr.size() - 4) == port_hex) local = addr;
  }
  EXPECT_EQ(local, std::string("0100007F:") + port_hex) << "bound to " << local;
}

TEST_F(ServeTest, ConcurrentRequestsAreBatchedWithUnbatchedResults) {
  Served s(dir_.path() / "store", {"serve.max_batch=16", "serve.max_delay_ms=50"});
  const int kClients = 32;
  std::vector<std::string> images;
  for (int i = 0; i < kClients; ++i) images.push_back(grey_png(100 + i, 20 + i, 30));
  std::vector<Reply> replies(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back(
        [&, i] { replies[i] = s.client().post("/predict", images[i], "image/png"); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    const eval::Prediction want = expected(images[i]);
    EXPECT_EQ(replies[i].json()["class_index"], want.class_index) << i;
    EXPECT_EQ(replies[i].json()["confidence"].get<float>(), want.confidence) << i;
  }
  const std::string metrics = s.client().get("/metrics").body;
  const size_t at = metrics.find("ddpipe_serve_batch_size_count ");
  ASSERT_NE(at, std::string::npos);
  const int batches = std::stoi(metrics.substr(at + 30));
  EXPECT_LT(batches, kClients) << "no two concurrent requests shared a batch";
  EXPECT_NE(metrics.find("ddpipe_serve_batch_size_sum 32\n"), std::string::npos) << metrics;
}

TEST_F(ServeTest, HotReloadUnderLoadFailsNothing) {
  registry::Registry reg(*store_);
  reg.set_alias("m", "prod", version_);
  Served s(dir_.path() / "store", {"serve.version=prod", "serve.poll_s=0.05"});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::vector<std::string> failures;
  std::mutex mu;
  std::vector<std::vector<std::string>> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Client c = s.client();
      for (int i = 0; !stop; ++i) {
        const Reply r =
            c.post("/predict", grey_png(static_cast<uint64_t>(t * 1000 + i)), "image/png");
        if (r.status != 200) {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(std::to_string(r.status) + " " + r.body);
          continue;
        }
        ++ok;
        const std::string v = r.json()["version"];
        if (seen[t].empty() || seen[t].back() != v) seen[t].push_back(v);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string v2 = fixtures::publish_model(*store_, "m", 12);  // moves model_latest only
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(s.server().models().current()->version, version_) << "followed latest, not prod";
  reg.set_alias("m", "prod", v2);  // promote
  const bool switched = s.wait_version(v2);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(switched);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  EXPECT_GT(ok.load(), 20);
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(seen[t], (std::vector<std::string>{version_, v2})) << "client " << t;
  }
}

TEST_F(ServeTest, ShutdownAnswersRequestsInFlightAndClosesIdleConnections) {
  Served s(dir_.path() / "store", {"serve.max_delay_ms=10000", "serve.max_batch=64"});
  httplib::Client idle("127.0.0.1", s.port());  // a keep-alive connection, idle during shutdown
  idle.set_keep_alive(true);
  ASSERT_EQ(idle.Get("/v2/health/live")->status, 200);
  const int kClients = 6;
  std::vector<Reply> replies(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back(
        [&, i] { replies[i] = s.client().post("/predict", grey_png(i), "image/png"); });
  }
  EXPECT_TRUE(fixtures::wait_queue_depth(s.client(), kClients));
  const auto t1 = std::chrono::steady_clock::now();
  s.server().shutdown();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), 3.0)
      << "draining waited for idle keep-alive connections or for max_delay_ms";
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i)
    EXPECT_EQ(replies[i].status, 200) << i << ": " << replies[i].body;
  EXPECT_EQ(s.client().get("/v2/health/live").status, 0) << "still accepting after shutdown";
}

TEST_F(ServeTest, SlowClientsTimeOutWithoutBlockingOthers) {
  Served s(dir_.path() / "store", {"serve.read_timeout_s=0.5"});
  std::string body_stall;
  std::thread stalled([&] {
    body_stall = fixtures::raw_exchange(s.port(),
                                        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                        "image/png\r\nContent-Length: 5000\r\n\r\n"
                                        "\x89PNG",
                                        5.0);
  });
  const auto t0 = std::chrono::steady_clock::now();
  const std::string header_stall =
      fixtures::raw_exchange(s.port(), "POST /predict HTTP/1.1\r\nHost: x\r\n", 5.0);
  const double header_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s.client().post("/predict", grey_png(1), "image/png").status, 200);
  stalled.join();
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(header_s, 4.0) << "a client stalling in its headers kept the connection";
  EXPECT_EQ(header_stall.rfind("HTTP/1.1 408", 0), 0u) << header_stall;
  EXPECT_LT(total_s, 4.5);
  EXPECT_EQ(body_stall.rfind("HTTP/1.1 408", 0), 0u) << body_stall;
  EXPECT_NE(body_stall.find("serve.read_timeout_s"), std::string::npos) << body_stall;
}

// ---- the shared image corpus (PngSuite + hostile files), when ../shared is present ----------

fs::path shared_images() {
  const fs::path shared = ddpipe::testing::shared_dir();
  return shared.empty() ? fs::path() : shared / "testdata" / "images";
}

TEST_F(ServeTest, PngSuiteAndHostileFilesGetTheRightStatus) {
  const fs::path dir = shared_images();
  if (dir.empty() || !fs::exists(dir / "pngsuite" / "expected.csv")) {
    GTEST_SKIP() << "shared/testdata/images not found (set DDPIPE_SHARED_DIR to the shared folder)";
  }
  Served s(dir_.path() / "store");
  Client c = s.client();
  std::istringstream csv(core::read_file(dir / "pngsuite" / "expected.csv"));
  std::string line;
  std::getline(csv, line);
  int checked = 0;
  while (std::getline(csv, line)) {
    const std::string file = line.substr(0, line.find(','));
    const bool accept = line.find(",accept,") != std::string::npos;
    const std::string bytes = core::read_file(dir / "pngsuite" / file);
    const Reply r = c.post_file("/predict", "file", fs::path(file).filename().string(), bytes);
    if (accept) {
      EXPECT_EQ(r.status, 200) << file << ": " << r.body;
      if (r.status == 200) EXPECT_EQ(r.json()["class_index"], expected(bytes).class_index) << file;
    } else {
      expect_error(r, 400, fs::path(file).filename().string(), file);
    }
    ++checked;
  }
  EXPECT_GE(checked, 114);

  const std::map<std::string, int> hostile = {
      {"png_dims_1000000x1000000_truncated.png", 413}, {"png_bomb_20000x20000_gray8.png", 413},
      {"jpeg_dims_65000x65000_truncated.jpg", 413},    {"gif_stb_issue1538_GHSL-2023-145.gif", 415},
      {"gif_stb_issue1916_two_back.gif", 415},         {"png_ztxt_bomb_50MB.png", 200}};
  for (const auto& [file, status] : hostile) {
    const auto t0 = std::chrono::steady_clock::now();
    const Reply r = c.post_file("/predict", "file", file, core::read_file(dir / "hostile" / file));
    EXPECT_EQ(r.status, status) << file << ": " << r.body;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0)
        << file;
    if (status != 200) EXPECT_TRUE(r.json().contains("error")) << file;
  }
  EXPECT_EQ(c.get("/v2/health/live").status, 200);
}

// Hostile names in request paths over real HTTP, sent raw (no client normalises them): each
// is a 400 or 404 with a JSON error, and no answer ever carries a file beside the store.
TEST_F(ServeTest, HostileNamesInPathsNeverReachOutsideTheStore) {
  core::write_file_atomic(dir_.path() / "etc" / "passwd", "SECRET-CANARY");
  Served s(dir_.path() / "store");
  const std::vector<std::string> paths = {
      "/v1/models/..%2F..%2Fetc:predict",
      "/v1/models/../../etc:predict",
      "/v2/models/..%2F..%2Fetc/infer",
      "/v2/models/m/versions/..%2F..%2Fetc/infer",
      "/v2/models/%2E%2E/ready",
      "/ui/api/models/..%2F..%2Fetc/aliases",
      "/ui/api/models/m/versions/..%2F..%2Fetc%2Fpasswd",
      "/ui/api/models/m/versions/%2E%2E",
      "/ui/files/m/..%2F..%2Fetc/passwd",
      "/ui/files/..%2F..%2Fetc/passwd/report.html",
      "/ui/api/runs/m/..%2F..%2Fetc%2Fpasswd",
      "/ui/..%2F..%2Fetc%2Fpasswd",
      "/ui/../../etc/passwd",
      "/ui/api/models/m%00/aliases",
  };
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    const std::string reply = fixtures::raw_exchange(
        s.port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5.0, true);
    ASSERT_FALSE(reply.empty());
    const int status = std::stoi(reply.substr(reply.find(' ') + 1, 3));
    EXPECT_TRUE(status == 400 || status == 404) << reply;
    EXPECT_EQ(reply.find("SECRET-CANARY"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\"error\""), std::string::npos) << reply;
  }
  const Reply r = s.client().get("/ui/api/models/..%2F..%2Fetc/aliases");
  EXPECT_TRUE(r.status == 400 || r.status == 404) << r.body;
}

TEST(ServeNames, HostileModelOrAliasInTheConfigIsAUsageError) {
  testing::TempDir dir;
  const std::string store = "store=" + (dir.path() / "store").string();
  EXPECT_NE(testing::usage_error([&] {
              Server bad(core::config_from_yaml("", {store, "serve.model=..%2F..%2Fetc"}));
            }).find("serve.model '..%2F..%2Fetc' is invalid"),
            std::string::npos);
  EXPECT_NE(testing::usage_error([&] {
              Server bad(core::config_from_yaml("", {store, "name=m", "serve.version=../../etc"}));
            }).find("serve.version '../../etc' is invalid"),
            std::string::npos);
}

}  // namespace
}  // namespace ddpipe::serve
