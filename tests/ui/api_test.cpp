// ui::Api against a real local store: every endpoint's JSON, 404s, promotion through the gate
// (passed and refused), rollback, files, the embedded pages and authorization.
#include "ui/api.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <regex>
#include <sstream>
#include <string>

#include "core/fs.h"
#include "registry/registry.h"
#include "report/sample_report.h"
#include "runs/runs.h"
#include "storage/store.h"
#include "test_util.h"
#include "ui/assets.h"

namespace ddpipe::ui {
namespace {

using nlohmann::json;

constexpr const char* kV1 = "model_v20261201_083000";
constexpr const char* kV2 = "model_v20261206_101500";

// "fm" with two versions (v2 better, with steps and a report), production at v1, and a
// succeeded run whose record names v2's stamp.
struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<storage::Store> store = storage::open_store(dir.path().string());
  registry::Registry reg{*store};
  Api api{*store, ApiOptions{120.0}};

  Fixture() {
    EXPECT_EQ(reg.publish("fm", {{"model.pt", "weights-1"}},
                          report::sample::manifest(3, 0.3, 1.0, 1), "20261201_083000"),
              kV1);
    EXPECT_EQ(reg.publish("fm", {{"model.pt", "weights-2"}, {"report.html", "<html></html>"}},
                          report::sample::manifest(5, 0.25, 1.0, 2), "20261206_101500"),
              kV2);
    reg.write_steps("fm", "20261206_101500", report::sample::steps(5, 4, 0.25, 2));
    reg.write_metrics("fm", "20261206_101500",
                      {{"epochs", report::sample::epochs(5, 0.25, 1.0, 2)}});
    reg.set_alias("fm", "production", kV1);
    runs::update_run(*store, "fm", "run-2", [](runs::RunRecord& r) {
      r.status = runs::kSucceeded;
      r.world_size = 2;
      r.version = kV2;
      r.stamp = "20261206_101500";
    });
  }

  Response call(const std::string& method, const std::string& path, const std::string& body = "",
                std::map<std::string, std::string> query = {}, bool authorized = true) {
    Request req;
    req.method = method;
    req.path = path;
    req.query = std::move(query);
    req.body = body;
    if (method == "POST") req.content_type = "application/json";
    req.authorized = authorized;
    return api.handle(req);
  }
  json get_json(const std::string& path, int status = 200,
                std::map<std::string, std::string> query = {}) {
    const Response res = call("GET", path, "", std::move(query));
    EXPECT_EQ(res.status, status) << path << ": " << res.body;
    EXPECT_EQ(res.content_type, "application/json") << path;
    return json::parse(res.body);
  }
};

TEST(UiApi, RunsListsShownRecordsNewestFirst) {
  Fixture f;
  runs::RunRecord r = runs::update_run(*f.store, "fm", "run-3", [](runs::RunRecord& r) {
    r.status = runs::kRunning;
    r.started_unix += 10;
  });
  r.heartbeat_unix -= 1000;  // long ago: lost (update_run sets it to now)
  f.store->put(runs::run_key("fm", "run-3"), r.to_json().dump());
  const json runs = f.get_json("/api/runs");
  ASSERT_EQ(runs.size(), 2u) << runs.dump();
  EXPECT_EQ(runs[0]["run_id"], "run-3");
  EXPECT_EQ(runs[0]["status"], "lost");
  EXPECT_EQ(runs[0]["stored_status"], "running");
  EXPECT_EQ(runs[1]["run_id"], "run-2");
  EXPECT_EQ(runs[1]["stamp"], "20261206_101500");
}

TEST(UiApi, RunHasItsEpochsAndSteps) {
  Fixture f;
  const json run = f.get_json("/api/runs/fm/run-2");
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_EQ(run["epochs"].size(), 5u);
  EXPECT_EQ(run["steps"].size(), 20u);
  runs::update_run(*f.store, "fm", "run-old", [](runs::RunRecord& r) { r.status = "failed"; });
  const json old = f.get_json("/api/runs/fm/run-old");  // no stamp: no epochs, no steps
  EXPECT_EQ(old["epochs"], json::array());
  EXPECT_EQ(old["steps"], json::array());
  const json missing = f.get_json("/api/runs/fm/run-9", 404);
  EXPECT_NE(missing["error"].get<std::string>().find("run-9"), std::string::npos);
}

TEST(UiApi, ModelsListVersionsNewestFirstWithAliases) {
  Fixture f;
  const json models = f.get_json("/api/models");
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["name"], "fm");
  EXPECT_EQ(models[0]["aliases"]["production"], kV1);
  EXPECT_EQ(models[0]["aliases"]["model_latest"], kV2);
  const json& versions = models[0]["versions"];
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0]["version"], kV2);
  EXPECT_EQ(versions[0]["epochs"], 5);
  EXPECT_EQ(versions[0]["world_size"], 2);
  EXPECT_TRUE(versions[0]["test_acc"].is_number());
  EXPECT_TRUE(versions[0]["test_loss"].is_number());
  EXPECT_EQ(versions[0]["created"].get<std::string>().empty(), false);
}

