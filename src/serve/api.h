// ddpipe::serve — the endpoints of the inference service, independent of the HTTP transport:
// /predict, KServe V1, Open Inference Protocol V2, /metrics (docs/serving.md lists them all),
// and the dashboard: every path under /ui/ goes to ui::Api, which has its own route table
// (docs/ui.md), and GET / redirects to /ui/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "serve/batcher.h"
#include "serve/http.h"
#include "serve/metrics.h"
#include "serve/model_host.h"
#include "ui/api.h"

namespace ddpipe::serve {

struct ApiOptions {
  int64_t max_pixels = 16777216;  // width × height of an uploaded image (413 beyond)
  int64_t max_inputs = 1024;      // images or tensors in one request (413 beyond)
  std::string auth_token;         // required as "Authorization: Bearer …"; "" = no auth
  bool access_log = true;         // one JSON log line per request
};

class Api {
 public:
  // The references (and `dashboard`, when given) must outlive the Api. Without `dashboard`,
  // /ui/ and / are unknown paths (404).
  Api(ApiOptions options, ModelHost& host, Batcher& batcher, Metrics& metrics,
      ui::Api* dashboard = nullptr);

  // Answers one request. Never throws: a failure becomes {"error": "…"} with the status
  // status_for() gives it. Counts it in the metrics and writes the access log line.
  // Thread-safe.
  HttpResponse handle(const HttpRequest& req) noexcept;
  // The same answer, metrics and log line for a request the transport could not complete
  // (body over the limit, read timeout); `req` has what was read.
  HttpResponse refuse(const HttpRequest& req, int status, const std::string& message) noexcept;

  // From now on readiness answers 503, so that load balancers stop sending (shutdown).
  void set_draining() { draining_ = true; }

  // "METHOD pattern" of every row of the route table, in its order, e.g.
  // "POST /v2/models/:name[/versions/:version]/infer" (docs/serving.md lists them; a test
  // compares).
  static std::vector<std::string> endpoints();

  struct Route;    // one row of the route table (api.cpp)
  struct Match;    // a request's path and method looked up in the table (api.cpp)
  struct V2Input;  // the checked input of an Open Inference Protocol request (api.cpp)

 private:
  // The route table: every endpoint, once. Matching, 404 and 405, authorization and the
  // metrics label all come from it.
  static const std::vector<Route>& routes();
  static Match lookup(const std::string& path, const std::string& method);

  HttpResponse predict(const HttpRequest& req, const Match& match);
  HttpResponse metrics(const HttpRequest& req, const Match& match);
  HttpResponse v1_models(const HttpRequest& req, const Match& match);
  HttpResponse v1_model(const HttpRequest& req, const Match& match);
  HttpResponse v1_predict(const HttpRequest& req, const Match& match);
  HttpResponse v2_server(const HttpRequest& req, const Match& match);
  HttpResponse v2_live(const HttpRequest& req, const Match& match);
  HttpResponse v2_ready(const HttpRequest& req, const Match& match);
  HttpResponse v2_model(const HttpRequest& req, const Match& match);
  HttpResponse v2_model_ready(const HttpRequest& req, const Match& match);
  HttpResponse v2_infer(const HttpRequest& req, const Match& match);

  // v2_infer's step from the checked input to the network's input (the others are in api.cpp).
  std::vector<float> v2_tensor(const V2Input& in, const eval::LoadedModel& m) const;

  void authorize(const HttpRequest& req) const;
  // GET / (a redirect) and every path under /ui (ui::Api, with `authorized` from the token).
  HttpResponse dashboard(const HttpRequest& req);
  void check_model(const Match& match, const ModelPtr& loaded) const;
  ModelPtr ready_model() const;
  std::vector<float> image_input(const eval::LoadedModel& m, std::string_view bytes,
                                 const std::string& name) const;
  std::vector<eval::Prediction> infer(const ModelPtr& m, std::vector<float> inputs, int64_t n);
  HttpResponse finish(const HttpRequest& req, HttpResponse res, const std::string& endpoint,
                      std::chrono::steady_clock::time_point start) noexcept;

  const ApiOptions options_;
  ModelHost& host_;
  Batcher& batcher_;
  Metrics& metrics_;
  ui::Api* dashboard_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> request_count_{0};
};

}  // namespace ddpipe::serve
