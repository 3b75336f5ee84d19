#include "serve/api.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/base64.h"
#include "core/bearer.h"
#include "core/error.h"
#include "core/log.h"
#include "core/path_pattern.h"
#include "data/image.h"
#include "eval/top_k.h"

namespace ddpipe::serve {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

using Handler = HttpResponse (Api::*)(const HttpRequest&, const Api::Match&);

enum class Access { kToken, kOpen };  // kOpen: answered without a token (health checks)

struct Api::Route {
  const char* method;   // the one it answers (HEAD counts as GET)
  const char* pattern;  // core/path_pattern.h; without its optional part, the metrics label
  Access access;
  Handler handler;
};

struct Api::Match {
  const Route* route = nullptr;        // the row for the path and method, if any
  std::string endpoint = "unmatched";  // the metrics label: a pattern, never the raw path
  std::string allow;                   // the methods the path's pattern answers, or "" (404)
  core::PathParams params;             // "name" (the model), "version" (absent: the loaded one)

  std::string param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  }
};

struct Api::V2Input {
  const json* tensor = nullptr;  // inputs[0], inside the request body
  json shape;                    // an array of integers
  int64_t n = 0;                 // the batch, 1 to max_inputs
};

const std::vector<Api::Route>& Api::routes() {
  using A = Access;
  // The first pattern that matches a path decides which endpoint it is (so ":name:predict"
  // comes before ":name"); a pattern may have a row per method. docs/serving.md lists them.
  static const std::vector<Route> kRoutes = {
      {"POST", "/predict", A::kToken, &Api::predict},
      {"GET", "/v2/health/live", A::kOpen, &Api::v2_live},
      {"GET", "/v2/health/ready", A::kOpen, &Api::v2_ready},
      {"GET", "/v2", A::kToken, &Api::v2_server},
      {"GET", "/v2/models/:name[/versions/:version]", A::kToken, &Api::v2_model},
      {"GET", "/v2/models/:name[/versions/:version]/ready", A::kToken, &Api::v2_model_ready},
      {"POST", "/v2/models/:name[/versions/:version]/infer", A::kToken, &Api::v2_infer},
      {"GET", "/v1/models", A::kToken, &Api::v1_models},
      {"POST", "/v1/models/:name:predict", A::kToken, &Api::v1_predict},
      {"GET", "/v1/models/:name", A::kToken, &Api::v1_model},
      {"GET", "/metrics", A::kToken, &Api::metrics},
  };
  return kRoutes;
}

std::vector<std::string> Api::endpoints() {
  std::vector<std::string> out;
  for (const Route& r : routes()) out.push_back(std::string(r.method) + " " + r.pattern);
  return out;
}

Api::Match Api::lookup(const std::string& path, const std::string& method) {
  Match m;
  const char* pattern = nullptr;
  for (const Route& r : routes()) {
    if (!pattern) {
      if (!core::match_path(r.pattern, path, m.params)) continue;
      pattern = r.pattern;
      m.endpoint = core::pattern_label(pattern);
    } else if (std::string_view(r.pattern) != pattern) {
      continue;
    }
    m.allow += (m.allow.empty() ? "" : ", ") + std::string(r.method);
    if ((method == "HEAD" ? "GET" : method) == r.method) m.route = &r;
  }
  return m;
}