TEST(UiApi, VersionHasManifestStepsAndFiles) {
  Fixture f;
  const json v = f.get_json("/api/models/fm/versions/latest");
  EXPECT_EQ(v["version"], kV2);
  EXPECT_EQ(v["manifest"]["version"], kV2);
  EXPECT_EQ(v["steps"].size(), 20u);
  json names = json::array();
  for (const json& file : v["files"]) names.push_back(file["name"]);
  EXPECT_EQ(names,
            json({"model.pt", "report.html", "manifest.json", "metrics.json", "steps.jsonl"}));
  EXPECT_EQ(v["files"][0]["size"], 9);
  EXPECT_EQ(v["files"][0]["url"], std::string("/ui/files/fm/") + kV2 + "/model.pt");
  f.get_json("/api/models/fm/versions/model_v19990101_000000", 404);
  f.get_json("/api/models/nope/versions/latest", 404);
}

TEST(UiApi, CompareGivesCurvesAndTheConfigDiff) {
  Fixture f;
  const json c =
      f.get_json("/api/models/fm/compare", 200, {{"refs", std::string("production,") + kV2}});
  ASSERT_EQ(c["versions"].size(), 2u);
  EXPECT_EQ(c["versions"][0]["version"], kV1);
  EXPECT_EQ(c["versions"][0]["epochs"].size(), 3u);
  EXPECT_EQ(c["versions"][1]["steps"].size(), 20u);
  EXPECT_EQ(c["config_diff"]["a"], kV1);
  EXPECT_TRUE(c["config_diff"]["config"].is_array());
  f.get_json("/api/models/fm/compare", 400, {{"refs", "latest"}});
  f.get_json("/api/models/fm/compare", 404, {{"refs", "latest,canary"}});
}

TEST(UiApi, AliasesHaveVersionAndHistory) {
  Fixture f;
  const json a = f.get_json("/api/models/fm/aliases");
  EXPECT_EQ(a["production"]["version"], kV1);
  ASSERT_EQ(a["production"]["history"].size(), 1u);
  EXPECT_EQ(a["production"]["history"][0]["to"], kV1);
  EXPECT_EQ(a["model_latest"]["version"], kV2);
  f.get_json("/api/models/nope/aliases", 404);
}

TEST(UiApi, PromoteThroughTheGateAndRollBack) {
  Fixture f;
  Response res = f.call("POST", "/api/models/fm/promote",
                        json({{"alias", "production"},
                              {"ref", "latest"},
                              {"reason", "better"},
                              {"if_better_than", "production"}})
                            .dump());
  ASSERT_EQ(res.status, 200) << res.body;
  json out = json::parse(res.body);
  EXPECT_EQ(out["promoted"], true);
  EXPECT_EQ(out["version"], kV2);
  EXPECT_EQ(out["move"]["from"], kV1);
  EXPECT_EQ(out["move"]["reason"], "better");
  EXPECT_EQ(out["verdict"]["pass"], true);
  EXPECT_EQ(f.reg.resolve("fm", "production"), kV2);

  res = f.call("POST", "/api/models/fm/rollback", json({{"alias", "production"}}).dump());
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(json::parse(res.body)["move"]["to"], kV1);
  res = f.call("POST", "/api/models/fm/rollback", json({{"alias", "staging"}}).dump());
  EXPECT_EQ(res.status, 404) << res.body;
}

TEST(UiApi, PromotionTheGateRefusesIs409WithItsReason) {
  Fixture f;
  f.reg.set_alias("fm", "production", kV2);
  const Response res = f.call("POST", "/api/models/fm/promote",
                              json({{"alias", "production"},
                                    {"ref", kV1},
                                    {"if_better_than", "production"},
                                    {"metric", "test_acc"},
                                    {"min_delta", 0.0}})
                                  .dump());
  ASSERT_EQ(res.status, 409) << res.body;
  const json out = json::parse(res.body);
  EXPECT_EQ(out["promoted"], false);
  EXPECT_EQ(out["verdict"]["pass"], false);
  EXPECT_EQ(out["error"], out["verdict"]["reason"]);
  EXPECT_FALSE(out["error"].get<std::string>().empty());
  EXPECT_EQ(f.reg.resolve("fm", "production"), kV2);
}

