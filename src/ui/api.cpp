#include "ui/api.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "core/error.h"
#include "core/log.h"
#include "core/path_pattern.h"
#include "registry/compare.h"
#include "registry/registry.h"
#include "runs/runs.h"
#include "ui/assets.h"

namespace ddpipe::ui {

using nlohmann::json;

namespace {

// A refusal with its own status (bad route, method, body, missing token, refused promotion).
class Refusal : public std::runtime_error {
 public:
  Refusal(int status, const std::string& message, json body = json::object())
      : std::runtime_error(message), status_(status), body_(std::move(body)) {}
  int status() const { return status_; }
  const json& body() const { return body_; }

 private:
  int status_;
  json body_;
};

enum class Access { kToken, kOpen };  // kOpen: the pages themselves, so they can ask for a token

Response json_response(int status, const json& body) {
  Response res;
  res.status = status;
  res.body = body.dump();
  return res;
}

Response error_json(int status, const std::string& message, json body = json::object()) {
  body["error"] = message;
  return json_response(status, body);
}

// The status of a failure that is not a Refusal: an alias moved by someone else meanwhile 409,
// a core::Error by its kind (core::http_status), anything else 500.
int status_of(const std::exception& e) {
  if (dynamic_cast<const registry::AliasConflict*>(&e)) return 409;
  const auto* err = dynamic_cast<const core::Error*>(&e);
  return err ? core::http_status(err->kind()) : 500;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

json parse_body(const Request& req) {
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error& e) {
    throw Refusal(400, std::string("malformed JSON body: ") + e.what());
  }
  if (!body.is_object()) throw Refusal(400, "expected a JSON object as the body");
  return body;
}

// The string field `key` of a request body: "" when absent and optional, else 400.
std::string body_string(const json& body, const std::string& key, bool required) {
  if (!body.contains(key) || body[key].is_null()) {
    if (required) throw Refusal(400, "the body needs the string field \"" + key + "\"");
    return "";
  }
  if (!body[key].is_string()) {
    throw Refusal(400, "field \"" + key + "\" must be a string, got " + body[key].dump());
  }
  return body[key].get<std::string>();
}

// Metrics of a manifest's final metrics, or null.
json final_metric(const registry::Manifest& m, const std::string& key) {
  return m.final_metrics.is_object() && m.final_metrics.contains(key) ? m.final_metrics[key]
                                                                      : json();
}

json steps_json(registry::Registry& reg, const std::string& model, const std::string& version) {
  json steps = json::array();
  for (json& row : reg.read_steps(model, version)) steps.push_back(std::move(row));
  return steps;
}

// The downloadable files of a version: the name → the store key they are read from.
std::vector<std::pair<std::string, std::string>> version_files(const std::string& model,
                                                               const std::string& version) {
  const std::string prefix = registry::Registry::version_prefix(model, version);
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* f :
       {"model.pt", "model.pth", "model.safetensors", "report.html", "manifest.json"}) {
    out.emplace_back(f, prefix + f);
  }
  out.emplace_back("metrics.json", registry::Registry::metrics_key(model, version));
  out.emplace_back("steps.jsonl", registry::Registry::steps_key(model, version));
  return out;
}

// The size of the object at `key`, or nullopt when it does not exist.
std::optional<uint64_t> object_size(storage::Store& store, const std::string& key) {
  for (const storage::ObjectInfo& o : store.list(key)) {
    if (o.key == key) return o.size;
  }
  return std::nullopt;
}

}  // namespace

// ---- the route table ------------------------------------------------------------------------

struct Api::Route {
  const char* method;   // the one it answers (HEAD counts as GET)
  const char* pattern;  // after /ui; ":name" binds one segment, "*name" the rest of the path
  Access access;
  Response (Api::*handler)(const Request&, const Match&);
};

struct Api::Match {
  const Route* route = nullptr;          // the row for the path and method, if any
  std::string allow;                     // the methods the path's pattern answers; "" = 404
  std::map<std::string, std::string> p;  // the bound segments

