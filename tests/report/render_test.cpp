// render_html on data built in memory: the page's hooks (curves, confusion matrix) parsed back,
// nothing external, escaping, determinism, and what it says when data is missing.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "report/report.h"
#include "sample_report.h"

namespace ddpipe::report {
namespace {

using nlohmann::json;
using Attributes = std::map<std::string, std::string>;

bool is_name_char(char c, bool dash) {
  return std::isalpha(static_cast<unsigned char>(c)) || (dash && c == '-');
}

// Reads `<tag attr="v" flag ...>` at html[at] (at: the '<'); nullopt if it is not a start tag.
// A scanner, not std::regex: libstdc++'s regex recurses once per character matched, and a
// 2,000-point `points` attribute overflowed the stack under AddressSanitizer.
std::optional<Attributes> start_tag_at(const std::string& html, size_t at) {
  size_t i = at + 1;
  const size_t name_start = i;
  while (i < html.size() && is_name_char(html[i], false)) ++i;
  if (i == name_start) return std::nullopt;
  Attributes a{{"<tag>", html.substr(name_start, i - name_start)}};
  for (;;) {
    const size_t space = i;
    while (i < html.size() && std::isspace(static_cast<unsigned char>(html[i]))) ++i;
    if (i < html.size() && html[i] == '/') ++i;
    if (i < html.size() && html[i] == '>') return a;
    const size_t key_start = i;
    while (i < html.size() && is_name_char(html[i], true)) ++i;
    if (i == key_start || space == key_start) return std::nullopt;
    std::string& value = a[html.substr(key_start, i - key_start)];
    if (i + 1 < html.size() && html[i] == '=' && html[i + 1] == '"') {
      const size_t close = html.find('"', i + 2);
      if (close == std::string::npos) return std::nullopt;
      value = html.substr(i + 2, close - i - 2);
      i = close + 1;
    }
  }
}

// The attributes of every start tag of `html` that has attribute `attr` (tag name as "<tag>").
std::vector<Attributes> tags_with(const std::string& html, const std::string& attr) {
  std::vector<Attributes> out;
  for (size_t at = html.find('<'); at != std::string::npos; at = html.find('<', at + 1)) {
    auto a = start_tag_at(html, at);
    if (a && a->count(attr)) out.push_back(std::move(*a));
  }
  return out;
}

// The "x,y" pairs of a points attribute; fails the test on anything else.
std::vector<std::pair<double, double>> pairs_of(const std::string& points) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(points);
  std::string pair;
  while (in >> pair) {
    const auto comma = pair.find(',');
    EXPECT_NE(comma, std::string::npos) << pair;
    if (comma == std::string::npos) continue;
    out.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return out;
}

std::map<std::string, Attributes> series_by_id(const std::string& html) {
  std::map<std::string, Attributes> out;
  for (auto& a : tags_with(html, "data-series")) {
    EXPECT_EQ(out.count(a["data-series"]), 0u) << "two curves " << a["data-series"];
    out[a["data-series"]] = a;
  }
  return out;
}

// Two versions (3 and 5 epochs) with steps; the main one with a 3-class evaluation.
ReportData two_versions() {
  ReportData d;
  d.model = "fmnist";
  d.generated = "2026-12-06T11:00:00Z";
  d.versions.push_back(sample::version("model_v20261206_101500", 3, 0.3, 1.0, 7));
  d.versions.push_back(sample::version("model_v20261205_090000", 5, 0.35, 0.8, 8));
  d.versions[0].steps = sample::steps(3, 50, 0.3, 7);
  d.versions[1].steps = sample::steps(5, 40, 0.35, 8);
  d.versions[0].manifest.extra["evaluation"] = sample::evaluation({"cat", "dog", "bird"}, 100, 3);
  return d;
}

const std::vector<std::string> kEpochSeries = {"epoch-loss/train_loss/", "epoch-loss/test_loss/",
                                               "epoch-acc/train_acc/", "epoch-acc/test_acc/",
                                               "epoch-throughput/steady_images_per_second/"};

TEST(RenderHtml, EpochCurvesHaveOnePointPerEpoch) {
  const ReportData d = two_versions();
  const auto series = series_by_id(render_html(d));
  for (const auto& v : d.versions) {
    for (const auto& prefix : kEpochSeries) {
      SCOPED_TRACE(prefix + v.version);
      auto it = series.find(prefix + v.version);
      ASSERT_NE(it, series.end());
      EXPECT_EQ(it->second.at("<tag>"), "polyline");
      const auto n = static_cast<std::size_t>(v.manifest.epochs.size());
      EXPECT_EQ(it->second.at("data-points"), std::to_string(n));
      const auto points = pairs_of(it->second.at("points"));
      ASSERT_EQ(points.size(), n);
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_GE(points[i].first, 0);
        EXPECT_LE(points[i].first, 560);
        EXPECT_GE(points[i].second, 0);
        EXPECT_LE(points[i].second, 300);
        if (i > 0) EXPECT_GT(points[i].first, points[i - 1].first);
      }
    }
  }
  // The 5-epoch run spans the axis further right than the 3-epoch one, on a shared x axis.
  const auto short_run =
      pairs_of(series.at("epoch-loss/train_loss/" + d.versions[0].version).at("points"));
  const auto long_run =
      pairs_of(series.at("epoch-loss/train_loss/" + d.versions[1].version).at("points"));
  EXPECT_DOUBLE_EQ(short_run.front().first, long_run.front().first);
  EXPECT_LT(short_run.back().first, long_run.back().first);
  // Loss falls: later points sit lower on the page (larger SVG y).
  EXPECT_GT(long_run.back().second, long_run.front().second);
}

TEST(RenderHtml, StepCurvesUseEveryRowBelowTheLimit) {
  const ReportData d = two_versions();
  const auto series = series_by_id(render_html(d));
  for (const auto& v : d.versions) {
    const auto& a = series.at("step-loss/loss/" + v.version);
    EXPECT_EQ(a.at("data-points"), std::to_string(v.steps.size()));
    EXPECT_EQ(pairs_of(a.at("points")).size(), v.steps.size());
  }
}

TEST(RenderHtml, ConfusionMatrixCellsSumToTotal) {
  const ReportData d = two_versions();
  const std::string html = render_html(d);
  const auto groups = tags_with(html, "data-confusion-matrix");
  ASSERT_EQ(groups.size(), 1u);
  const auto cells = tags_with(html, "data-pred");
  ASSERT_EQ(cells.size(), 9u);
  const json& m = d.versions[0].manifest.extra["evaluation"]["confusion_matrix"];
  int64_t sum = 0;
  std::set<std::pair<int, int>> seen;
  for (auto c : cells) {
    EXPECT_EQ(c["<tag>"], "rect");
    const int i = std::stoi(c["data-true"]), j = std::stoi(c["data-pred"]);
    seen.insert({i, j});
    EXPECT_EQ(std::stoll(c["data-count"]), m[i][j].get<int64_t>()) << i << "," << j;
    sum += std::stoll(c["data-count"]);
  }
  EXPECT_EQ(seen.size(), 9u);
  EXPECT_EQ(std::to_string(sum), groups[0].at("data-total"));
  EXPECT_EQ(sum, d.versions[0].manifest.extra["evaluation"]["samples"].get<int64_t>());
  EXPECT_NE(html.find("<th>bird</th>"), std::string::npos);  // the per-class table
}

TEST(RenderHtml, NothingExternal) {
  const std::string html = render_html(two_versions());
  for (const char* bad :
       {"http://", "https://", "src=", "url(", "@import", "<script", "<link", "@font-face"}) {
    EXPECT_EQ(html.find(bad), std::string::npos) << bad;
  }
  for (const auto& a : tags_with(html, "href")) EXPECT_EQ(a.at("href").rfind('#', 0), 0u);
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(html.find("<title>fmnist"), std::string::npos);
}

TEST(RenderHtml, UserStringsAreEscaped) {
  ReportData d = two_versions();
  const std::string evil = "<script>alert('x')</script>";
  d.model = "m" + evil;
  d.versions[0].manifest.config = "name: x\nnote: \"" + evil + "\"\n";
  d.versions[0].manifest.run_id = evil;
  d.versions[0].manifest.dataset.name = evil + "&co";
  d.versions[0].manifest.extra["evaluation"]["classes"][1] = evil;
  registry::AliasMove move;
  move.seq = 1, move.time = "2026-12-06T10:20:00Z", move.to = d.versions[0].version;
  move.reason = evil, move.actor = evil;
  move.gate = {{"pass", true}, {"reason", evil}};
  d.alias_history["production"] = {move};
  const std::string html = render_html(d);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("&amp;co"), std::string::npos);
}