TEST(UiApi, BadBodiesAre400) {
  Fixture f;
  EXPECT_EQ(f.call("POST", "/api/models/fm/promote", "{").status, 400);
  EXPECT_EQ(f.call("POST", "/api/models/fm/promote", R"({"alias": "production"})").status, 400);
  EXPECT_EQ(f.call("POST", "/api/models/fm/promote",
                   R"({"alias": "p", "ref": "latest", "if_better_than": "p", "min_delta": "x"})")
                .status,
            400);
  EXPECT_EQ(f.call("POST", "/api/models/fm/rollback", "[]").status, 400);
}

// Another site's page can post a form (text/plain, no preflight) to a dashboard on localhost;
// only JSON is taken, which a browser sends across origins only after a preflight.
TEST(UiApi, PostsOtherThanJsonAre415AndMoveNothing) {
  Fixture f;
  Request req;
  req.method = "POST";
  req.path = "/api/models/fm/promote";
  req.body = R"({"alias": "production", "ref": "latest"})";
  for (const char* type : {"", "text/plain", "application/x-www-form-urlencoded"}) {
    req.content_type = type;
    const Response res = f.api.handle(req);
    EXPECT_EQ(res.status, 415) << type << ": " << res.body;
    EXPECT_NE(res.body.find("application/json"), std::string::npos) << res.body;
  }
  req.content_type = "application/json; charset=utf-8";
  EXPECT_EQ(f.api.handle(req).status, 200);
}

TEST(UiApi, FilesAreServedWithTheirDisposition) {
  Fixture f;
  Response res = f.call("GET", std::string("/files/fm/") + kV2 + "/model.pt");
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "weights-2");
  EXPECT_EQ(res.content_type, "application/octet-stream");
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].second, "attachment; filename=\"model.pt\"");
  res = f.call("GET", std::string("/files/fm/") + kV2 + "/report.html");
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.headers[0].second, "inline; filename=\"report.html\"");
  res = f.call("GET", std::string("/files/fm/") + kV2 + "/steps.jsonl");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(f.call("GET", std::string("/files/fm/") + kV1 + "/report.html").status, 404);
  EXPECT_EQ(f.call("GET", std::string("/files/fm/") + kV2 + "/state.json").status, 404);
  EXPECT_EQ(f.call("GET", "/files/fm/..%2f/model.pt").status, 400);
  EXPECT_EQ(f.call("GET", "/files/fm/model_v20000101_000000/model.pt").status, 404);
}

TEST(UiApi, PagesAreEmbeddedAndOpen) {
  Fixture f;
  ASSERT_NE(Assets::find("index.html"), nullptr);
  Response res = f.call("GET", "/", "", {}, false);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(res.body, std::string(Assets::find("index.html")->bytes));
  EXPECT_EQ(f.call("GET", "/index.html", "", {}, false).status, 200);
  EXPECT_EQ(f.call("GET", "/no-such-file.js").status, 404);
  EXPECT_EQ(f.call("GET", "/api/nothing").status, 404);
  res = f.call("POST", "/api/runs");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.headers.at(0), std::make_pair(std::string("Allow"), std::string("GET")));
}

TEST(UiApi, WithoutAuthorizationTheApiAndFilesAre401) {
  Fixture f;
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/runs"},
           {"GET", "/api/models"},
           {"GET", "/api/models/fm/aliases"},
           {"POST", "/api/models/fm/rollback"},
           {"GET", std::string("/files/fm/") + kV2 + "/model.pt"}}) {
    const Response res = f.call(method, path, "{}", {}, false);
    EXPECT_EQ(res.status, 401) << path;
    EXPECT_TRUE(json::parse(res.body).contains("error")) << path;
  }
  EXPECT_EQ(f.reg.resolve("fm", "production"), kV1);  // the rollback did not happen
}

// The route table against the Endpoints table of docs/ui.md: one fact, two views.
TEST(UiApi, TheDocsListEveryEndpointOnce) {
  const std::string doc = core::read_file(std::string(DDPIPE_SOURCE_DIR) + "/docs/ui.md");
  const size_t start = doc.find("## Endpoints");
  ASSERT_NE(start, std::string::npos) << "no Endpoints section in docs/ui.md";
  std::istringstream section(doc.substr(start, doc.find("\n## ", start + 1) - start));
  const std::regex row(R"(^\| `(GET|POST) ([^`]+)` \|)");
  std::vector<std::string> docs, table = Api::endpoints();
  for (std::string line; std::getline(section, line);) {
    std::smatch m;
    if (std::regex_search(line, m, row)) docs.push_back(m[1].str() + " " + m[2].str());
  }
  std::sort(table.begin(), table.end());
  std::sort(docs.begin(), docs.end());
  EXPECT_EQ(docs, table);
  EXPECT_EQ(std::adjacent_find(table.begin(), table.end()), table.end());
}

}  // namespace
}  // namespace ddpipe::ui