  const std::string& param(const std::string& key) const { return p.at(key); }
};

namespace {

// A route's pattern (core/path_pattern.h) against a path; "/*path" (the assets) takes any path
// but the API's and the files'.
bool match_pattern(const std::string& pattern, const std::string& path,
                   std::map<std::string, std::string>& params) {
  params.clear();
  if (!core::match_path(pattern, path, params)) return false;
  const bool reserved = path == "/api" || path == "/files" || starts_with(path, "/api/") ||
                        starts_with(path, "/files/");
  return pattern.rfind("/*", 0) != 0 || !reserved;
}

}  // namespace

const std::vector<Api::Route>& Api::routes() {
  using A = Access;
  // docs/ui.md lists them, in this order. The assets come last: "*path" takes any path that is
  // not under /api/ or /files/.
  static const std::vector<Route> kRoutes = {
      {"GET", "/api/runs", A::kToken, &Api::runs},
      {"GET", "/api/runs/:model/:run_id", A::kToken, &Api::run},
      {"GET", "/api/models", A::kToken, &Api::models},
      {"GET", "/api/models/:model/versions/:ref", A::kToken, &Api::version},
      {"GET", "/api/models/:model/compare", A::kToken, &Api::compare},
      {"GET", "/api/models/:model/aliases", A::kToken, &Api::aliases},
      {"POST", "/api/models/:model/promote", A::kToken, &Api::promote},
      {"POST", "/api/models/:model/rollback", A::kToken, &Api::rollback},
      {"GET", "/files/:model/:version/:file", A::kToken, &Api::file},
      {"GET", "/*path", A::kOpen, &Api::asset},
  };
  return kRoutes;
}

std::vector<std::string> Api::endpoints() {
  std::vector<std::string> out;
  for (const Route& r : routes()) out.push_back(std::string(r.method) + " /ui" + r.pattern);
  return out;
}

Api::Api(storage::Store& store, ApiOptions options) : store_(store), options_(options) {}

