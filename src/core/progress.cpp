#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/clock.h"

namespace ddpipe::core {

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), active_(enabled && isatty(STDERR_FILENO)) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& suffix) {
  if (!active_) return;
  double now = monotonic_seconds();
  if (done < total_ && now - last_draw_ < 0.1) return;
  last_draw_ = now;
  constexpr int kWidth = 24;
  int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
  std::string bar(filled, '#');
  bar += std::string(kWidth - filled, '-');
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld  %s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), suffix.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!active_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  active_ = false;
}

}  // namespace ddpipe::core