namespace {

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
    json top = json::array();
    for (const int64_t c : eval::top_k(p.probabilities, top_k)) {
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

Api::Api(ApiOptions options, ModelHost& host, Batcher& batcher, Metrics& metrics,
         ui::Api* dashboard)
    : options_(std::move(options)),
      host_(host),
      batcher_(batcher),
      metrics_(metrics),
      dashboard_(dashboard) {}

static bool is_dashboard_path(const std::string& path) {
  return path == "/" || path == "/ui" || path.compare(0, 4, "/ui/") == 0;
}

HttpResponse Api::handle(const HttpRequest& req) noexcept {
  const auto start = Clock::now();
  ++in_flight_;
  Match match;
  HttpResponse res;
  try {
    if (dashboard_ && is_dashboard_path(req.path)) {
      match.endpoint = req.path == "/" ? "/" : "/ui";  // one metrics label for the dashboard
      res = dashboard(req);
    } else {
      match = lookup(req.path, req.method);
      if (match.allow.empty()) {
        throw HttpError(404, "no endpoint " + req.path + " (see docs/serving.md)");
      }
      if (!match.route) {
        res = error_response(
            405, req.method + " is not allowed on " + req.path + " (use " + match.allow + ")");
        res.headers.emplace_back("Allow", match.allow);
      } else {
        if (match.route->access != Access::kOpen) authorize(req);
        res = (this->*match.route->handler)(req, match);
      }
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
  res = finish(req, std::move(res), match.endpoint, start);
  --in_flight_;
  return res;
}

HttpResponse Api::refuse(const HttpRequest& req, int status, const std::string& message) noexcept {
  try {
    return finish(req, error_response(status, message), lookup(req.path, req.method).endpoint,
                  Clock::now());
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
  if (!core::bearer_authorized(req.header("authorization"), options_.auth_token)) {
    throw HttpError(401, "missing or wrong bearer token (send Authorization: Bearer <token>)");
  }
}

void Api::check_model(const Match& match, const ModelPtr& loaded) const {
  const std::string model = match.param("name"), version = match.param("version");
  if (model != host_.name()) {
    throw HttpError(404,
                    "unknown model '" + model + "' (this server serves '" + host_.name() + "')");
  }
  if (!version.empty() && (!loaded || loaded->version != version)) {
    throw HttpError(404, "model " + host_.name() + " version '" + version +
                             "' is not loaded (loaded: " + (loaded ? loaded->version : "none") +
                             ")");
  }
}

HttpResponse Api::dashboard(const HttpRequest& req) {
  if (req.path == "/" || req.path == "/ui") {
    HttpResponse res = json_response(302, {{"location", "/ui/"}});
    res.headers.emplace_back("Location", "/ui/");
    return res;
  }
  ui::Request r;
  r.method = req.method;
  r.path = req.path.substr(3);
  r.query = req.query;
  r.body = req.body;
  r.content_type = req.header("content-type");
  r.authorized = core::bearer_authorized(req.header("authorization"), options_.auth_token);
  ui::Response out = dashboard_->handle(r);
  HttpResponse res;
  res.status = out.status;
  res.content_type = std::move(out.content_type);
  res.body = std::move(out.body);
  res.headers = std::move(out.headers);
  return res;
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

HttpResponse Api::predict(const HttpRequest& req, const Match&) {
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

HttpResponse Api::metrics(const HttpRequest&, const Match&) {
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

HttpResponse Api::v1_models(const HttpRequest&, const Match&) {
  return json_response(200, {{"models", json::array({host_.name()})}});
}

HttpResponse Api::v1_model(const HttpRequest&, const Match& match) {
  const ModelPtr m = host_.current();
  check_model(match, m);
  if (!m) {
    return json_response(
        503, {{"name", host_.name()}, {"ready", false}, {"error", host_.status().error}});
  }
  return json_response(200, {{"name", host_.name()}, {"ready", true}});
}

HttpResponse Api::v1_predict(const HttpRequest& req, const Match& match) {
  check_model(match, host_.current());
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
          image_input(*m, core::base64_decode(b64->get_ref<const std::string&>()), where);
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

HttpResponse Api::v2_server(const HttpRequest&, const Match&) {
  return json_response(
      200, {{"name", "ddpipe"}, {"version", DDPIPE_VERSION}, {"extensions", json::array()}});
}

HttpResponse Api::v2_live(const HttpRequest&, const Match&) {
  return json_response(200, {{"live", true}});
}

HttpResponse Api::v2_ready(const HttpRequest&, const Match&) {
  const bool ready = host_.current() != nullptr && !draining_;
  return json_response(ready ? 200 : 503, {{"ready", ready}});
}

HttpResponse Api::v2_model(const HttpRequest&, const Match& match) {
  const ModelPtr loaded = host_.current();
  check_model(match, loaded);
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
            {"parameters", {{"classes", m->classes}, {"arch", m->manifest.model_spec.arch}}}});
}

HttpResponse Api::v2_model_ready(const HttpRequest&, const Match& match) {
  const ModelPtr m = host_.current();
  check_model(match, m);
  if (!m) {
    return json_response(
        503, {{"name", host_.name()}, {"ready", false}, {"error", host_.status().error}});
  }
  return json_response(200, {{"name", host_.name()}, {"ready", true}, {"version", m->version}});
}

// ---- Open Inference Protocol inference, step by step -------------------------------------------

namespace {

// Checks the request's envelope, shape and batch: what needs no model.
Api::V2Input v2_input(const json& body, int64_t max_inputs) {
  if (!body.is_object() || !body.contains("inputs") || !body["inputs"].is_array() ||
      body["inputs"].size() != 1 || !body["inputs"][0].is_object()) {
    throw HttpError(400,
                    "expected {\"inputs\": [one input]}: 'input' (FP32 [N,C,H,W], "
                    "preprocessed) or 'image' (BYTES [N], base64 PNG/JPEG)");
  }
  Api::V2Input in;
  in.tensor = &body["inputs"][0];
  in.shape = in.tensor->value("shape", json());
  if (!in.shape.is_array() || in.shape.empty() ||
      !std::all_of(in.shape.begin(), in.shape.end(),
                   [](const json& d) { return d.is_number_integer(); })) {
    throw HttpError(400, "inputs[0].shape: expected an array of integers");
  }
  if (!in.tensor->contains("data") || !(*in.tensor)["data"].is_array()) {
    throw HttpError(400, "inputs[0].data: expected an array");
  }
  in.n = in.shape[0].get<int64_t>();
  if (in.n < 1) throw HttpError(400, "inputs[0].shape[0]: the batch must be at least 1");
  if (in.n > max_inputs) {
    throw HttpError(413, "batch of " + std::to_string(in.n) + ", over the limit of " +
                             std::to_string(max_inputs) + " per request");
  }
  return in;
}

// The outputs the request names, in its order; all four when it names none.
std::vector<std::string> v2_requested_outputs(const json& body) {
  std::vector<std::string> wanted = {"probabilities", "class_index", "confidence", "prediction"};
  if (!body.contains("outputs")) return wanted;
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
  return requested;
}

json v2_outputs(const std::vector<std::string>& names, const std::vector<eval::Prediction>& preds,
                int64_t n) {
  const int64_t k = preds.empty() ? 0 : static_cast<int64_t>(preds[0].probabilities.size());
  json outputs = json::array();
  for (const std::string& out : names) {
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
  return outputs;
}

}  // namespace

// The network's input: FP32 numbers as given, or BYTES images decoded and preprocessed.
std::vector<float> Api::v2_tensor(const V2Input& in, const eval::LoadedModel& m) const {
  const json& input = *in.tensor;
  const std::string name = input.value("name", "");
  const std::string datatype = input.value("datatype", "");
  const int64_t n = in.n;
  std::vector<float> inputs;
  if (name == "input" && datatype == "FP32") {
    const json expected = json::array({n, m.channels, m.height, m.width});
    if (in.shape != expected) {
      throw HttpError(400,
                      "inputs[0].shape: expected " + expected.dump() + ", got " + in.shape.dump());
    }
    inputs.reserve(static_cast<size_t>(n * m.channels * m.height * m.width));
    flatten(input["data"], inputs, 0, "inputs[0].data");
    if (static_cast<int64_t>(inputs.size()) != n * m.channels * m.height * m.width) {
      throw HttpError(400, "inputs[0].data: " + std::to_string(inputs.size()) +
                               " numbers for shape " + in.shape.dump());
    }
  } else if (name == "image" && datatype == "BYTES") {
    const json& data = input["data"];
    if (in.shape.size() != 1 || static_cast<int64_t>(data.size()) != n) {
      throw HttpError(400, "inputs[0]: 'image' takes shape [N] and N base64 strings");
    }
    for (int64_t i = 0; i < n; ++i) {
      const json& s = data[static_cast<size_t>(i)];
      const std::string where = "inputs[0].data[" + std::to_string(i) + "]";
      if (!s.is_string()) throw HttpError(400, where + ": expected a base64 string");
      const std::vector<float> decoded =
          image_input(m, core::base64_decode(s.get_ref<const std::string&>()), where);
      inputs.insert(inputs.end(), decoded.begin(), decoded.end());
    }
  } else {
    throw HttpError(400,
                    "inputs[0]: expected name 'input' with datatype FP32 or name 'image' "
                    "with datatype BYTES, got '" +
                        name + "' " + datatype);
  }
  return inputs;
}

HttpResponse Api::v2_infer(const HttpRequest& req, const Match& match) {
  check_model(match, host_.current());
  const json body = parse_json(req);
  const V2Input in = v2_input(body, options_.max_inputs);
  const ModelPtr m = ready_model();
  std::vector<float> inputs = v2_tensor(in, *m);
  const std::vector<std::string> wanted = v2_requested_outputs(body);
  const std::vector<eval::Prediction> preds = infer(m, std::move(inputs), in.n);
  json res = {{"model_name", m->model},
              {"model_version", m->version},
              {"outputs", v2_outputs(wanted, preds, in.n)}};
  if (body.contains("id") && body["id"].is_string()) res["id"] = body["id"];
  return json_response(200, res);
}

}  // namespace ddpipe::serve
