#include "eval/confusion.h"

#include <numeric>

#include "core/error.h"

namespace ddpipe::eval {

double Confusion::total() const { return std::accumulate(counts.begin(), counts.end(), 0.0); }

nlohmann::json classification_report(const Confusion& confusion,
                                     const std::vector<std::string>& class_names) {
  const int64_t n = confusion.classes;
  if (static_cast<int64_t>(class_names.size()) != n) {
    core::fail_usage("classification report: " + std::to_string(class_names.size()) +
                     " class names for a " + std::to_string(n) + "-class confusion matrix");
  }
  auto at = [&](int64_t t, int64_t p) { return confusion.counts[t * n + p]; };
  nlohmann::json matrix = nlohmann::json::array(), per_class = nlohmann::json::array();
  for (int64_t t = 0; t < n; ++t) {
    nlohmann::json row = nlohmann::json::array();
    double support = 0.0, predicted = 0.0;
    for (int64_t p = 0; p < n; ++p) {
      row.push_back(static_cast<int64_t>(at(t, p)));
      support += at(t, p);
      predicted += at(p, t);
    }
    matrix.push_back(row);
    const double tp = at(t, t);
    per_class.push_back({{"class", class_names[t]},
                         {"precision", predicted > 0 ? tp / predicted : 0.0},
                         {"recall", support > 0 ? tp / support : 0.0},
                         {"support", static_cast<int64_t>(support)}});
  }
  return {{"classes", class_names},
          {"confusion_matrix", matrix},
          {"per_class", per_class},
          {"samples", static_cast<int64_t>(confusion.total())}};
}

}  // namespace ddpipe::eval