TEST(RenderHtml, SameDataSameBytes) {
  const ReportData d = two_versions();
  EXPECT_EQ(render_html(d), render_html(d));
  ReportData other = d;
  other.versions[1].manifest.epochs[2]["test_acc"] = 0.5;
  EXPECT_NE(render_html(d), render_html(other));
}

TEST(RenderHtml, MissingStepsAndEvaluationAreSaid) {
  ReportData d = two_versions();
  d.versions[0].steps.clear();
  d.versions[0].manifest.extra.erase("evaluation");
  const std::string html = render_html(d);
  const std::string main = d.versions[0].version;
  EXPECT_NE(html.find(main + "</span></span> has no step history."), std::string::npos);
  EXPECT_NE(html.find("has no evaluation"), std::string::npos);
  EXPECT_TRUE(tags_with(html, "data-confusion-matrix").empty());
  const auto series = series_by_id(html);
  EXPECT_EQ(series.count("step-loss/loss/" + main), 0u);
  EXPECT_EQ(series.count("step-loss/loss/" + d.versions[1].version), 1u);

  for (auto& v : d.versions) v.steps.clear();
  const std::string none = render_html(d);
  EXPECT_EQ(none.find("data-series=\"step-loss/"), std::string::npos);
  EXPECT_NE(none.find(d.versions[1].version + "</span></span> has no step history."),
            std::string::npos);
}

