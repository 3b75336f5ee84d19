#include "core/error.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/fs.h"

namespace ddpipe::core {

int exit_code(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kInternal:
      return 1;
    case ErrorKind::kUsage:
      return 2;
    case ErrorKind::kData:
      return 3;
    case ErrorKind::kNotFound:
      return 4;
    case ErrorKind::kStorage:
      return 5;
    case ErrorKind::kSystem:
      return 6;
    case ErrorKind::kRetryable:
      return 128;
    case ErrorKind::kPreempted:
      return 143;
  }
  return 1;
}

int http_status(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kUsage:
    case ErrorKind::kData:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kRetryable:
    case ErrorKind::kPreempted:
    case ErrorKind::kStorage:
      return 503;
    case ErrorKind::kInternal:
    case ErrorKind::kSystem:
      return 500;
  }
  return 500;
}

const char* kind_name(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kInternal:
      return "internal";
    case ErrorKind::kUsage:
      return "usage";
    case ErrorKind::kData:
      return "data";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kStorage:
      return "storage";
    case ErrorKind::kSystem:
      return "system";
    case ErrorKind::kRetryable:
      return "retryable";
    case ErrorKind::kPreempted:
      return "preempted";
  }
  return "internal";
}

void record_error_file(const std::string& message, ErrorKind kind) noexcept {
  const char* path = std::getenv("TORCHELASTIC_ERROR_FILE");
  if (!path || !*path) return;
  try {
    const char* rank = std::getenv("RANK");
    nlohmann::json j = {{"message",
                         {{"message", message},
                          {"extraInfo",
                           {{"timestamp", std::to_string(std::time(nullptr))},
                            {"kind", kind_name(kind)},
                            {"exit_code", exit_code(kind)},
                            {"rank", rank ? rank : "0"}}}}}};
    write_file_atomic(path, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (...) {
  }
}

void fail_usage(const std::string& message) { throw Error(ErrorKind::kUsage, message); }
void fail_data(const std::string& message) { throw Error(ErrorKind::kData, message); }
void fail_not_found(const std::string& message) { throw Error(ErrorKind::kNotFound, message); }
void fail_storage(const std::string& message) { throw Error(ErrorKind::kStorage, message); }
void fail_system(const std::string& what) {
  const int error = errno;
  throw Error(ErrorKind::kSystem, what + ": " + std::strerror(error));
}

}  // namespace ddpipe::core
