// The evaluation of the main version: its confusion matrix as a heatmap and its per-class
// precision / recall / support, from manifest.extra["evaluation"].
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "report/html.h"
#include "report/sections.h"

namespace ddpipe::report {
namespace {

using nlohmann::json;

// Above this many classes the heatmap gets the section's full width, the table goes below it.
constexpr std::size_t kMaxSideBySideClasses = 16;

struct ClassScore {
  std::string name;
  std::optional<double> precision, recall;
  int64_t support = 0;
};

struct Evaluation {
  std::vector<std::string> classes;
  std::vector<std::vector<int64_t>> matrix;  // [true][predicted]
  std::vector<ClassScore> scores;
  int64_t total = 0;  // sum of the cells
  std::optional<int64_t> samples;
};

// The square matrix of non-negative integers in `doc`, or an empty one.
std::vector<std::vector<int64_t>> read_matrix(const json& doc) {
  std::vector<std::vector<int64_t>> m;
  if (!doc.is_array() || doc.empty()) return {};
  for (const auto& row : doc) {
    if (!row.is_array() || row.size() != doc.size()) return {};
    m.emplace_back();
    for (const auto& c : row) {
      if (!c.is_number_integer() || c.get<int64_t>() < 0) return {};
      m.back().push_back(c.get<int64_t>());
    }
  }
  return m;
}

// Scores from the document's per_class when it has one entry per class, else from the matrix.
std::vector<ClassScore> read_scores(const json& doc, const Evaluation& e) {
  const std::size_t n = e.classes.size();
  std::vector<ClassScore> out(n);
  const bool given = doc.is_array() && doc.size() == n;
  for (std::size_t i = 0; i < n; ++i) {
    out[i].name = e.classes[i];
    int64_t row = 0, col = 0;
    for (std::size_t j = 0; j < n; ++j) row += e.matrix[i][j], col += e.matrix[j][i];
    out[i].support = row;
    if (given) {
      out[i].precision = number(doc[i], "precision");
      out[i].recall = number(doc[i], "recall");
      if (auto s = number(doc[i], "support")) out[i].support = std::llround(*s);
      if (doc[i].is_object() && doc[i].value("class", json()).is_string()) {
        out[i].name = doc[i]["class"].get<std::string>();
      }
      continue;
    }
    if (col > 0) out[i].precision = double(e.matrix[i][i]) / double(col);
    if (row > 0) out[i].recall = double(e.matrix[i][i]) / double(row);
  }
  return out;
}

// The evaluation of `m`, or a sentence saying why there is none to draw.
std::optional<Evaluation> read_evaluation(const registry::Manifest& m, std::string& why) {
  auto it = m.extra.find("evaluation");
  if (it == m.extra.end() || !it->is_object()) {
    why = "has no evaluation (it was trained before evaluations were stored).";
    return std::nullopt;
  }
  Evaluation e;
  e.matrix = read_matrix(it->value("confusion_matrix", json()));
  const std::size_t n = e.matrix.size();
  if (n == 0) {
    why =
        "has an evaluation whose confusion_matrix cannot be drawn: expected a square array of "
        "non-negative integer counts (row = true class, column = predicted).";
    return std::nullopt;
  }
  const json classes = it->value("classes", json());
  for (std::size_t i = 0; i < n; ++i) {
    if (classes.is_array() && classes.size() == n && classes[i].is_string()) {
      e.classes.push_back(classes[i].get<std::string>());
    } else if (m.dataset.classes.size() == n) {
      e.classes.push_back(m.dataset.classes[i]);
    } else {
      e.classes.push_back(std::to_string(i));
    }
  }
  for (const auto& row : e.matrix) {
    for (int64_t c : row) e.total += c;
  }
  if (auto s = number(*it, "samples")) e.samples = std::llround(*s);
  e.scores = read_scores(it->value("per_class", json()), e);
  return e;
}

// `from` blended towards `to` by t in [0, 1], as #rrggbb.
std::string blend(const int from[3], const int to[3], double t) {
  t = std::clamp(t, 0.0, 1.0);
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", int(std::lround(from[0] + (to[0] - from[0]) * t)),
                int(std::lround(from[1] + (to[1] - from[1]) * t)),
                int(std::lround(from[2] + (to[2] - from[2]) * t)));
  return buf;
}

// The heatmap's cell size and margins for `n` classes whose longest name has `longest` bytes.
struct Layout {
  double cell, left, top = 8, label_h;
  bool rotate;
  Layout(std::size_t n, std::size_t longest) {
    cell = std::clamp(440.0 / double(n), 16.0, 52.0);
    const double label_w = std::min(150.0, 6.6 * double(std::min<std::size_t>(longest, 22)) + 10);
    left = 28 + label_w;
    rotate = label_w - 10 > cell;
    label_h = rotate ? label_w * 0.72 + 8 : 20;
  }
};

void write_cell(std::ostream& out, const Evaluation& e, const Layout& l, std::size_t i,
                std::size_t j, int64_t row_sum) {
  static const int kLight[3] = {246, 248, 251}, kBlue[3] = {8, 81, 156}, kOrange[3] = {190, 75, 0};
  const int64_t c = e.matrix[i][j];
  const double share = row_sum > 0 ? double(c) / double(row_sum) : 0.0;
  const double t = i == j ? share : std::min(1.0, std::sqrt(share) * 1.25);
  const double x = l.left + double(j) * l.cell, y = l.top + double(i) * l.cell;
  out << "<rect data-true=\"" << i << "\" data-pred=\"" << j << "\" data-count=\"" << c << "\" x=\""
      << fixed(x, 1) << "\" y=\"" << fixed(y, 1) << "\" width=\"" << fixed(l.cell - 1, 1)
      << "\" height=\"" << fixed(l.cell - 1, 1) << "\" rx=\"2\" fill=\""
      << blend(kLight, i == j ? kBlue : kOrange, c == 0 ? 0.0 : t) << "\"><title>true "
      << escape(e.classes[i]) << ", predicted " << escape(e.classes[j]) << ": " << c << " ("
      << percent(share, 1) << " of " << escape(e.classes[i]) << ")</title></rect>";
  const std::string digits = std::to_string(c);
  const double size = std::min({13.0, l.cell * 0.34, l.cell * 0.95 / (0.62 * digits.size())});
  out << "<text class=\"count\" x=\"" << fixed(x + (l.cell - 1) / 2, 1) << "\" y=\""
      << fixed(y + (l.cell - 1) / 2 + size * 0.36, 1) << "\" text-anchor=\"middle\" font-size=\""
      << fixed(size, 1) << "\"" << (t > 0.55 && c > 0 ? " style=\"fill:#fff\"" : "") << ">" << c
      << "</text>";
}

void write_labels(std::ostream& out, const Evaluation& e, const Layout& l) {
  const std::size_t n = e.classes.size();
  const double grid = double(n) * l.cell, bottom = l.top + grid;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string name = escape(shorten(e.classes[i], 22));
    const double mid = double(i) * l.cell + (l.cell - 1) / 2;
    out << "<text x=\"" << fixed(l.left - 6, 1) << "\" y=\"" << fixed(l.top + mid + 4, 1)
        << "\" text-anchor=\"end\">" << name << "</text>";
    if (l.rotate) {
      out << "<text transform=\"translate(" << fixed(l.left + mid + 4, 1) << " "
          << fixed(bottom + 8, 1) << ") rotate(-45)\" text-anchor=\"end\">" << name << "</text>";
    } else {
      out << "<text x=\"" << fixed(l.left + mid, 1) << "\" y=\"" << fixed(bottom + 15, 1)
          << "\" text-anchor=\"middle\">" << name << "</text>";
    }
  }
  out << "<text class=\"axis-title\" transform=\"translate(12 " << fixed(l.top + grid / 2, 1)
      << ") rotate(-90)\" text-anchor=\"middle\">true class</text>";
  out << "<text class=\"axis-title\" x=\"" << fixed(l.left + grid / 2, 1) << "\" y=\""
      << fixed(bottom + l.label_h + 16, 1) << "\" text-anchor=\"middle\">predicted class</text>";
}

