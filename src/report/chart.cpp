#include "report/chart.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "report/html.h"

namespace ddpipe::report {
namespace {

// The SVG's user space and the plot area inside it.
constexpr double kLeft = 62, kRight = 18, kTop = 14, kBottom = 44;
constexpr double kInsetX = 10;  // data never touches the y axis

double nice_step(double raw, bool integer) {
  if (!(raw > 0)) return 1;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
  return integer ? std::max(1.0, std::round(step)) : step;
}

// Decimals needed to write multiples of `step` exactly (up to 6).
int decimals_for(double step) {
  int d = 0;
  double scaled = std::fabs(step);
  while (d < 6 && std::fabs(scaled - std::round(scaled)) > 1e-6 * std::max(1.0, scaled)) {
    scaled *= 10;
    ++d;
  }
  return d;
}

// Maps data coordinates to the plot area.
struct Frame {
  double width = 0, height = 0;  // the chart's size
  Ticks x, y;
  double px(double v) const {
    const double span = x.hi - x.lo;
    return kLeft + kInsetX + (v - x.lo) / span * (width - kLeft - kRight - 2 * kInsetX);
  }
  double py(double v) const {
    return kTop + (y.hi - v) / (y.hi - y.lo) * (height - kTop - kBottom);
  }
};

Frame frame_of(const LineChart& chart) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const auto& s : chart.series) {
    for (const auto& p : s.points) {
      xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
      ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
    }
  }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (chart.y.from_zero) ylo = std::min(ylo, 0.0), yhi = std::max(yhi, 0.0);
  Frame f;
  f.width = chart.width, f.height = chart.height;
  f.x = nice_ticks(xlo, xhi, 8, false, chart.x.format == Axis::Format::kInteger);
  f.y = nice_ticks(ylo, yhi, 6, true, chart.y.format == Axis::Format::kInteger);
  if (chart.y.unit) {
    f.y.lo = std::max(f.y.lo, 0.0), f.y.hi = std::min(f.y.hi, 1.0);
    auto& v = f.y.values;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](double t) { return t < f.y.lo - 1e-9 || t > f.y.hi + 1e-9; }),
            v.end());
  }
  return f;
}

void axes(std::ostringstream& out, const LineChart& chart, const Frame& f) {
  const double x0 = kLeft, x1 = f.width - kRight, y0 = kTop, y1 = f.height - kBottom;
  out << "<g class=\"grid\">";
  for (double t : f.y.values) {
    const std::string y = fixed(f.py(t), 1);
    out << "<line x1=\"" << fixed(x0, 1) << "\" y1=\"" << y << "\" x2=\"" << fixed(x1, 1)
        << "\" y2=\"" << y << "\"/>";
  }
  for (double t : f.x.values) {
    const std::string x = fixed(f.px(t), 1);
    out << "<line x1=\"" << x << "\" y1=\"" << fixed(y0, 1) << "\" x2=\"" << x << "\" y2=\""
        << fixed(y1, 1) << "\"/>";
  }
  out << "</g><g class=\"tick\">";
  for (double t : f.y.values) {
    out << "<text x=\"" << fixed(x0 - 8, 1) << "\" y=\"" << fixed(f.py(t) + 4, 1)
        << "\" text-anchor=\"end\">" << tick_label(t, f.y.step, chart.y.format) << "</text>";
  }
  for (double t : f.x.values) {
    out << "<text x=\"" << fixed(f.px(t), 1) << "\" y=\"" << fixed(y1 + 18, 1)
        << "\" text-anchor=\"middle\">" << tick_label(t, f.x.step, chart.x.format) << "</text>";
  }
  out << "</g><path class=\"axis\" d=\"M" << fixed(x0, 1) << " " << fixed(y0, 1) << "V"
      << fixed(y1, 1) << "H" << fixed(x1, 1) << "\"/>";
  out << "<text class=\"axis-title\" x=\"" << fixed((x0 + x1) / 2, 1) << "\" y=\""
      << fixed(f.height - 6, 1) << "\" text-anchor=\"middle\">" << escape(chart.x.title)
      << "</text>";
  out << "<text class=\"axis-title\" transform=\"translate(14 " << fixed((y0 + y1) / 2, 1)
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(chart.y.title) << "</text>";
}

