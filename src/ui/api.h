// ddpipe::ui — the dashboard's HTTP endpoints under /ui, independent of the transport: the
// embedded pages (assets.h) and the JSON API over the store's runs and models (docs/ui.md lists
// every route with an example answer). `ddpipe serve` and `ddpipe ui` mount it (serve/api.cpp).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace ddpipe::ui {

struct ApiOptions {
  double runs_lost_after_s = 120.0;  // telemetry.runs_lost_after_s: when a run shows as lost
};

// One request, as the transport parsed it. `path` is what follows the "/ui" prefix ("/",
// "/api/runs", …); `authorized` is whether it carried the configured bearer token (true when no
// token is configured): the caller checks the token (core::bearer_authorized).
struct Request {
  std::string method;  // "GET" (HEAD counts as GET), "POST"
  std::string path;
  std::map<std::string, std::string> query;  // decoded
  std::string body;
  std::string content_type;  // of the body, as sent ("application/json; charset=utf-8", …)
  bool authorized = true;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

class Api {
 public:
  // `store` must outlive the Api; the Api keeps no other state.
  Api(storage::Store& store, ApiOptions options);

  // Answers one request. Never throws: a failure becomes {"error": "…"} with 400 (bad input),
  // 401 (an /api or /files route without authorization), 404 (unknown route, model, version,
  // run, file or asset), 405 (wrong method, with Allow), 409 (a promotion the gate refuses or a
  // concurrent alias move), 415 (a POST whose body is not declared application/json), 503 (the
  // store failed: core::http_status) or 500 (anything else; the details go to the log).
  // Thread-safe as far as the store is.
  Response handle(const Request& req) noexcept;

  // "METHOD /ui<pattern>" of every row of the route table, in its order (docs/ui.md lists them;
  // a test compares).
  static std::vector<std::string> endpoints();

  struct Route;  // one row of the route table (api.cpp)
  struct Match;  // a path looked up in it (api.cpp)

 private:
  // The route table: every endpoint, once. Matching, 404, 405 and authorization come from it.
  static const std::vector<Route>& routes();

  Response dispatch(const Request& req);
  Response asset(const Request& req, const Match& m);
  Response runs(const Request& req, const Match& m);
  Response run(const Request& req, const Match& m);
  Response models(const Request& req, const Match& m);
  Response version(const Request& req, const Match& m);
  Response compare(const Request& req, const Match& m);
  Response aliases(const Request& req, const Match& m);
  Response promote(const Request& req, const Match& m);
  Response rollback(const Request& req, const Match& m);
  Response file(const Request& req, const Match& m);

  storage::Store& store_;
  const ApiOptions options_;
};

}  // namespace ddpipe::ui