std::string heatmap(const Evaluation& e) {
  std::size_t longest = 0;
  for (const auto& c : e.classes) longest = std::max(longest, c.size());
  const std::size_t n = e.classes.size();
  const Layout l(n, longest);
  const double width = l.left + double(n) * l.cell + 12;
  const double height = l.top + double(n) * l.cell + l.label_h + 24;
  std::ostringstream out;
  out << "<svg class=\"cm\" viewBox=\"0 0 " << fixed(width, 0) << " " << fixed(height, 0)
      << "\" role=\"img\" aria-label=\"confusion matrix\"><g data-confusion-matrix data-total=\""
      << e.total << "\">";
  for (std::size_t i = 0; i < n; ++i) {
    int64_t row_sum = 0;
    for (int64_t c : e.matrix[i]) row_sum += c;
    for (std::size_t j = 0; j < n; ++j) write_cell(out, e, l, i, j, row_sum);
  }
  out << "</g>";
  write_labels(out, e, l);
  out << "</svg>";
  return out.str();
}

// A table cell with a bar behind the value (a share in [0, 1]).
std::string bar_cell(const std::optional<double>& v) {
  if (!v) return "<td class=\"num\">\u2013</td>";
  return "<td class=\"bar num\"><i style=\"width:" + fixed(std::clamp(*v, 0.0, 1.0) * 100, 1) +
         "%\"></i><span>" + fixed(*v, 3) + "</span></td>";
}

