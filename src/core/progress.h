// ddpipe::core — progress of long work. On a TTY (stderr) a bar redrawn in place:
//   epoch 3/8 [##########----------] 234/469  2713 img/s  loss 0.3121
// Elsewhere nothing is drawn: callers log structured JSON lines at milestones instead.
#pragma once

#include <cstdint>
#include <string>

namespace ddpipe::core {

class ProgressBar {
 public:
  // `enabled` = false silences it (non-zero ranks); it is also silent when stderr is no TTY.
  ProgressBar(std::string label, int64_t total, bool enabled);
  ~ProgressBar();
  // Redraws at most ~10 times a second.
  void update(int64_t done, const std::string& suffix);
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool active_;
  double last_draw_ = 0.0;
};

}  // namespace ddpipe::core
