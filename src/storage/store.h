// ddpipe::storage — the artifact store: a flat key space of immutable-once-published objects.
//
// Keys are '/'-separated relative paths ("models/fmnist/model_v20261130_101500/model.pt").
// Every put is atomic: readers see the previous object or the complete new one, never a part,
// even if the writer is killed midway. Objects whose name starts with ".tmp-" are in-flight
// writes and are never listed or returned.
// Errors throw core::Error: kNotFound for a missing key on get, kStorage for IO failures,
// kUsage for an invalid key or store URL. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ddpipe::core {
struct S3Config;
struct Config;
}  // namespace ddpipe::core

namespace ddpipe::storage {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // The URL the store was opened with (never contains credentials).
  virtual std::string url() const = 0;

  virtual void put(const std::string& key, std::string_view bytes) = 0;
  virtual void put_file(const std::string& key, const std::filesystem::path& source) = 0;
  // Returns the object's bytes; throws kNotFound if absent.
  virtual std::string get(const std::string& key) = 0;
  // Writes the object to `dest` atomically (temporary name + rename); throws kNotFound.
  virtual void get_file(const std::string& key, const std::filesystem::path& dest) = 0;
  virtual bool exists(const std::string& key) = 0;
  // Every object whose key starts with `prefix`, sorted by key.
  virtual std::vector<ObjectInfo> list(const std::string& prefix) = 0;
  // Removes one object; absent keys are not an error.
  virtual void remove(const std::string& key) = 0;
  // Copies one object to another key of this store (server-side where the backend can; the
  // default reads and writes it). Throws kNotFound if `from` is absent.
  virtual void copy(const std::string& from, const std::string& to);

  // Convenience: get() or nullopt when absent.
  std::optional<std::string> try_get(const std::string& key);
};

// A store URL, parsed: the one place that knows the formats. A store is a folder (a path, `~`
// allowed, or file:///path) or an S3 bucket with an optional key prefix (s3://bucket[/prefix]).
struct StoreUrl {
  enum class Kind { kLocal, kS3 };
  Kind kind = Kind::kLocal;
  std::string path;    // kLocal: the folder as given (`~` not expanded)
  std::string bucket;  // kS3
  std::string prefix;  // kS3: "" or "a/b" (no trailing '/')

  bool is_s3() const { return kind == Kind::kS3; }
  // A local folder given by an absolute path (not relative, not ~).
  bool is_absolute_path() const;
  // The canonical form: the path, or s3://bucket[/prefix].
  std::string str() const;
};
// Throws core::Error(kUsage) naming the URL for an unsupported scheme, an empty path, a bad
// bucket name or an invalid prefix.
StoreUrl parse_store_url(const std::string& url);

// An object named by a full URL, s3://bucket/key: the store (s3://bucket) and the key in it.
struct ObjectUrl {
  std::string store;
  std::string key;  // may be "" (the whole bucket, for listing)
};
// nullopt when `arg` is not an s3:// URL (then it names a local file or a key of a store).
std::optional<ObjectUrl> parse_object_url(const std::string& arg);

// Opens a store by URL: a local folder (created on first write) or an S3Store (bucket created
// on first write) with the S3 settings of `s3` over the AWS_* environment. Throws
// core::Error(kUsage) for a malformed URL or missing S3 credentials. Logs a warning (component
// "storage") when the S3 credentials are MinIO's defaults (is_minio_default_credentials).
std::unique_ptr<Store> open_store(const std::string& url, const core::S3Config& s3);
// The same with default S3 settings (everything from the environment).
std::unique_ptr<Store> open_store(const std::string& url);
// The store of a job: config.store with config.s3.
std::unique_ptr<Store> open_store(const core::Config& config);

// Whether an access key and secret are MinIO's well-known defaults (minioadmin/minioadmin),
// which anyone can guess: ddpipe warns, never refuses (a local test server may use them).
bool is_minio_default_credentials(const std::string& access_key_id,
                                  const std::string& secret_access_key);

// The limits of keys and names (docs/security.md): S3's own key limit, a file name's
// (NAME_MAX), and the registry's names.
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxSegmentBytes = 255;
inline constexpr size_t kMaxNameBytes = 128;

// The one check of a store key, made by every backend on every call: rejects an empty key, an
// absolute one ('/' first), a '.' or '..' or empty segment, a temp name (.tmp-*), a control
// character (bytes below 0x20, NUL included, and 0x7f), a key over kMaxKeyBytes and a segment
// over kMaxSegmentBytes. Throws core::Error(kUsage) naming the key (control characters escaped)
// and the rule it breaks.
void validate_key(const std::string& key);
// A list() prefix: "" (everything), or a key, or a key followed by one '/'; kUsage otherwise.
void validate_prefix(const std::string& prefix);

// The one rule for a name that becomes one segment of a key — model, alias, version, run id:
// 1 to kMaxNameBytes of [A-Za-z0-9._-], not starting with '.' (so never "." or ".."). Throws
// core::Error(kUsage) "<what> '<name>' is invalid: ..." (control characters escaped).
void validate_name(const std::string& what, const std::string& name);
bool is_valid_name(const std::string& name);
// `text` with control characters and bytes >= 0x7f as \xNN, cut to 200 bytes: how an untrusted
// name appears in an error message or log line.
std::string printable(const std::string& text);

}  // namespace ddpipe::storage