namespace ddpipe::ui {
namespace {

// Hostile names in the dashboard's paths, query and bodies (as the transport hands them over,
// decoded or not): each is a 400 naming the field or a 404, never a file of another place.
TEST(UiApi, HostileNamesInRequestsAre400NamingTheField) {
  Fixture f;
  struct Case {
    std::string method, path, body;
    std::map<std::string, std::string> query;
    int status;
    std::string fragment;
  };
  const std::string nul_model = "/api/models/" + std::string("a\0b", 3) + "/aliases";
  const std::vector<Case> cases = {
      {"GET", "/api/models/..%2F..%2Fetc/aliases", "", {}, 400, "model '..%2F..%2Fetc'"},
      {"GET", "/api/models/../../etc/aliases", "", {}, 404, ""},
      {"GET", nul_model, "", {}, 400, "model 'a\\x00b' is invalid"},
      {"GET", "/api/models/fm/versions/..%2F..%2Fetc", "", {}, 400, "version or alias '..%2F"},
      {"GET", "/api/models/fm/versions/..", "", {}, 400, "version or alias '..'"},
      {"GET", "/api/models/fm/versions/.hidden", "", {}, 400, "version or alias '.hidden'"},
      {"GET",
       "/api/models/fm/compare",
       "",
       {{"refs", "../../etc,latest"}},
       400,
       "version or alias '../../etc'"},
      {"GET", "/files/fm/..%2F..%2Fetc/report.html", "", {}, 400, "version '..%2F..%2Fetc'"},
      {"GET", "/files/..%2Fetc/" + std::string(kV2) + "/report.html", "", {}, 400, "model '..%2F"},
      {"GET", "/api/runs/fm/..%2F..%2Fetc", "", {}, 400, "run id '..%2F..%2Fetc'"},
      {"GET", "/api/runs/..%2F..%2Fetc/run-2", "", {}, 400, "model name '..%2F..%2Fetc'"},
      {"POST",
       "/api/models/fm/promote",
       R"({"alias": "../x", "ref": "latest"})",
       {},
       400,
       "alias '../x'"},
      {"POST",
       "/api/models/fm/promote",
       R"({"alias": "staging", "ref": "../../etc"})",
       {},
       400,
       "version or alias '../../etc'"},
      {"POST",
       "/api/models/..%2Fx/promote",
       R"({"alias": "staging", "ref": "latest"})",
       {},
       400,
       "model name '..%2Fx'"},
      {"POST",
       "/api/models/fm/rollback",
       R"({"alias": "/etc/passwd"})",
       {},
       400,
       "alias '/etc/passwd'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + storage::printable(c.path));
    const Response res = f.call(c.method, c.path, c.body, c.query);
    EXPECT_EQ(res.status, c.status) << res.body;
    const json body = json::parse(res.body);
    EXPECT_NE(body.value("error", "").find(c.fragment), std::string::npos) << res.body;
  }
}

// An alias file or a run record in the store that names "../../etc": a 400 naming the file and
// the field, and the rest of the store still served.
TEST(UiApi, HostilePointersInTheStoreAreDataErrors) {
  Fixture f;
  f.store->put("models/fm/aliases/evil", json({{"version", "../../etc"}}).dump());
  Response res = f.call("GET", "/api/models/fm/versions/evil");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("alias models/fm/aliases/evil names version '../../etc'"),
            std::string::npos)
      << res.body;
  f.store->remove("models/fm/aliases/evil");

  runs::RunRecord r = runs::read_run(*f.store, "fm", "run-2");
  json doc = r.to_json();
  doc["run_id"] = "run-9";
  doc["stamp"] = "../../../x";
  f.store->put(runs::run_key("fm", "run-9"), doc.dump());
  res = f.call("GET", "/api/runs/fm/run-9");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("field stamp is '../../../x'"), std::string::npos) << res.body;
  const json all = f.get_json("/api/runs");  // the bad record is skipped, the good one shown
  ASSERT_EQ(all.size(), 1u) << all.dump();
  EXPECT_EQ(all[0]["run_id"], "run-2");
}

}  // namespace
}  // namespace ddpipe::ui
