// ddpipe::core — the one typed configuration of a ddpipe job.
//
// Every field has an embedded default (the default job: real Fashion-MNIST, 2 local ranks, a
// local store). The schema in config.cpp is the one declaration of each key: its type, allowed
// values and meaning; docs/configuration.md and `--help` are generated from it
// (config_reference()). load_config() layers, lowest first: defaults < YAML file < `--set a.b=v`
// overrides, then validates everything at once. Unknown keys, wrong types and out-of-range
// values are collected and thrown as one core::Error(kUsage) whose lines each name the key
// path and what is allowed. Nothing is started on a bad config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ddpipe::core {

// One struct a section. What each field means, its default and allowed values: the schema in
// config.cpp (and docs/configuration.md, generated from it).
struct DataConfig {
  std::string format = "idx";
  std::string name = "fashion-mnist";
  std::string path = "/usr/share/datasets/fashion-mnist";
  std::string digest;
  bool download = false;
  std::string url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
  std::string md5 = "c32a1d4ab5d03f1284b67883e8d87530";
  int64_t channels = 3;
  int64_t height = 32;
  int64_t width = 32;
  double test_fraction = 0.2;
  int64_t train_size = 50000;
  int64_t test_size = 10000;
  int64_t classes = 10;
  // How the dataset is stored: "memory" (one tensor file per split, loaded whole) or "sharded"
  // (WebDataset tar shards of the original image bytes, streamed: docs/datasets.md).
  std::string form = "memory";
  int64_t shard_mb = 128;  // sharded: target size of a shard
  double cache_gb = 10;    // sharded: bound of the local shard cache under cache_dir
  int64_t shuffle_buffer = 10000;
  // sharded: a bad image fails ("fail") or is left out with a warning ("skip"), at ingest and
  // in training (docs/datasets.md, "Bad images").
  std::string bad_images = "fail";
};

struct FeaturesConfig {
  bool random_crop = false;
  int64_t crop_padding = 2;
  bool horizontal_flip = true;
  bool normalize = true;
  int64_t image_size = 224;      // sharded: training and evaluation crops are S×S
  double crop_scale_min = 0.08;  // sharded: smallest area of a random resized crop
};

struct LoaderConfig {
  int64_t workers = 1;
  int64_t prefetch = 4;
};

struct ModelConfig {
  std::string arch = "resnet-mini";
  int64_t width = 16;
  bool channels_last = true;
  // Initial weights from a state dict (.pth or .safetensors), and the name prefixes
  // left as initialised (a head of another class count).
  std::string init_from;
  std::vector<std::string> init_skip;
};

struct TrainConfig {
  int64_t epochs = 9;
  int64_t batch_size = 128;
  double lr = 0.2;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = true;
  std::string scheduler = "cosine";
  int64_t lr_step_size = 30;  // scheduler "step": epochs between decays
  double lr_gamma = 0.1;      // scheduler "step": the factor of each decay
  double warmup_epochs = 0.0;
  int64_t grad_accum = 1;
  double label_smoothing = 0.1;
  int64_t threads = 0;
  int64_t eval_batch_size = 500;
  int64_t max_steps_per_epoch = 0;
  bool resume = false;
  std::string run_id;
  bool flush_denormal = true;
  std::string precision = "auto";
};

struct DistConfig {
  int64_t nproc = 2;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;
  double bucket_mb = 4.0;
  double timeout_s = 300.0;
  double rdzv_timeout_s = 600.0;
  double heartbeat_timeout_s = 30.0;
  int64_t max_restarts = 0;
  int64_t min_nproc = 0;  // `launch`: fewest ranks an elastic restart shrinks to; 0 = never
  int64_t nnodes = 1;
  int64_t node_rank = 0;
  std::string grad_compression = "none";  // one of kGradCompressions
  int64_t powersgd_rank = 1;
  int64_t powersgd_start_step = 1000;
};
// dist.grad_compression's values, in the order of dist::GradCompression.
inline const std::vector<std::string> kGradCompressions{"none", "bf16", "fp16", "powersgd"};

struct CheckpointConfig {
  int64_t every_steps = 0;
  double storage_grace_s = 600.0;
  int64_t keep_last = 2;          // a run's own checkpoints kept in the store; 0 = all
  double preempt_grace_s = 30.0;  // SIGTERM: the preemption checkpoint must be stored by then
};

// How long a supervisor (a launcher, a pod's terminationGracePeriodSeconds) lets a rank that got
// SIGTERM stop before it kills it: checkpoint.preempt_grace_s plus time for the step in progress,
// the agreement and the exit.
inline constexpr double kPreemptExitMarginS = 15.0;
inline double preempt_stop_seconds(const CheckpointConfig& c) {
  return c.preempt_grace_s + kPreemptExitMarginS;
}

