// Test helper: capture what core::log writes to stderr and count its lines.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>

#include "core/log.h"

namespace ddpipe::runs {

// Captures stderr (JSON log lines) from construction until lines() is called.
class LogCapture {
 public:
  LogCapture() {
    core::log::set_json(true);
    ::testing::internal::CaptureStderr();
  }
  ~LogCapture() {
    if (!done_) ::testing::internal::GetCapturedStderr();
  }
  // Stops capturing; returns what was written.
  const std::string& stop() {
    if (!done_) text_ = ::testing::internal::GetCapturedStderr();
    done_ = true;
    return text_;
  }
  // Lines of `level` from component "runs" whose message or fields contain `needle`.
  int count(const std::string& level, const std::string& needle = "") {
    std::istringstream in(stop());
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || j.value("component", "") != "runs") continue;
      if (j.value("level", "") == level && line.find(needle) != std::string::npos) ++n;
    }
    return n;
  }

 private:
  bool done_ = false;
  std::string text_;
};

}  // namespace ddpipe::runs