void series(std::ostringstream& out, const Series& s, const Frame& f) {
  std::string points;
  for (const auto& p : s.points) {
    if (!points.empty()) points += ' ';
    points += fixed(f.px(p.x), 1) + "," + fixed(f.py(p.y), 1);
  }
  const std::string hooks = "data-series=\"" + escape(s.id) + "\" data-points=\"" +
                            std::to_string(s.points.size()) + "\" points=\"" + points + "\"";
  const std::string title = "<title>" + escape(s.label) + "</title>";
  const std::string fill = s.dashed ? "#fff" : s.color;
  if (s.points.size() == 1) {
    out << "<circle class=\"dot\" " << hooks << " cx=\"" << fixed(f.px(s.points[0].x), 1)
        << "\" cy=\"" << fixed(f.py(s.points[0].y), 1) << "\" r=\"5\" fill=\"" << fill
        << "\" stroke=\"" << s.color << "\">" << title << "</circle>";
    return;
  }
  out << "<polyline class=\"line\" " << hooks << " fill=\"none\" stroke=\"" << s.color << "\""
      << (s.dashed ? " stroke-dasharray=\"7 4\"" : "") << ">" << title << "</polyline>";
  if (!s.markers) return;
  out << "<g class=\"marks\" fill=\"" << fill << "\" stroke=\"" << s.color << "\">";
  for (const auto& p : s.points) {
    out << "<circle cx=\"" << fixed(f.px(p.x), 1) << "\" cy=\"" << fixed(f.py(p.y), 1)
        << "\" r=\"2.6\"/>";
  }
  out << "</g>";
}

}  // namespace

Ticks nice_ticks(double lo, double hi, int target, bool widen, bool integer) {
  if (!(hi > lo)) {
    const double pad = integer ? 0.5 : (lo == 0 ? 1.0 : std::fabs(lo) * 0.1);
    lo -= pad, hi += pad;
  }
  Ticks t;
  t.step = nice_step((hi - lo) / std::max(1, target - 1), integer);
  const double first = (widen ? std::floor(lo / t.step + 1e-9) : std::ceil(lo / t.step - 1e-9));
  const double last = (widen ? std::ceil(hi / t.step - 1e-9) : std::floor(hi / t.step + 1e-9));
  for (double k = first; k <= last; ++k) t.values.push_back(k * t.step);
  t.lo = widen ? first * t.step : lo;
  t.hi = widen ? last * t.step : hi;
  return t;
}

std::string tick_label(double v, double step, Axis::Format format) {
  switch (format) {
    case Axis::Format::kPercent:
      return fixed(v * 100, decimals_for(step * 100)) + "%";
    case Axis::Format::kInteger:
      return count(std::llround(v));
    case Axis::Format::kNumber:
      break;
  }
  if (step >= 1000) return fixed(v / 1000, decimals_for(step / 1000)) + "k";
  return fixed(v, decimals_for(step));
}

std::vector<Point> downsample(const std::vector<Point>& points, std::size_t max_points) {
  if (points.size() <= max_points || max_points < 2) return points;
  std::vector<Point> out;
  out.reserve(max_points);
  const double stride = double(points.size() - 1) / double(max_points - 1);
  for (std::size_t i = 0; i < max_points; ++i) {
    out.push_back(points[static_cast<std::size_t>(std::llround(i * stride))]);
  }
  return out;
}

std::string render_line_chart(const LineChart& chart) {
  const Frame f = frame_of(chart);
  std::ostringstream out;
  out << "<svg class=\"plot\" viewBox=\"0 0 " << fixed(f.width, 0) << " " << fixed(f.height, 0)
      << "\" role=\"img\" aria-label=\"" << escape(chart.title) << "\">";
  axes(out, chart, f);
  for (auto s = chart.series.rbegin(); s != chart.series.rend(); ++s) {
    if (!s->points.empty()) series(out, *s, f);
  }
  out << "</svg>";
  return out.str();
}

}  // namespace ddpipe::report
