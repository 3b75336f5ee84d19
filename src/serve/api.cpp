#include "serve/api.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "data/image.h"
#include "serve/base64.h"

namespace ddpipe::serve {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Api::Route {
  std::string endpoint = "unmatched";  // the metrics label: a template, never the raw path
  const char* method = "";             // the one method it answers (HEAD counts as GET)
  bool open = false;                   // answered without a token (health checks)
  std::string model, version;          // from the path; version "" = whichever is loaded
};

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? at : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

Api::Route route_to(const char* endpoint, const char* method, bool open = false) {
  Api::Route r;
  r.endpoint = endpoint;
  r.method = method;
  r.open = open;
  return r;
}

Api::Route match(const std::string& path) {
  using R = Api::Route;
  if (path == "/predict") return route_to("/predict", "POST");
  if (path == "/metrics") return route_to("/metrics", "GET");
  if (path == "/v2/health/live") return route_to("/v2/health/live", "GET", true);
  if (path == "/v2/health/ready") return route_to("/v2/health/ready", "GET", true);
  if (path == "/v2") return route_to("/v2", "GET");
  if (path == "/v1/models") return route_to("/v1/models", "GET");
  const std::string v1 = "/v1/models/", v2 = "/v2/models/", predict = ":predict";
  if (path.rfind(v1, 0) == 0 && path.size() > v1.size()) {
    std::string name = path.substr(v1.size());
    if (name.find('/') != std::string::npos) return {};
    if (name.size() > predict.size() &&
        name.compare(name.size() - predict.size(), predict.size(), predict) == 0) {
      R r = route_to("/v1/models/:name:predict", "POST");
      r.model = name.substr(0, name.size() - predict.size());
      return r;
    }
    R r = route_to("/v1/models/:name", "GET");
    r.model = name;
    return r;
  }
  if (path.rfind(v2, 0) == 0) {
    std::vector<std::string> s = split(path.substr(v2.size()), '/');
    R r;
    if (s[0].empty()) return {};
    r.model = s[0];
    size_t next = 1;
    if (s.size() >= 3 && s[1] == "versions" && !s[2].empty()) {
      r.version = s[2];
      next = 3;
    }
    if (s.size() == next) {
      r.endpoint = "/v2/models/:name", r.method = "GET";
    } else if (s.size() == next + 1 && s[next] == "ready") {
      r.endpoint = "/v2/models/:name/ready", r.method = "GET";
    } else if (s.size() == next + 1 && s[next] == "infer") {
      r.endpoint = "/v2/models/:name/infer", r.method = "POST";
    } else {
      return {};
    }
    return r;
  }
  return {};
}

using Handler = HttpResponse (Api::*)(const HttpRequest&, const Api::Route&);

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0;
}

int64_t query_int(const HttpRequest& req, const std::string& key, int64_t lo, int64_t hi,
                  int64_t fallback) {
  auto it = req.query.find(key);
  if (it == req.query.end()) return fallback;
  const std::string& v = it->second;
  const bool digits = !v.empty() && v.size() <= 9 &&
                      std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  const int64_t n = digits ? std::stoll(v) : -1;
  if (n < lo || n > hi) {
    throw HttpError(400, key + " must be an integer between " + std::to_string(lo) + " and " +
                             std::to_string(hi) + ", got '" + v + "'");
  }
  return n;
}

json parse_json(const HttpRequest& req) {
  try {
    return json::parse(req.body);
  } catch (const json::parse_error& e) {
    throw HttpError(400, std::string("malformed JSON body: ") + e.what());
  }
}

// Appends the numbers of a (possibly nested) JSON array; depth is bounded by the tensor rank.
void flatten(const json& v, std::vector<float>& out, int depth, const std::string& where) {
  if (v.is_number()) {
    out.push_back(v.get<float>());
  } else if (v.is_array() && depth < 5) {
    for (const json& e : v) flatten(e, out, depth + 1, where);
  } else {
    throw HttpError(400, where + ": expected numbers (a flat or nested array)");
  }
}

