#include "core/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

namespace ddpipe::core::log {
namespace {

struct State {
  std::mutex mu;
  int rank = -1;
  Level level = Level::kInfo;
  bool json = !isatty(STDERR_FILENO);
  State() {
    if (const char* l = std::getenv("DDPIPE_LOG_LEVEL")) {
      std::string s(l);
      if (s == "debug") level = Level::kDebug;
      if (s == "warn") level = Level::kWarn;
      if (s == "error") level = Level::kError;
    }
  }
};

State& state() {
  static State s;
  return s;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void set_rank(int rank) { state().rank = rank; }
void set_level(Level level) { state().level = level; }
void set_json(bool json) { state().json = json; }
bool json() { return state().json; }

void write(Level level, const std::string& component, const std::string& message,
           const nlohmann::json* fields) {
  State& s = state();
  if (level < s.level) return;
  std::string line;
  if (s.json) {
    nlohmann::json j = {{"ts", now_iso()}, {"level", level_name(level)}, {"component", component}};
    if (s.rank >= 0) j["rank"] = s.rank;
    j["msg"] = message;
    if (fields && fields->is_object()) {
      for (auto& [k, v] : fields->items()) j[k] = v;
    }
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = "[" + now_iso().substr(11, 8) + "] " + level_name(level) + " " + component;
    if (s.rank >= 0) line += " (rank " + std::to_string(s.rank) + ")";
    line += ": " + message;
    if (fields && fields->is_object()) {
      for (auto& [k, v] : fields->items()) {
        line += " " + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
  }
  line += "\n";
  std::lock_guard<std::mutex> lock(s.mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void info(const std::string& component, const std::string& message, const nlohmann::json& fields) {
  write(Level::kInfo, component, message, &fields);
}

void warn(const std::string& component, const std::string& message, const nlohmann::json& fields) {
  write(Level::kWarn, component, message, &fields);
}

void error(const std::string& component, const std::string& message, const nlohmann::json& fields) {
  write(Level::kError, component, message, &fields);
}

}  // namespace ddpipe::core::log
