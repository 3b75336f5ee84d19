// The route table's path patterns: literal segments, ":name" parameters with a literal suffix,
// one optional part, and the metrics label.
#include "core/path_pattern.h"

#include <gtest/gtest.h>

namespace ddpipe::core {
namespace {

// The parameters of `path` under `pattern`, or "no match".
std::string matched(const std::string& pattern, const std::string& path) {
  PathParams params;
  if (!match_path(pattern, path, params)) return "no match";
  std::string out;
  for (const auto& [k, v] : params) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

TEST(PathPattern, LiteralsMatchExactly) {
  EXPECT_EQ(matched("/predict", "/predict"), "");
  EXPECT_EQ(matched("/predict", "/predict/"), "no match");
  EXPECT_EQ(matched("/predict", "predict"), "no match");
  EXPECT_EQ(matched("/predict", "/Predict"), "no match");
  EXPECT_EQ(matched("/v2", "/v2/"), "no match");
}

TEST(PathPattern, ParametersAreNonEmptySegments) {
  EXPECT_EQ(matched("/v1/models/:name", "/v1/models/m"), "name=m");
  EXPECT_EQ(matched("/v1/models/:name", "/v1/models/"), "no match");
  EXPECT_EQ(matched("/v1/models/:name", "/v1/models/a/b"), "no match");
  EXPECT_EQ(matched("/v1/models/:name", "/v1/models/m:predict"), "name=m:predict");
}

TEST(PathPattern, ParameterWithLiteralSuffix) {
  EXPECT_EQ(matched("/v1/models/:name:predict", "/v1/models/m:predict"), "name=m");
  EXPECT_EQ(matched("/v1/models/:name:predict", "/v1/models/a:b:predict"), "name=a:b");
  EXPECT_EQ(matched("/v1/models/:name:predict", "/v1/models/:predict"), "no match");
  EXPECT_EQ(matched("/v1/models/:name:predict", "/v1/models/m"), "no match");
}

TEST(PathPattern, OptionalPart) {
  const std::string p = "/v2/models/:name[/versions/:version]/infer";
  EXPECT_EQ(matched(p, "/v2/models/m/infer"), "name=m");
  EXPECT_EQ(matched(p, "/v2/models/m/versions/3/infer"), "name=m version=3");
  EXPECT_EQ(matched(p, "/v2/models/m/versions//infer"), "no match");
  EXPECT_EQ(matched(p, "/v2/models/m/versions/infer"), "no match");
  EXPECT_EQ(matched(p, "/v2/models//infer"), "no match");
  const std::string meta = "/v2/models/:name[/versions/:version]";
  EXPECT_EQ(matched(meta, "/v2/models/m"), "name=m");
  EXPECT_EQ(matched(meta, "/v2/models/m/versions/ready"), "name=m version=ready");
  EXPECT_EQ(matched(meta, "/v2/models/m/versions"), "no match");
  EXPECT_EQ(matched(meta, "/v2/models/m/ready"), "no match");
}

TEST(PathPattern, AStarSegmentTakesTheRestOfThePath) {
  EXPECT_EQ(matched("/*path", "/app.js"), "path=app.js");
  EXPECT_EQ(matched("/*path", "/pages/runs.js"), "path=pages/runs.js");
  EXPECT_EQ(matched("/*path", "/"), "path=");
  EXPECT_EQ(matched("/*path", ""), "no match");
  EXPECT_EQ(matched("/files/:model/*rest", "/files/m/a/b"), "model=m rest=a/b");
  EXPECT_EQ(matched("/files/:model/*rest", "/files/m"), "no match");
  EXPECT_EQ(matched("/files/:model/*rest", "/other/m/a"), "no match");
}

TEST(PathPattern, NoMatchLeavesParamsAlone) {
  PathParams params = {{"keep", "me"}};
  EXPECT_FALSE(match_path("/v1/models/:name", "/v2", params));
  EXPECT_EQ(params, PathParams({{"keep", "me"}}));
}

TEST(PathPattern, LabelDropsTheOptionalPart) {
  EXPECT_EQ(pattern_label("/v2/models/:name[/versions/:version]/infer"), "/v2/models/:name/infer");
  EXPECT_EQ(pattern_label("/v2/models/:name[/versions/:version]"), "/v2/models/:name");
  EXPECT_EQ(pattern_label("/v1/models/:name:predict"), "/v1/models/:name:predict");
}

}  // namespace
}  // namespace ddpipe::core