json prediction_json(const eval::LoadedModel& m, const eval::Prediction& p, int64_t top_k) {
  json out = {
      {"prediction", p.label}, {"confidence", p.confidence}, {"class_index", p.class_index}};
  if (top_k > 0) {
    std::vector<int64_t> order(p.probabilities.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return p.probabilities[a] > p.probabilities[b]; });
    json top = json::array();
    for (size_t i = 0; i < std::min<size_t>(static_cast<size_t>(top_k), order.size()); ++i) {
      const int64_t c = order[i];
      top.push_back(
          {{"class", c < static_cast<int64_t>(m.classes.size()) ? m.classes[c] : std::to_string(c)},
           {"class_index", c},
           {"probability", p.probabilities[c]}});
    }
    out["top_k"] = top;
  }
  return out;
}

std::string request_id(const HttpRequest& req, uint64_t n) {
  const std::string given = req.header("x-request-id");
  if (!given.empty() && given.size() <= 64 &&
      std::all_of(given.begin(), given.end(), [](char c) { return c > 32 && c < 127; })) {
    return given;
  }
  char id[32];
  std::snprintf(id, sizeof id, "%x-%llu", static_cast<unsigned>(getpid()),
                static_cast<unsigned long long>(n));
  return id;
}

}  // namespace

Api::Api(ApiOptions options, ModelHost& host, Batcher& batcher, Metrics& metrics)
    : options_(std::move(options)), host_(host), batcher_(batcher), metrics_(metrics) {}