TEST(RenderHtml, MalformedEvaluationIsSaid) {
  ReportData d = two_versions();
  d.versions[0].manifest.extra["evaluation"]["confusion_matrix"] = json::array({{1, 2}, {3}});
  const std::string html = render_html(d);
  EXPECT_TRUE(tags_with(html, "data-confusion-matrix").empty());
  EXPECT_NE(html.find("cannot be drawn: expected a square array"), std::string::npos);
}

TEST(RenderHtml, SingleEpochIsADot) {
  ReportData d;
  d.model = "m";
  d.versions.push_back(sample::version("model_v20261206_101500", 1, 0.3, 1.0, 9));
  const auto series = series_by_id(render_html(d));
  const auto& loss = series.at("epoch-loss/test_loss/model_v20261206_101500");
  EXPECT_EQ(loss.at("<tag>"), "circle");
  EXPECT_EQ(loss.at("data-points"), "1");
  const auto points = pairs_of(loss.at("points"));
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(loss.at("cx"), "302.0");  // the middle of the plot area (x 62 to 542)
  EXPECT_DOUBLE_EQ(std::stod(loss.at("cx")), points[0].first);
}

// Shapes the typed manifest does not rule out, from old or hand-made data: drawn around.
TEST(RenderHtml, OddDataDoesNotThrow) {
  ReportData d = two_versions();
  d.versions[0].manifest.epochs = json::array({json(3), {{"epoch", 2}, {"test_acc", "high"}}});
  d.versions[0].manifest.final_metrics = json::array();
  d.versions[0].manifest.config = "[unclosed";
  d.versions[0].steps = {json("row"), {{"global_step", "x"}}};
  d.versions[0].manifest.extra["evaluation"] = "none";
  d.versions[1].manifest.epochs = {{"not", "an array"}};
  registry::AliasMove move;
  move.gate = {{"pass", "yes"}};
  d.alias_history["production"] = {move};
  std::string html;
  EXPECT_NO_THROW(html = render_html(d));
  EXPECT_NE(html.find("has no evaluation"), std::string::npos);
  EXPECT_NE(html.find("No version recorded steady_images_per_second."), std::string::npos);
  EXPECT_NE(html.find("<span class=\"tag fail\">failed</span>"), std::string::npos);
}

