// ddpipe::core — structured logging to stderr.
//
// One line per event. On a TTY: "[time] LEVEL component (rank r): message k=v ...".
// Otherwise a JSON object per line: {"ts","level","component","rank","msg", ...fields}.
// Thread-safe. Never pass secrets as fields.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ddpipe::core::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Process-wide settings; call once at start-up (the CLI does).
void set_rank(int rank);      // -1 (default) hides the rank
void set_level(Level level);  // default kInfo; env DDPIPE_LOG_LEVEL=debug|info|warn|error
void set_json(bool json);     // default: JSON unless stderr is a TTY
// Whether lines are JSON objects: set_json's value, by default whether stderr is no TTY. Whoever
// draws on stderr (progress bars) asks this, so bars and JSON lines never mix.
bool json();

void write(Level level, const std::string& component, const std::string& message,
           const nlohmann::json* fields = nullptr);

inline void info(const std::string& c, const std::string& m) { write(Level::kInfo, c, m); }
inline void warn(const std::string& c, const std::string& m) { write(Level::kWarn, c, m); }
inline void error(const std::string& c, const std::string& m) { write(Level::kError, c, m); }
inline void debug(const std::string& c, const std::string& m) { write(Level::kDebug, c, m); }
void info(const std::string& component, const std::string& message, const nlohmann::json& fields);
void warn(const std::string& component, const std::string& message, const nlohmann::json& fields);
void error(const std::string& component, const std::string& message, const nlohmann::json& fields);

}  // namespace ddpipe::core::log
