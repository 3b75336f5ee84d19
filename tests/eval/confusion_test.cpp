#include "eval/confusion.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace ddpipe::eval {
namespace {

TEST(Confusion, ReportHasTheMatrixAndPerClassPrecisionAndRecall) {
  Confusion c(3);
  // true 0: 3 right, 1 taken for 1; true 1: 2 right; true 2: 1 right, 2 taken for 0.
  for (int i = 0; i < 3; ++i) c.add(0, 0);
  c.add(0, 1);
  c.add(1, 1);
  c.add(1, 1);
  c.add(2, 2);
  c.add(2, 0);
  c.add(2, 0);
  const auto r = classification_report(c, {"a", "b", "c"});
  EXPECT_EQ(r["samples"], 9);
  EXPECT_EQ(r["confusion_matrix"], nlohmann::json::parse("[[3,1,0],[0,2,0],[2,0,1]]"));
  const auto& a = r["per_class"][0];
  EXPECT_EQ(a["class"], "a");
  EXPECT_DOUBLE_EQ(a["precision"].get<double>(), 3.0 / 5.0);  // 5 predicted as a, 3 right
  EXPECT_DOUBLE_EQ(a["recall"].get<double>(), 3.0 / 4.0);
  EXPECT_EQ(a["support"], 4);
  EXPECT_DOUBLE_EQ(r["per_class"][1]["precision"].get<double>(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r["per_class"][2]["recall"].get<double>(), 1.0 / 3.0);
}

TEST(Confusion, AClassNeverPredictedOrWithoutSamplesScoresZeroNotNaN) {
  Confusion c(2);
  c.add(0, 0);
  const auto r = classification_report(c, {"x", "y"});
  EXPECT_EQ(r["per_class"][1]["precision"], 0.0);
  EXPECT_EQ(r["per_class"][1]["recall"], 0.0);
  EXPECT_EQ(r["per_class"][1]["support"], 0);
}

TEST(Confusion, NamesMustMatchTheClasses) {
  EXPECT_THROW(classification_report(Confusion(2), {"only one"}), core::Error);
}

}  // namespace
}  // namespace ddpipe::eval