TEST(RenderHtml, NoVersionsStillRenders) {
  ReportData d;
  d.model = "empty";
  const std::string html = render_html(d);
  EXPECT_NE(html.find("No versions to show."), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);
}

// 90 epochs, 3 versions, 10,000 steps each: downsampled step lines, a page well under 2 MB.
TEST(RenderHtml, LongRunsStaySmall) {
  ReportData d;
  d.model = "big";
  for (int i = 0; i < 3; ++i) {
    d.versions.push_back(sample::version("model_v2026120" + std::to_string(i + 1) + "_000000", 90,
                                         0.2 + 0.05 * i, 1.0, 20 + i));
    d.versions.back().steps = sample::steps(100, 100, 0.2, 20 + i);
  }
  d.versions[0].manifest.extra["evaluation"] =
      sample::evaluation(sample::fashion_classes(), 1000, 4);
  const std::string html = render_html(d);
  EXPECT_LT(html.size(), 1000u * 1000u);
  const auto series = series_by_id(html);
  for (const auto& v : d.versions) {
    const auto& a = series.at("step-loss/loss/" + v.version);
    EXPECT_EQ(a.at("data-points"), std::to_string(kMaxStepPoints));
    const auto points = pairs_of(a.at("points"));
    ASSERT_EQ(points.size(), kMaxStepPoints);
    EXPECT_EQ(series.at("epoch-acc/test_acc/" + v.version).at("data-points"), "90");
  }
  EXPECT_NE(html.find("10,000 steps, drawn as 2,000 evenly spaced points"), std::string::npos);
}

// A realistic page, and a minimal one (one epoch, no steps, evaluation or aliases). With
// DDPIPE_REPORT_SAMPLE=<dir> they are written there (report.html, minimal.html) to be looked at.
TEST(RenderHtml, Sample) {
  ReportData d;
  d.model = "fmnist-resnet";
  d.generated = "2026-12-06T11:02:13Z";
  d.versions.push_back(sample::version("model_v20261206_101500", 12, 0.22, 1.0, 1));
  d.versions.push_back(sample::version("model_v20261204_170312", 12, 0.27, 0.55, 2));
  d.versions.push_back(sample::version("model_v20261201_083000", 8, 0.31, 0.5, 3));
  d.versions[0].steps = sample::steps(12, 469, 0.22, 1);
  d.versions[1].steps = sample::steps(12, 235, 0.27, 2);
  d.versions[1].manifest.world_size = 1;
  d.versions[1].manifest.config += "  label_smoothing: 0.1\n";
  d.versions[2].manifest.lineage.resumed_from = "epoch_4";
  d.versions[0].manifest.extra["evaluation"] =
      sample::evaluation(sample::fashion_classes(), 1000, 5);
  registry::AliasMove a{
      1,        "k1",   "", "2026-12-01T09:00:00Z", "", d.versions[2].version, "first release",
      "ci-bot", nullptr};
  registry::AliasMove b{2,
                        "k2",
                        "k1",
                        "2026-12-06T10:30:00Z",
                        d.versions[2].version,
                        d.versions[0].version,
                        "beats production by 1.9 pp",
                        "alice@gpu-1",
                        json{{"pass", true}, {"reason", "test_acc=0.9012 vs 0.8821: promoted"}}};
  d.alias_history["production"] = {a, b};
  const std::string html = render_html(d);
  EXPECT_EQ(tags_with(html, "data-pred").size(), 100u);
  ReportData minimal;
  minimal.model = "mnist-tiny";
  minimal.generated = d.generated;
  minimal.versions.push_back(sample::version("model_v20261206_120000", 1, 0.4, 1.0, 6));
  const std::string small = render_html(minimal);
  EXPECT_NE(small.find("No alias of mnist-tiny has a recorded move."), std::string::npos);
  if (const char* dir = std::getenv("DDPIPE_REPORT_SAMPLE")) {
    std::ofstream(std::string(dir) + "/report.html") << html;
    std::ofstream(std::string(dir) + "/minimal.html") << small;
  }
}

}  // namespace
}  // namespace ddpipe::report