void write_scores(std::ostream& out, const Evaluation& e) {
  out << "<table><thead><tr><th>class</th><th class=\"num\">precision</th><th class=\"num\">"
         "recall</th><th class=\"num\">F1</th><th class=\"num\">support</th></tr></thead><tbody>";
  double p_sum = 0, r_sum = 0;
  int p_n = 0, r_n = 0;
  for (const auto& s : e.scores) {
    std::optional<double> f1;
    if (s.precision && s.recall && *s.precision + *s.recall > 0) {
      f1 = 2 * *s.precision * *s.recall / (*s.precision + *s.recall);
    }
    if (s.precision) p_sum += *s.precision, ++p_n;
    if (s.recall) r_sum += *s.recall, ++r_n;
    out << "<tr><th>" << escape(s.name) << "</th>" << bar_cell(s.precision) << bar_cell(s.recall)
        << "<td class=\"num\">" << (f1 ? fixed(*f1, 3) : "\u2013") << "</td><td class=\"num\">"
        << count(s.support) << "</td></tr>";
  }
  out << "</tbody><tfoot><tr><td>macro average</td><td class=\"num\">"
      << (p_n ? fixed(p_sum / p_n, 3) : "\u2013") << "</td><td class=\"num\">"
      << (r_n ? fixed(r_sum / r_n, 3) : "\u2013") << "</td><td></td><td class=\"num\">"
      << count(e.total) << "</td></tr></tfoot></table>";
}

// "Most confused: shirt → T-shirt (120), …": the largest off-diagonal cells, at most three.
std::string most_confused(const Evaluation& e) {
  std::vector<std::tuple<int64_t, std::size_t, std::size_t>> off;
  const std::size_t n = e.classes.size();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i != j && e.matrix[i][j] > 0) off.emplace_back(-e.matrix[i][j], i, j);
    }
  }
  if (off.empty()) return "No confusions: every test sample was classified correctly.";
  std::sort(off.begin(), off.end());
  std::string out = "Most confused (true \u2192 predicted): ";
  for (std::size_t k = 0; k < std::min<std::size_t>(3, off.size()); ++k) {
    const auto& [c, i, j] = off[k];
    out += (k ? ", " : "") + std::string("<b>") + escape(e.classes[i]) + " \u2192 " +
           escape(e.classes[j]) + "</b> (" + count(-c) + ")";
  }
  return out + ".";
}

}  // namespace

void write_evaluation(std::ostream& out, const ReportData& data) {
  const VersionReport& v = data.versions[0];
  out << "<section id=\"evaluation\"><h2>Evaluation</h2>";
  std::string why;
  const auto e = read_evaluation(v.manifest, why);
  if (!e) {
    out << "<p class=\"note\">" << version_chip(v.version, 0) << " " << escape(why)
        << "</p></section>";
    return;
  }
  int64_t correct = 0;
  for (std::size_t i = 0; i < e->classes.size(); ++i) correct += e->matrix[i][i];
  out << "<p class=\"lead\">" << version_chip(v.version, 0) << " on the test split after the last "
      << "epoch: " << count(e->total) << " samples";
  if (e->samples && *e->samples != e->total) out << " (" << count(*e->samples) << " evaluated)";
  out << ", accuracy <b>" << (e->total > 0 ? percent(double(correct) / double(e->total)) : "\u2013")
      << "</b>. Rows are the true class, columns the prediction; colour is the share of the true "
         "class (blue: correct, orange: confused).</p><div class=\"eval"
      << (e->classes.size() > kMaxSideBySideClasses ? " wide" : "") << "\"><figure>" << heatmap(*e)
      << "</figure><div>";
  write_scores(out, *e);
  out << "<p class=\"note\">" << most_confused(*e) << "</p></div></div></section>";
}

}  // namespace ddpipe::report
