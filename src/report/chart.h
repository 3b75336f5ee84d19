// ddpipe::report — line charts as inline SVG (internal to the component): axes with "nice"
// ticks, gridlines, one <polyline> per series carrying the page's data-series hooks (report.h).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ddpipe::report {

struct Point {
  double x = 0, y = 0;
};

struct Series {
  std::string id;     // data-series, "<chart>/<metric>/<version>"
  std::string label;  // its tooltip
  std::string color;  // CSS colour
  bool dashed = false;
  bool markers = false;  // a dot on every point (hollow when dashed)
  std::vector<Point> points;
};

struct Axis {
  enum class Format { kNumber, kPercent, kInteger };
  std::string title;
  Format format = Format::kNumber;
  bool from_zero = false;  // the range includes 0
  bool unit = false;       // the range stays within [0, 1] (accuracies)
};

struct LineChart {
  std::string title;                 // the SVG's accessible name
  Axis x, y;                         // x spans the data exactly; y is widened to whole ticks
  std::vector<Series> series;        // the first is drawn on top
  double width = 560, height = 300;  // of the SVG's user space (it scales to its container)
};

// Ticks at multiples of a 1-2-5 step, about `target` of them. With `widen` the result covers
// [lo, hi] (first <= lo, last >= hi); without, every tick lies within [lo, hi]. `integer`:
// the step is a whole number. lo == hi is widened around the value.
struct Ticks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;
};
Ticks nice_ticks(double lo, double hi, int target, bool widen, bool integer);

// A tick label: `format` with as many decimals as `step` needs ("0.25", "90%", "12k").
std::string tick_label(double v, double step, Axis::Format format);

// At most `max_points` of `points`, evenly spaced by index, the first and the last kept.
std::vector<Point> downsample(const std::vector<Point>& points, std::size_t max_points);

// The chart as an <svg> (scales to its container's width). Series without points are left
// out; a series of one point is a <circle>.
std::string render_line_chart(const LineChart& chart);

}  // namespace ddpipe::report
