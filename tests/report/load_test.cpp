// load_report against a registry in a local store: refs, steps, evaluation, alias history.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "registry/registry.h"
#include "report/report.h"
#include "sample_report.h"
#include "storage/store.h"
#include "test_util.h"

namespace ddpipe::report {
namespace {

using nlohmann::json;

constexpr const char* kV1 = "model_v20261201_083000";
constexpr const char* kV2 = "model_v20261206_101500";

// A store with two versions of "fm" (v2 with steps and an evaluation), production moved from v1
// to v2 with a gate verdict, staging set to v1.
struct StoredModel {
  testing::TempDir dir;
  std::unique_ptr<storage::Store> store = storage::open_store(dir.path().string());
  registry::Registry reg{*store};

  StoredModel() {
    registry::Manifest m1 = sample::manifest(3, 0.3, 1.0, 1);
    registry::Manifest m2 = sample::manifest(5, 0.25, 1.0, 2);
    m2.extra["evaluation"] = sample::evaluation({"a", "b", "c"}, 10, 2);
    EXPECT_EQ(reg.publish("fm", {{"model.pt", "x"}}, m1, "20261201_083000"), kV1);
    EXPECT_EQ(reg.publish("fm", {{"model.pt", "x"}}, m2, "20261206_101500"), kV2);
    reg.write_steps("fm", "20261206_101500", sample::steps(5, 4, 0.25, 2));
    registry::AliasMove move;
    move.reason = "first";
    reg.move_alias("fm", "production", kV1, move);
    move.reason = "better";
    move.gate = {{"pass", true}, {"reason", "test_acc up"}};
    reg.move_alias("fm", "production", kV2, move);
    reg.set_alias("fm", "staging", kV1);
  }
};

TEST(LoadReport, ResolvesRefsInOrderWithStepsAndHistory) {
  StoredModel s;
  const ReportData d = load_report(s.reg, "fm", {"production", kV1, "latest"});
  EXPECT_EQ(d.model, "fm");
  ASSERT_EQ(d.versions.size(), 2u);  // "latest" is production's version: listed once
  EXPECT_EQ(d.versions[0].version, kV2);
  EXPECT_EQ(d.versions[1].version, kV1);
  EXPECT_EQ(d.versions[0].manifest.epochs.size(), 5u);
  EXPECT_EQ(d.versions[0].steps.size(), 20u);
  EXPECT_TRUE(d.versions[1].steps.empty());
  EXPECT_TRUE(d.versions[0].manifest.extra.contains("evaluation"));
  ASSERT_EQ(d.alias_history.count("production"), 1u);
  const auto& production = d.alias_history.at("production");
  ASSERT_EQ(production.size(), 2u);
  EXPECT_EQ(production[1].from, kV1);
  EXPECT_EQ(production[1].to, kV2);
  EXPECT_EQ(production[1].reason, "better");
  EXPECT_TRUE(production[1].gate["pass"].get<bool>());
  EXPECT_EQ(d.alias_history.at("staging").size(), 1u);
  EXPECT_EQ(d.alias_history.at("model_latest").back().to, kV2);
  EXPECT_FALSE(d.generated.empty());
}

TEST(LoadReport, NoRefsMeansLatest) {
  StoredModel s;
  const ReportData d = load_report(s.reg, "fm", {});
  ASSERT_EQ(d.versions.size(), 1u);
  EXPECT_EQ(d.versions[0].version, kV2);
}

TEST(LoadReport, UnknownRefIsNotFoundNamingIt) {
  StoredModel s;
  const std::string msg = testing::error_of(core::ErrorKind::kNotFound, [&] {
    load_report(s.reg, "fm", {"latest", "canary"});
  });
  EXPECT_NE(msg.find("'canary'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ddpipe models list"), std::string::npos) << msg;
  const std::string version = testing::error_of(
      core::ErrorKind::kNotFound, [&] { load_report(s.reg, "fm", {"model_v20990101_000000"}); });
  EXPECT_NE(version.find("model_v20990101_000000"), std::string::npos) << version;
  const std::string model =
      testing::error_of(core::ErrorKind::kNotFound, [&] { load_report(s.reg, "nope", {}); });
  EXPECT_NE(model.find("nope"), std::string::npos) << model;
  testing::usage_error([&] { load_report(s.reg, "../x", {}); });
}

TEST(LoadReport, LoadedDataRendersWithHistory) {
  StoredModel s;
  const std::string html = render_html(load_report(s.reg, "fm", {"production", "staging"}));
  EXPECT_NE(html.find("data-series=\"step-loss/loss/" + std::string(kV2) + "\""),
            std::string::npos);
  EXPECT_NE(html.find("data-confusion-matrix data-total=\"30\""), std::string::npos);
  EXPECT_NE(html.find(">better<"), std::string::npos);  // the move's reason, in the table
  EXPECT_NE(html.find("<span class=\"tag pass\">passed</span>"), std::string::npos);
}

}  // namespace
}  // namespace ddpipe::report
