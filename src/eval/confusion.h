// ddpipe::eval — how a classifier errs, class by class: the confusion matrix of a test split
// and the per-class precision and recall computed from it (stored with every model version).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ddpipe::eval {

// counts[t * classes + p]: samples of true class t predicted as p. Row = true, column = predicted.
struct Confusion {
  int64_t classes = 0;
  std::vector<double> counts;  // classes × classes, row-major

  explicit Confusion(int64_t n = 0) : classes(n), counts(static_cast<size_t>(n * n), 0.0) {}
  void add(int64_t truth, int64_t predicted) { counts[truth * classes + predicted] += 1.0; }
  double total() const;
};

// The evaluation document of a version (the manifest's "evaluation"):
//   {"classes": [names], "confusion_matrix": [[n]], "samples": n,
//    "per_class": [{"class", "precision", "recall", "support"}]}
// precision = tp / predicted as the class (0 when nothing was), recall = tp / support (0 when
// the class has no samples). core::Error(kUsage) when the names do not match the classes.
nlohmann::json classification_report(const Confusion& confusion,
                                     const std::vector<std::string>& class_names);

}  // namespace ddpipe::eval
