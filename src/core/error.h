// ddpipe::core — the one exception type of the project and the process exit codes.
//
// Expected failures (bad config, bad data, storage trouble, the OS refusing, lost peers) are
// thrown as core::Error with a kind; the CLI edge catches them and maps the kind to an exit code.
// Codes 1–127 are permanent (do not retry); 128 and above ask the orchestrator to retry,
// matching the Kubeflow training operator's `ExitCode` restart policy.
#pragma once

#include <stdexcept>
#include <string>

namespace ddpipe::core {

enum class ErrorKind {
  kInternal,   // a bug or an unexpected library failure            -> exit 1
  kUsage,      // bad command line or config value                   -> exit 2
  kData,       // dataset missing, corrupt or inconsistent           -> exit 3
  kNotFound,   // model, version, alias or object does not exist     -> exit 4
  kStorage,    // artifact store failed (permanent: permissions, …)  -> exit 5
  kSystem,     // the OS refused: fork, pipe, socket, exec, namespaces -> exit 6
  kRetryable,  // lost peer, collective timeout, storage away       -> exit 128
  kPreempted,  // SIGTERM: stopped at a stored checkpoint; resume     -> exit 143 (128 + SIGTERM)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

// Process exit code for an error kind (see docs/exit-codes in README).
int exit_code(ErrorKind kind) noexcept;
// HTTP status for an error kind, as the services answer it: 400 usage and data, 404 not found,
// 503 storage and retryable (try again), 500 internal and system.
int http_status(ErrorKind kind) noexcept;
const char* kind_name(ErrorKind kind) noexcept;

// Records a fatal error of this process in $TORCHELASTIC_ERROR_FILE, if set (torchrun's
// format: {"message": {"message": …, "extraInfo": {"timestamp", "kind", "exit_code", "rank"}}}),
// so the launcher or the operator can say which rank failed and why. Never throws.
void record_error_file(const std::string& message, ErrorKind kind) noexcept;

// Shorthands: throw core::Error of the given kind.
[[noreturn]] void fail_usage(const std::string& message);
[[noreturn]] void fail_data(const std::string& message);
[[noreturn]] void fail_not_found(const std::string& message);
[[noreturn]] void fail_storage(const std::string& message);
// kSystem with the message "<what>: <strerror(errno)>". Call it right after the failing call:
// errno is read first thing, so `what` must not be built by another system call.
[[noreturn]] void fail_system(const std::string& what);

}  // namespace ddpipe::core
