// Test helper: what the process writes to stderr (fd 2) while an object lives, through a
// temporary file (core::log writes with fwrite + fflush to stderr).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace ddpipe::telemetry {

class CaptureStderr {
 public:
  CaptureStderr() : path_(dir_.path() / "stderr") {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    FILE* f = std::fopen(path_.c_str(), "w");
    dup2(fileno(f), STDERR_FILENO);
    std::fclose(f);
  }
  ~CaptureStderr() { restore(); }

  // Stops capturing and returns what was written.
  std::string text() {
    restore();
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    saved_ = -1;
  }

  ddpipe::testing::TempDir dir_;
  std::filesystem::path path_;
  int saved_ = -1;
};

}  // namespace ddpipe::telemetry
