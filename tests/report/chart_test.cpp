// The building blocks: ticks, tick labels, downsampling, escaping and number formats.
#include <gtest/gtest.h>

#include <vector>

#include "report/chart.h"
#include "report/html.h"

namespace ddpipe::report {
namespace {

TEST(Chart, NiceTicksCoverOrStayWithin) {
  const Ticks y = nice_ticks(0.23, 2.07, 6, true, false);
  EXPECT_DOUBLE_EQ(y.step, 0.5);
  EXPECT_DOUBLE_EQ(y.lo, 0.0);
  EXPECT_DOUBLE_EQ(y.hi, 2.5);
  EXPECT_EQ(y.values.size(), 6u);

  const Ticks x = nice_ticks(1, 90, 8, false, true);
  EXPECT_DOUBLE_EQ(x.lo, 1);
  EXPECT_DOUBLE_EQ(x.hi, 90);
  EXPECT_DOUBLE_EQ(x.step, 20);
  EXPECT_EQ(x.values, (std::vector<double>{20, 40, 60, 80}));

  const Ticks epochs = nice_ticks(1, 5, 8, false, true);
  EXPECT_EQ(epochs.values, (std::vector<double>{1, 2, 3, 4, 5}));

  const Ticks one = nice_ticks(1, 1, 8, false, true);  // a single epoch: centred, one tick
  EXPECT_DOUBLE_EQ(one.lo, 0.5);
  EXPECT_DOUBLE_EQ(one.hi, 1.5);
  EXPECT_EQ(one.values, std::vector<double>{1});
}

TEST(Chart, TickLabels) {
  EXPECT_EQ(tick_label(0.9, 0.05, Axis::Format::kPercent), "90%");
  EXPECT_EQ(tick_label(0.925, 0.025, Axis::Format::kPercent), "92.5%");
  EXPECT_EQ(tick_label(0.25, 0.25, Axis::Format::kNumber), "0.25");
  EXPECT_EQ(tick_label(12000, 2000, Axis::Format::kNumber), "12k");
  EXPECT_EQ(tick_label(10000, 2000, Axis::Format::kInteger), "10,000");
}

TEST(Chart, DownsampleKeepsFirstAndLast) {
  std::vector<Point> points;
  for (int i = 0; i < 10001; ++i) points.push_back({double(i), double(i % 7)});
  const auto d = downsample(points, 2000);
  ASSERT_EQ(d.size(), 2000u);
  EXPECT_DOUBLE_EQ(d.front().x, 0);
  EXPECT_DOUBLE_EQ(d.back().x, 10000);
  for (std::size_t i = 1; i < d.size(); ++i) EXPECT_GT(d[i].x, d[i - 1].x);
  EXPECT_EQ(downsample(points, 20000).size(), points.size());
}

TEST(Html, EscapeAndNumbers) {
  EXPECT_EQ(escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(fixed(0.125, 2), "0.12");  // round half to even on the binary value
  EXPECT_EQ(fixed(-0.0001, 2), "0.00");
  EXPECT_EQ(percent(0.91234), "91.23%");
  EXPECT_EQ(count(1234567), "1,234,567");
  EXPECT_EQ(count(-1000), "-1,000");
  EXPECT_EQ(count(12), "12");
  EXPECT_EQ(duration(42.06), "42.1 s");
  EXPECT_EQ(duration(192), "3 min 12 s");
  EXPECT_EQ(duration(3725), "1 h 02 min");
  EXPECT_EQ(shorten("abcdef", 3), "abc\u2026");
  EXPECT_EQ(shorten("ab\u00e9cd", 3), "ab\u2026");  // not half of the two-byte é
  EXPECT_EQ(shorten("abc", 3), "abc");
}

}  // namespace
}  // namespace ddpipe::report