Response Api::handle(const Request& req) noexcept {
  try {
    return dispatch(req);
  } catch (const Refusal& e) {
    Response res = error_json(e.status(), e.what(), e.body());
    if (e.status() == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return res;
  } catch (const std::exception& e) {
    const int status = status_of(e);
    if (status >= 500) {
      core::log::error("ui", "request failed", {{"path", "/ui" + req.path}, {"error", e.what()}});
    }
    if (status >= 500 && !dynamic_cast<const core::Error*>(&e)) {
      return error_json(500, "internal error (details in the server log)");
    }
    return error_json(status, e.what());
  } catch (...) {
    return error_json(500, "internal error (details in the server log)");
  }
}

Response Api::dispatch(const Request& req) {
  Match m;
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  for (const Route& r : routes()) {
    std::map<std::string, std::string> params;
    if (!match_pattern(r.pattern, req.path, params)) continue;
    m.allow += (m.allow.empty() ? "" : ", ") + std::string(r.method);
    if (method == r.method && !m.route) {
      m.route = &r;
      m.p = params;
    }
  }
  if (m.allow.empty()) throw Refusal(404, "no endpoint /ui" + req.path + " (see docs/ui.md)");
  if (!m.route) {
    Response res = error_json(
        405, req.method + " is not allowed on /ui" + req.path + " (use " + m.allow + ")");
    res.headers.emplace_back("Allow", m.allow);
    return res;
  }
  if (m.route->access == Access::kToken && !req.authorized) {
    throw Refusal(401, "missing or wrong bearer token (send Authorization: Bearer <token>)");
  }
  // A POST must say it is JSON: a browser sends that type across origins only after a CORS
  // preflight this server never grants, so another site's page cannot post a form (a text/plain
  // body) to a dashboard on localhost that has no token.
  if (method == "POST" && req.content_type.rfind("application/json", 0) != 0) {
    throw Refusal(415, "POST /ui" + req.path + " needs Content-Type: application/json, got '" +
                           req.content_type + "'");
  }
  return (this->*m.route->handler)(req, m);
}

// ---- endpoints ------------------------------------------------------------------------------

Response Api::asset(const Request&, const Match& m) {
  std::string path = m.param("path");
  if (path.empty() || path.back() == '/') path += "index.html";
  const Asset* a = Assets::find(path);
  if (!a) throw Refusal(404, "no file /ui/" + path + " in the dashboard");
  Response res;
  res.content_type = std::string(a->content_type);
  res.body = std::string(a->bytes);
  res.headers.emplace_back("Cache-Control", "no-cache");
  return res;
}

Response Api::runs(const Request&, const Match&) {
  const double now = runs::unix_now();
  json out = json::array();
  for (const runs::RunRecord& r : runs::list_runs(store_)) {
    out.push_back(runs::shown_json(r, now, options_.runs_lost_after_s));
  }
  return json_response(200, out);
}

Response Api::run(const Request&, const Match& m) {
  const runs::RunRecord r = runs::read_run(store_, m.param("model"), m.param("run_id"));
  json out = runs::shown_json(r, runs::unix_now(), options_.runs_lost_after_s);
  out["epochs"] = json::array();
  out["steps"] = json::array();
  if (!r.stamp.empty()) {
    registry::Registry reg(store_);
    const std::string version = "model_v" + r.stamp;
    const std::optional<json> metrics = reg.read_metrics(r.name, version);
    if (metrics && metrics->is_object() && metrics->contains("epochs") &&
        (*metrics)["epochs"].is_array()) {
      out["epochs"] = (*metrics)["epochs"];
    }
    out["steps"] = steps_json(reg, r.name, version);
  }
  return json_response(200, out);
}

Response Api::models(const Request&, const Match&) {
  registry::Registry reg(store_);
  json out = json::array();
  for (const std::string& model : reg.models()) {
    json versions = json::array();
    std::vector<std::string> names = reg.versions(model);
    std::reverse(names.begin(), names.end());
    for (const std::string& v : names) {
      json row = {{"version", v}};
      try {
        const registry::Manifest man = reg.manifest(model, v);
        row["created"] = man.created;
        row["test_acc"] = final_metric(man, "test_acc");
        row["test_loss"] = final_metric(man, "test_loss");
        row["epochs"] = man.epochs.is_array() ? man.epochs.size() : 0;
        row["world_size"] = man.world_size;
      } catch (const core::Error& e) {  // one unreadable manifest must not hide the others
        row["error"] = e.what();
      }
      versions.push_back(std::move(row));
    }
    out.push_back({{"name", model}, {"aliases", reg.aliases(model)}, {"versions", versions}});
  }
  return json_response(200, out);
}

Response Api::version(const Request&, const Match& m) {
  registry::Registry reg(store_);
  const std::string& model = m.param("model");
  registry::validate_name("model", model);
  const std::string version = reg.resolve(model, m.param("ref"));
  json files = json::array();
  for (const auto& [name, key] : version_files(model, version)) {
    if (const std::optional<uint64_t> size = object_size(store_, key)) {
      files.push_back({{"name", name},
                       {"size", *size},
                       {"url", "/ui/files/" + model + "/" + version + "/" + name}});
    }
  }
  return json_response(200, {{"version", version},
                             {"manifest", reg.manifest_json(model, version)},
                             {"steps", steps_json(reg, model, version)},
                             {"files", files}});
}

Response Api::compare(const Request& req, const Match& m) {
  registry::Registry reg(store_);
  const std::string& model = m.param("model");
  registry::validate_name("model", model);
  auto it = req.query.find("refs");
  const std::vector<std::string> refs =
      it == req.query.end() ? std::vector<std::string>() : split(it->second, ',');
  if (refs.size() < 2 || refs.size() > 8 ||
      std::any_of(refs.begin(), refs.end(), [](const std::string& r) { return r.empty(); })) {
    throw Refusal(400, "refs: expected 2 to 8 comma-separated versions or aliases (?refs=a,b)");
  }
  json versions = json::array();
  std::vector<registry::Manifest> manifests;
  for (const std::string& ref : refs) {
    const std::string v = reg.resolve(model, ref);
    manifests.push_back(reg.manifest(model, v));
    versions.push_back({{"version", v},
                        {"epochs", manifests.back().epochs},
                        {"steps", steps_json(reg, model, v)}});
  }
  return json_response(
      200, {{"versions", versions}, {"config_diff", registry::diff(manifests[0], manifests[1])}});
}

Response Api::aliases(const Request&, const Match& m) {
  registry::Registry reg(store_);
  const std::string& model = m.param("model");
  registry::validate_name("model", model);
  if (reg.versions(model).empty()) throw Refusal(404, "no model '" + model + "' in the store");
  json out = json::object();
  for (const auto& [alias, version] : reg.aliases(model)) {
    json history = json::array();
    for (const registry::AliasMove& move : reg.alias_history(model, alias)) {
      history.push_back(move.to_json());
    }
    out[alias] = {{"version", version}, {"history", history}};
  }
  return json_response(200, out);
}

Response Api::promote(const Request& req, const Match& m) {
  const json body = parse_body(req);
  const std::string alias = body_string(body, "alias", true);
  const std::string ref = body_string(body, "ref", true);
  const std::string reason = body_string(body, "reason", false);
  std::optional<registry::Gate> gate;
  if (const std::string baseline = body_string(body, "if_better_than", false); !baseline.empty()) {
    gate = registry::Gate{baseline};
    if (const std::string metric = body_string(body, "metric", false); !metric.empty()) {
      gate->metric = metric;
    }
    if (body.contains("min_delta") && !body["min_delta"].is_null()) {
      if (!body["min_delta"].is_number()) {
        throw Refusal(400, "field \"min_delta\" must be a number, got " + body["min_delta"].dump());
      }
      gate->min_delta = body["min_delta"].get<double>();
    }
  }
  registry::Registry reg(store_);
  const registry::Promotion p = reg.promote(m.param("model"), alias, ref, reason, gate);
  const json verdict = p.verdict ? p.verdict->to_json() : json();
  if (!p.promoted) {
    const std::string why = p.verdict ? p.verdict->reason : "the gate refused the promotion";
    return error_json(409, why,
                      {{"promoted", false}, {"version", p.version}, {"verdict", verdict}});
  }
  return json_response(200, {{"promoted", true},
                             {"version", p.version},
                             {"move", p.move.to_json()},
                             {"verdict", verdict}});
}

Response Api::rollback(const Request& req, const Match& m) {
  const json body = parse_body(req);
  const std::string alias = body_string(body, "alias", true);
  const std::string reason = body_string(body, "reason", false);
  registry::Registry reg(store_);
  return json_response(200,
                       {{"move", reg.rollback_alias(m.param("model"), alias, reason).to_json()}});
}

Response Api::file(const Request&, const Match& m) {
  const std::string &model = m.param("model"), &version = m.param("version"),
                    &name = m.param("file");
  registry::validate_name("model", model);
  registry::validate_name("version", version);
  const std::string manifest = registry::Registry::version_prefix(model, version) + "manifest.json";
  for (const auto& [file, key] : version_files(model, version)) {
    if (file != name || !store_.exists(manifest) || !store_.exists(key)) continue;
    Response res;
    const std::string ext = name.substr(name.rfind('.') + 1);
    res.content_type = ext == "html"    ? "text/html; charset=utf-8"
                       : ext == "json"  ? "application/json"
                       : ext == "jsonl" ? "application/x-ndjson"
                                        : "application/octet-stream";
    res.body = store_.get(key);
    const std::string disposition = name == "report.html" ? "inline" : "attachment";
    res.headers.emplace_back("Content-Disposition", disposition + "; filename=\"" + name + "\"");
    return res;
  }
  throw Refusal(404, "no file '" + name + "' in " + model + " " + version +
                         " (model.pt, model.pth, model.safetensors, report.html, manifest.json, "
                         "metrics.json, steps.jsonl, when the version has them)");
}

}  // namespace ddpipe::ui
