// The curves: per-epoch metrics of every version overlaid, and the step-level loss.
#include <string>
#include <utility>
#include <vector>

#include "report/chart.h"
#include "report/html.h"
#include "report/sections.h"

namespace ddpipe::report {
namespace {

// Epoch curves get a dot on every point up to this many epochs.
constexpr std::size_t kMaxMarkedEpochs = 40;

struct Metric {
  std::string key;
  bool dashed = false;
};

// The (epoch, metric) points of a manifest; epochs without the metric are skipped.
std::vector<Point> epoch_points(const registry::Manifest& m, const std::string& key) {
  std::vector<Point> out;
  if (!m.epochs.is_array()) return out;
  for (std::size_t i = 0; i < m.epochs.size(); ++i) {
    const auto y = number(m.epochs[i], key);
    if (y) out.push_back({number(m.epochs[i], "epoch").value_or(double(i + 1)), *y});
  }
  return out;
}

// The (global_step, loss) points of a step history, in the order written.
std::vector<Point> step_points(const std::vector<nlohmann::json>& rows) {
  std::vector<Point> out;
  for (const auto& row : rows) {
    const auto x = number(row, "global_step"), y = number(row, "loss");
    if (x && y) out.push_back({*x, *y});
  }
  return out;
}

// A short line sample for a legend: solid or dashed.
std::string line_key(bool dashed) {
  return std::string(
             "<svg width=\"26\" height=\"8\" viewBox=\"0 0 26 8\"><line x1=\"1\" y1=\"4\" "
             "x2=\"25\" y2=\"4\" stroke=\"#3e4c59\" stroke-width=\"2\"") +
         (dashed ? " stroke-dasharray=\"5 3\"" : "") + "/></svg>";
}

std::string version_legend(const ReportData& data) {
  std::string out = "<div class=\"legend\">";
  for (std::size_t i = 0; i < data.versions.size(); ++i) {
    out += version_chip(data.versions[i].version, i);
  }
  return out + "</div>";
}

// One figure: caption, key, and the chart — or a sentence when no version has the metrics.
void write_figure(std::ostream& out, const std::string& caption, const std::string& key,
                  const LineChart& chart, const std::string& missing) {
  bool any = false;
  for (const auto& s : chart.series) any = any || !s.points.empty();
  out << "<figure><figcaption><b>" << escape(caption) << "</b><span class=\"key\">" << key
      << "</span></figcaption>";
  if (any) {
    out << render_line_chart(chart);
  } else {
    out << "<div class=\"nodata\">" << escape(missing) << "</div>";
  }
  out << "</figure>";
}

LineChart epoch_chart(const ReportData& data, const std::string& id,
                      const std::vector<Metric>& metrics, Axis y) {
  LineChart chart;
  chart.title = y.title + " per epoch";
  chart.x = {"epoch", Axis::Format::kInteger};
  chart.y = std::move(y);
  for (std::size_t i = 0; i < data.versions.size(); ++i) {
    const auto& v = data.versions[i];
    for (const auto& metric : metrics) {
      Series s;
      s.id = id + "/" + metric.key + "/" + v.version;
      s.label = v.version + " " + metric.key;
      s.color = version_color(i);
      s.dashed = metric.dashed;
      s.points = epoch_points(v.manifest, metric.key);
      s.markers = s.points.size() <= kMaxMarkedEpochs;
      chart.series.push_back(std::move(s));
    }
  }
  return chart;
}

}  // namespace

void write_curves(std::ostream& out, const ReportData& data) {
  const std::string train_test = line_key(false) + "train" + line_key(true) + "test (hollow dots)";
  out << "<section id=\"curves\"><h2>Training curves</h2><p class=\"lead\">Per-epoch metrics of "
         "every version, overlaid. Test metrics are measured on the held-out split after each "
         "epoch.</p>"
      << version_legend(data) << "<div class=\"charts\">";
  Axis loss{"loss"}, acc{"accuracy", Axis::Format::kPercent, false, true};
  Axis ips{"images / s", Axis::Format::kNumber, true}, lr{"learning rate"};
  lr.from_zero = true;
  write_figure(out, "Loss", train_test,
               epoch_chart(data, "epoch-loss", {{"train_loss"}, {"test_loss", true}}, loss),
               "No version recorded train_loss or test_loss.");
  write_figure(out, "Accuracy", train_test,
               epoch_chart(data, "epoch-acc", {{"train_acc"}, {"test_acc", true}}, acc),
               "No version recorded train_acc or test_acc.");
  write_figure(out, "Throughput", "steady-state images per second, all ranks",
               epoch_chart(data, "epoch-throughput", {{"steady_images_per_second"}}, ips),
               "No version recorded steady_images_per_second.");
  write_figure(out, "Learning rate", "at the start of each epoch",
               epoch_chart(data, "epoch-lr", {{"lr"}}, lr), "No version recorded lr.");
  out << "</div></section>";
}

void write_steps(std::ostream& out, const ReportData& data) {
  LineChart chart;
  chart.title = "training loss per optimizer step";
  chart.x = {"global step", Axis::Format::kInteger};
  chart.y = {"training loss"};
  chart.width = 1120;
  chart.height = 320;
  std::vector<std::string> notes;
  for (std::size_t i = 0; i < data.versions.size(); ++i) {
    const auto& v = data.versions[i];
    const auto points = step_points(v.steps);
    if (points.empty()) {
      notes.push_back(version_chip(v.version, i) + " has no step history.");
      continue;
    }
    Series s;
    s.id = "step-loss/loss/" + v.version;
    s.label = v.version + " loss";
    s.color = version_color(i);
    s.points = downsample(points, kMaxStepPoints);
    if (s.points.size() < points.size()) {
      notes.push_back(version_chip(v.version, i) + ": " + count(int64_t(points.size())) +
                      " steps, drawn as " + count(int64_t(s.points.size())) +
                      " evenly spaced points (the first and the last kept).");
    }
    chart.series.push_back(std::move(s));
  }
  out << "<section id=\"steps\" class=\"steps\"><h2>Step-level loss</h2><p class=\"lead\">"
         "Training loss at each recorded progress event, by global optimizer step.</p>";
  if (!chart.series.empty()) {
    out << version_legend(data);
    write_figure(out, "Training loss", "", chart, "");
  }
  for (const auto& note : notes) out << "<p class=\"note\">" << note << "</p>";
  out << "</section>";
}

}  // namespace ddpipe::report