HttpResponse Api::handle(const HttpRequest& req) noexcept {
  const auto start = Clock::now();
  ++in_flight_;
  Route route;
  HttpResponse res;
  try {
    route = match(req.path);
    static const std::map<std::string, Handler> kHandlers = {
        {"/predict", &Api::predict},
        {"/metrics", &Api::metrics},
        {"/v1/models", &Api::v1_models},
        {"/v1/models/:name", &Api::v1_model},
        {"/v1/models/:name:predict", &Api::v1_predict},
        {"/v2", &Api::v2_server},
        {"/v2/health/live", &Api::v2_live},
        {"/v2/health/ready", &Api::v2_ready},
        {"/v2/models/:name", &Api::v2_model},
        {"/v2/models/:name/ready", &Api::v2_model_ready},
        {"/v2/models/:name/infer", &Api::v2_infer}};
    auto handler = kHandlers.find(route.endpoint);
    if (handler == kHandlers.end()) {
      throw HttpError(404, "no endpoint " + req.path + " (see docs/serving.md)");
    }
    const std::string method = req.method == "HEAD" ? "GET" : req.method;
    if (method != route.method) {
      res = error_response(
          405, req.method + " is not allowed on " + req.path + " (use " + route.method + ")");
      res.headers.emplace_back("Allow", route.method);
    } else {
      if (!route.open) authorize(req);
      res = (this->*handler->second)(req, route);
    }
  } catch (const std::exception& e) {
    const int status = status_for(e);
    if (status >= 500 && status != 503) {
      core::log::error("serve", "request failed", {{"path", req.path}, {"error", e.what()}});
      res = error_response(status, "internal error (details in the server log)");
    } else {
      res = error_response(status, e.what());
    }
    if (status == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer");
  } catch (...) {
    res = error_response(500, "internal error (details in the server log)");
  }
  res = finish(req, std::move(res), route.endpoint, start);
  --in_flight_;
  return res;
}

HttpResponse Api::refuse(const HttpRequest& req, int status, const std::string& message) noexcept {
  try {
    return finish(req, error_response(status, message), match(req.path).endpoint, Clock::now());
  } catch (...) {
    return error_response(status, message);
  }
}

HttpResponse Api::finish(const HttpRequest& req, HttpResponse res, const std::string& endpoint,
                         Clock::time_point start) noexcept {
  try {
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    metrics_.observe_request(endpoint, res.status, seconds);
    const std::string id = request_id(req, ++request_count_);
    res.headers.emplace_back("X-Request-Id", id);
    if (options_.access_log) {
      core::log::info("serve", "request",
                      {{"request_id", id},
                       {"method", req.method},
                       {"path", req.path},
                       {"status", res.status},
                       {"ms", std::round(seconds * 1e6) / 1e3},
                       {"bytes_in", req.body.size()},
                       {"bytes_out", res.body.size()},
                       {"remote", req.remote}});
    }
  } catch (...) {  // logging must never turn an answer into a failure
  }
  return res;
}

void Api::authorize(const HttpRequest& req) const {
  if (options_.auth_token.empty()) return;
  const std::string h = req.header("authorization");
  const bool bearer =
      h.size() > 7 && (h.compare(0, 7, "Bearer ") == 0 || h.compare(0, 7, "bearer ") == 0);
  if (!bearer || !constant_time_equal(h.substr(7), options_.auth_token)) {
    throw HttpError(401, "missing or wrong bearer token (send Authorization: Bearer <token>)");
  }
}

void Api::check_model(const Route& route, const ModelPtr& loaded) const {
  if (route.model != host_.name()) {
    throw HttpError(
        404, "unknown model '" + route.model + "' (this server serves '" + host_.name() + "')");
  }
  if (!route.version.empty() && (!loaded || loaded->version != route.version)) {
    throw HttpError(404, "model " + host_.name() + " version '" + route.version +
                             "' is not loaded (loaded: " + (loaded ? loaded->version : "none") +
                             ")");
  }
}

ModelPtr Api::ready_model() const {
  ModelPtr m = host_.current();
  if (!m) {
    const ModelStatus s = host_.status();
    throw HttpError(503, "model " + host_.name() +
                             " is not ready: " + (s.error.empty() ? "still loading" : s.error));
  }
  return m;
}

std::vector<float> Api::image_input(const eval::LoadedModel& m, std::string_view bytes,
                                    const std::string& name) const {
  const data::Image image = data::decode_image(bytes, name, options_.max_pixels);
  std::vector<float> input(static_cast<size_t>(m.channels * m.height * m.width));
  eval::preprocess(m, image, input.data());
  return input;
}

std::vector<eval::Prediction> Api::infer(const ModelPtr& m, std::vector<float> inputs, int64_t n) {
  return batcher_.submit(m, std::move(inputs), n).get();
}

// ---- endpoints ------------------------------------------------------------------------------

HttpResponse Api::predict(const HttpRequest& req, const Route&) {
  const int64_t top_k = query_int(req, "top_k", 1, 100000, 0);
  std::string name;
  const std::string_view bytes = uploaded_image(req, name);
  const ModelPtr m = ready_model();
  const eval::Prediction p = infer(m, image_input(*m, bytes, name), 1).at(0);
  json out = prediction_json(*m, p, top_k);
  out["model"] = m->model;
  out["version"] = m->version;
  return json_response(200, out);
}

HttpResponse Api::metrics(const HttpRequest&, const Route&) {
  LiveGauges live;
  const ModelStatus s = host_.status();
  live.queue_depth = batcher_.queue_depth();
  live.in_flight = in_flight_ - 1;  // not counting this scrape
  live.ready = s.ready && !draining_;
  live.model = host_.name();
  live.version = s.version;
  live.loads = s.loads;
  live.load_failures = s.load_failures;
  HttpResponse res;
  res.content_type = "text/plain; version=0.0.4";
  res.body = metrics_.render(live);
  return res;
}

HttpResponse Api::v1_models(const HttpRequest&, const Route&) {
  return json_response(200, {{"models", json::array({host_.name()})}});
}

HttpResponse Api::v1_model(const HttpRequest&, const Route& route) {
  const ModelPtr m = host_.current();
  check_model(route, m);
  if (!m) {
    return json_response(
        503, {{"name", host_.name()}, {"ready", false}, {"error", host_.status().error}});
  }
  return json_response(200, {{"name", host_.name()}, {"ready", true}});
}

HttpResponse Api::v1_predict(const HttpRequest& req, const Route& route) {
  check_model(route, host_.current());
  const json body = parse_json(req);
  if (!body.is_object() || !body.contains("instances") || !body["instances"].is_array() ||
      body["instances"].empty()) {
    throw HttpError(400, "expected {\"instances\": [...]} with at least one instance");
  }
  const json& instances = body["instances"];
  const int64_t n = static_cast<int64_t>(instances.size());
  if (n > options_.max_inputs) {
    throw HttpError(413, std::to_string(n) + " instances, over the limit of " +
                             std::to_string(options_.max_inputs) + " per request");
  }
  const ModelPtr m = ready_model();
  const size_t per_input = static_cast<size_t>(m->channels * m->height * m->width);
  std::vector<float> inputs;
  inputs.reserve(per_input * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const json& x = instances[static_cast<size_t>(i)];
    const std::string where = "instances[" + std::to_string(i) + "]";
    const json* b64 = nullptr;
    if (x.is_string()) b64 = &x;
    if (x.is_object() && x.contains("b64")) b64 = &x["b64"];
    if (x.is_object() && x.contains("image_bytes") && x["image_bytes"].is_object() &&
        x["image_bytes"].contains("b64")) {
      b64 = &x["image_bytes"]["b64"];
    }
    if (b64 && b64->is_string()) {
      const std::vector<float> in =
          image_input(*m, base64_decode(b64->get_ref<const std::string&>()), where);
      inputs.insert(inputs.end(), in.begin(), in.end());
    } else if (x.is_array()) {
      const size_t before = inputs.size();
      flatten(x, inputs, 0, where);
      if (inputs.size() - before != per_input) {
        throw HttpError(400, where + ": expected " + std::to_string(m->channels) + "x" +
                                 std::to_string(m->height) + "x" + std::to_string(m->width) +
                                 " = " + std::to_string(per_input) + " numbers, got " +
                                 std::to_string(inputs.size() - before));
      }
    } else {
      throw HttpError(400, where +
                               ": expected {\"b64\": \"<base64 PNG/JPEG>\"}, a base64 string "
                               "or a C×H×W array of preprocessed numbers");
    }
  }
  json predictions = json::array();
  for (const eval::Prediction& p : infer(m, std::move(inputs), n)) {
    predictions.push_back(prediction_json(*m, p, 0));
  }
  return json_response(200, {{"predictions", predictions}});
}

HttpResponse Api::v2_server(const HttpRequest&, const Route&) {
  return json_response(
      200, {{"name", "ddpipe"}, {"version", DDPIPE_VERSION}, {"extensions", json::array()}});
}

HttpResponse Api::v2_live(const HttpRequest&, const Route&) {
  return json_response(200, {{"live", true}});
}

HttpResponse Api::v2_ready(const HttpRequest&, const Route&) {
  const bool ready = host_.current() != nullptr && !draining_;
  return json_response(ready ? 200 : 503, {{"ready", ready}});
}

HttpResponse Api::v2_model(const HttpRequest&, const Route& route) {
  const ModelPtr loaded = host_.current();
  check_model(route, loaded);
  const ModelPtr m = ready_model();
  const int64_t k = static_cast<int64_t>(m->classes.size());
  const json inputs =
      json::array({{{"name", "input"},
                    {"datatype", "FP32"},
                    {"shape", json::array({-1, m->channels, m->height, m->width})}},
                   {{"name", "image"}, {"datatype", "BYTES"}, {"shape", json::array({-1})}}});
  const json outputs = json::array(
      {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", json::array({-1, k})}},
       {{"name", "class_index"}, {"datatype", "INT64"}, {"shape", json::array({-1})}},
       {{"name", "confidence"}, {"datatype", "FP32"}, {"shape", json::array({-1})}},
       {{"name", "prediction"}, {"datatype", "BYTES"}, {"shape", json::array({-1})}}});
  return json_response(
      200, {{"name", m->model},
            {"versions", json::array({m->version})},
            {"platform", "pytorch_libtorch"},
            {"inputs", inputs},
            {"outputs", outputs},
            {"parameters",
             {{"classes", m->classes},
              {"arch", m->manifest.value(json::json_pointer("/model_spec/arch"), "")}}}});
}

HttpResponse Api::v2_model_ready(const HttpRequest&, const Route& route) {
  const ModelPtr m = host_.current();
  check_model(route, m);
  if (!m) {
    return json_response(
        503, {{"name", host_.name()}, {"ready", false}, {"error", host_.status().error}});
  }
  return json_response(200, {{"name", host_.name()}, {"ready", true}, {"version", m->version}});
}

HttpResponse Api::v2_infer(const HttpRequest& req, const Route& route) {
  check_model(route, host_.current());
  const json body = parse_json(req);
  if (!body.is_object() || !body.contains("inputs") || !body["inputs"].is_array() ||
      body["inputs"].size() != 1 || !body["inputs"][0].is_object()) {
    throw HttpError(400,
                    "expected {\"inputs\": [one input]}: 'input' (FP32 [N,C,H,W], "
                    "preprocessed) or 'image' (BYTES [N], base64 PNG/JPEG)");
  }
  const json& input = body["inputs"][0];
  const std::string name = input.value("name", "");
  const std::string datatype = input.value("datatype", "");
  const json shape = input.value("shape", json());
  if (!shape.is_array() || shape.empty() ||
      !std::all_of(shape.begin(), shape.end(),
                   [](const json& d) { return d.is_number_integer(); })) {
    throw HttpError(400, "inputs[0].shape: expected an array of integers");
  }
  if (!input.contains("data") || !input["data"].is_array()) {
    throw HttpError(400, "inputs[0].data: expected an array");
  }
  const int64_t n = shape[0].get<int64_t>();
  if (n < 1) throw HttpError(400, "inputs[0].shape[0]: the batch must be at least 1");
  if (n > options_.max_inputs) {
    throw HttpError(413, "batch of " + std::to_string(n) + ", over the limit of " +
                             std::to_string(options_.max_inputs) + " per request");
  }
  const ModelPtr m = ready_model();
  std::vector<float> inputs;
  if (name == "input" && datatype == "FP32") {
    const json expected = json::array({n, m->channels, m->height, m->width});
    if (shape != expected) {
      throw HttpError(400,
                      "inputs[0].shape: expected " + expected.dump() + ", got " + shape.dump());
    }
    inputs.reserve(static_cast<size_t>(n * m->channels * m->height * m->width));
    flatten(input["data"], inputs, 0, "inputs[0].data");
    if (static_cast<int64_t>(inputs.size()) != n * m->channels * m->height * m->width) {
      throw HttpError(400, "inputs[0].data: " + std::to_string(inputs.size()) +
                               " numbers for shape " + shape.dump());
    }
  } else if (name == "image" && datatype == "BYTES") {
    const json& data = input["data"];
    if (shape.size() != 1 || static_cast<int64_t>(data.size()) != n) {
      throw HttpError(400, "inputs[0]: 'image' takes shape [N] and N base64 strings");
    }
    for (int64_t i = 0; i < n; ++i) {
      const json& s = data[static_cast<size_t>(i)];
      const std::string where = "inputs[0].data[" + std::to_string(i) + "]";
      if (!s.is_string()) throw HttpError(400, where + ": expected a base64 string");
      const std::vector<float> in =
          image_input(*m, base64_decode(s.get_ref<const std::string&>()), where);
      inputs.insert(inputs.end(), in.begin(), in.end());
    }
  } else {
    throw HttpError(400,
                    "inputs[0]: expected name 'input' with datatype FP32 or name 'image' "
                    "with datatype BYTES, got '" +
                        name + "' " + datatype);
  }

  std::vector<std::string> wanted = {"probabilities", "class_index", "confidence", "prediction"};
  if (body.contains("outputs")) {
    if (!body["outputs"].is_array()) throw HttpError(400, "outputs: expected an array");
    std::vector<std::string> requested;
    for (const json& o : body["outputs"]) {
      const std::string out = o.is_object() ? o.value("name", "") : "";
      if (std::find(wanted.begin(), wanted.end(), out) == wanted.end()) {
        throw HttpError(400, "outputs: unknown output '" + out +
                                 "' (probabilities, class_index, confidence, prediction)");
      }
      requested.push_back(out);
    }
    wanted = requested;
  }

  const std::vector<eval::Prediction> preds = infer(m, std::move(inputs), n);
  const int64_t k = preds.empty() ? 0 : static_cast<int64_t>(preds[0].probabilities.size());
  json outputs = json::array();
  for (const std::string& out : wanted) {
    json data = json::array();
    json o = {{"name", out}, {"shape", json::array({n})}};
    for (const eval::Prediction& p : preds) {
      if (out == "probabilities") {
        for (float v : p.probabilities) data.push_back(v);
      } else if (out == "class_index") {
        data.push_back(p.class_index);
      } else if (out == "confidence") {
        data.push_back(p.confidence);
      } else {
        data.push_back(p.label);
      }
    }
    if (out == "probabilities") o["shape"] = json::array({n, k});
    o["datatype"] = out == "class_index" ? "INT64" : out == "prediction" ? "BYTES" : "FP32";
    o["data"] = std::move(data);
    outputs.push_back(std::move(o));
  }
  json res = {{"model_name", m->model}, {"model_version", m->version}, {"outputs", outputs}};
  if (body.contains("id") && body["id"].is_string()) res["id"] = body["id"];
  return json_response(200, res);
}

}  // namespace ddpipe::serve