// What a training job tells the world while it runs (docs/telemetry.md).
struct TelemetryConfig {
  int64_t log_every_steps = 50;  // a progress event every K steps (0 = not by steps)
  double log_every_s = 30.0;     // … or every S seconds (0 = not by time)
  int64_t metrics_port = 0;      // /metrics of rank r on metrics_port + local rank; 0 = off
  double straggler_factor = 1.5;
  double runs_heartbeat_s = 10.0;  // run record heartbeat; 0 = only at start and end
  double runs_lost_after_s = 120.0;
};

// The model registry: what `ddpipe run` does after publishing.
struct RegistryConfig {
  struct Promote {
    std::string alias;  // "" = no promotion
    std::string metric = "test_acc";
    double min_delta = 0.0;
  } promote;
};

struct ServeConfig {
  std::string host = "127.0.0.1";
  int64_t port = 8080;
  std::string model;
  std::string version = "latest";
  int64_t max_batch = 32;
  double max_delay_ms = 0.0;
  int64_t max_queue = 1024;
  double max_body_mb = 16.0;
  int64_t max_pixels = 16777216;
  int64_t threads = 64;
  int64_t inference_threads = 0;
  double poll_s = 5.0;
  std::string auth_token_env;
  double read_timeout_s = 10.0;
  double write_timeout_s = 10.0;
  bool access_log = true;
};

// Empty S3 strings fall back to the AWS_* environment (storage::resolve_s3_settings); secrets
// are redacted by to_yaml().
struct S3Config {
  std::string endpoint;
  std::string region;
  bool path_style = true;
  int64_t part_size_mb = 16;
  int64_t parallel_parts = 8;
  double timeout_s = 30.0;
  int64_t max_retries = 5;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
};

// What to_yaml() prints instead of a secret; reading it back gives "" (the environment's).
inline constexpr const char* kRedacted = "<redacted>";

struct Config {
  std::string name = "fmnist-resnet";
  std::string store = "./artifacts";
  std::string cache_dir = "~/.cache/ddpipe";
  int64_t seed = 42;
  bool deterministic = false;
  DataConfig data;
  FeaturesConfig features;
  LoaderConfig loader;
  ModelConfig model;
  TrainConfig train;
  DistConfig dist;
  CheckpointConfig checkpoint;
  TelemetryConfig telemetry;
  RegistryConfig registry;
  ServeConfig serve;
  S3Config s3;

  // Dotted keys that the config file or an override set ("dist.nproc"), whatever the value;
  // the other keys hold their defaults.
  std::set<std::string> explicit_keys;
  bool is_set(const std::string& key) const { return explicit_keys.count(key) > 0; }
};

// Allowed values of string keys that a component above core owns, by key: model.arch's come
// from the model component (model::config_choices()). Checked like the schema's own choices
// ("must be one of …") and listed by config_reference().
using ConfigChoices = std::map<std::string, std::vector<std::string>>;

// Loads `path` (empty: defaults only), applies `overrides` ("section.key=value", value parsed
// as YAML), validates. Throws core::Error(kUsage) listing every problem.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {},
                   const ConfigChoices& choices = {});
// The config file `--config NAME_OR_PATH` names: the file itself when there is one; else, for a
// bare name ("imagenet-resnet18" or "imagenet-resnet18.yaml"), the shipped config of that name in
// the first of `shipped_dirs` that holds it. Throws core::Error(kUsage) naming what was looked for
// and the shipped configs when there is neither (a path with a folder, or "", is returned as
// given: load_config() then says it cannot be read, or loads the defaults).
std::string find_config(const std::string& name_or_path,
                        const std::vector<std::filesystem::path>& shipped_dirs);

// Parses YAML text (for tests and for configs stored in manifests).
Config config_from_yaml(const std::string& yaml_text,
                        const std::vector<std::string>& overrides = {},
                        const ConfigChoices& choices = {});
// The effective config as YAML, every field present, in a stable order; secrets (s3.*secret*,
// s3.session_token) are printed as kRedacted, so the output is safe for logs and manifests.
std::string to_yaml(const Config& config);
// One key of the schema, as documentation shows it.
struct KeyInfo {
  std::string key;            // "train.epochs"
  std::string type;           // integer, number, boolean, string or list of strings
  std::string default_value;  // as YAML prints it; "" for an empty string
  std::string allowed;        // "1–65536", "`cosine`, `none`", a format, or "" (any)
  std::string help;           // what it means (Markdown)
  bool secret = false;
};
// Every key in schema order, with `choices` merged in.
std::vector<KeyInfo> config_reference(const ConfigChoices& choices = {});

}  // namespace ddpipe::core
