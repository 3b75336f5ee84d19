// ddpipe::core — the one typed configuration of a ddpipe job.
//
// Every field has an embedded default (the default job: real Fashion-MNIST, 2 local ranks, a
// local store). load_config() layers, lowest first: defaults < YAML file < `--set a.b=v`
// overrides, then validates everything at once. Unknown keys, wrong types and out-of-range
// values are collected and thrown as one core::Error(kUsage) whose lines each name the key
// path and what is allowed. Nothing is started on a bad config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ddpipe::core {

struct DataConfig {
  std::string format = "idx";  // idx | cifar10 | image-folder | synthetic
  std::string name = "fashion-mnist";
  std::string path = "/usr/share/datasets/fashion-mnist";
  std::string digest;     // ingested content to train on; empty = the newest ingest of `name`
  bool download = false;  // cifar10: fetch the archive into `path` if missing
  std::string url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
  std::string md5 = "c32a1d4ab5d03f1284b67883e8d87530";
  // image-folder and synthetic: the stored image shape.
  int64_t channels = 3;
  int64_t height = 32;
  int64_t width = 32;
  double test_fraction = 0.2;  // image-folder without train/ and test/ subfolders
  // synthetic
  int64_t train_size = 50000;
  int64_t test_size = 10000;
  int64_t classes = 10;
};

struct FeaturesConfig {
  // Off in the default (Fashion-MNIST) job: its items are centred and size-normalised, and in a
  // short run crops cost test accuracy (at 9 epochs, 91.36% with them against 92.32% without:
  // BENCHMARKS.md). On for CIFAR-10 (configs/seed-cifar10-resnet18.yaml).
  bool random_crop = false;
  int64_t crop_padding = 2;
  bool horizontal_flip = true;
  bool normalize = true;  // by the dataset's own per-channel mean/std
};

struct LoaderConfig {
  int64_t workers = 1;   // decode/augment threads per rank
  int64_t prefetch = 4;  // batches buffered ahead per rank
};

struct ModelConfig {
  std::string arch = "resnet-mini";  // resnet-mini | resnet18 | resnet18-cifar
  int64_t width = 16;                // base width of resnet-mini
  bool channels_last = true;
};

struct TrainConfig {
  int64_t epochs = 9;
  int64_t batch_size = 128;  // per rank
  double lr = 0.2;           // for the global batch of all ranks
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = true;
  std::string scheduler = "cosine";  // cosine | none
  double warmup_epochs = 0.0;
  int64_t grad_accum = 1;  // micro-batches per optimizer step
  double label_smoothing = 0.1;
  int64_t threads = 0;  // intra-op threads per rank; 0 = cores / local ranks
  int64_t eval_batch_size = 500;
  int64_t max_steps_per_epoch = 0;  // 0 = the whole epoch (tests and benchmarks cut it)
  bool resume = false;              // continue from the newest checkpoint of `name`
  // Checkpoints of the same run id are resumed automatically (a restarted PyTorchJob pod, a
  // `launch --max-restarts` restart). "" = $DDPIPE_RUN_ID, else a fresh id per launch.
  std::string run_id;
  bool flush_denormal = true;
  // fp32 | bf16 (autocast of the forward pass on CPU) | auto (bf16 where the CPU has native bf16
  // arithmetic, AVX512-BF16; fp32 elsewhere)
  std::string precision = "auto";
};

struct DistConfig {
  int64_t nproc = 2;  // local ranks started by `launch` / `run`
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;            // 0 = pick a free port (local launch only)
  double bucket_mb = 4.0;             // gradient bucket size
  double timeout_s = 300.0;           // every collective
  double rdzv_timeout_s = 600.0;      // how long ranks wait for the master and each other at start
  double heartbeat_timeout_s = 30.0;  // a rank silent this long is lost: the group exits 128
  int64_t max_restarts = 0;           // `launch`: restarts of the whole local group after a failure
  int64_t nnodes = 1;                 // `launch`: nodes of the job (torchrun --nnodes)
  int64_t node_rank = 0;              // `launch`: this node's index (torchrun --node-rank)
};

struct CheckpointConfig {
  int64_t every_steps = 0;  // also checkpoint every K optimizer steps; 0 = once per epoch
  // Storage away: keep training, retry the upload; fail only after this many seconds.
  double storage_grace_s = 600.0;
};

// `ddpipe serve`: the HTTP inference service (docs/serving.md).
struct ServeConfig {
  std::string host = "127.0.0.1";  // 0.0.0.0 exposes it beyond this machine
  int64_t port = 8080;             // 0 = any free port (logged)
  std::string model;               // registry name; empty = `name`
  std::string version = "latest";  // latest, an alias or model_v<stamp>; aliases are watched
  int64_t max_batch = 32;          // requests run together through the network
  double max_delay_ms = 0.0;       // how long the oldest input waits for more; 0 = none
  int64_t max_queue = 1024;        // queued images beyond which requests get 503
  double max_body_mb = 16.0;       // request body limit (413)
  int64_t max_pixels = 16777216;   // width × height limit, checked before decoding (413)
  int64_t threads = 64;            // HTTP worker threads = connections served at once
  int64_t inference_threads = 0;   // libtorch intra-op threads; 0 = all cores
  double poll_s = 5.0;             // alias watch interval; 0 = load once
  std::string auth_token_env;      // env var holding the bearer token; empty = no auth
  double read_timeout_s = 10.0;    // slow clients: the most a whole request may take
  double write_timeout_s = 10.0;
  bool access_log = true;  // one JSON line per request
};

// The S3 client of `store: s3://bucket/prefix`. Empty strings fall back to the AWS_* environment
// (see storage::resolve_s3_settings); secrets are redacted by to_yaml().
struct S3Config {
  std::string endpoint;       // "" = $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS for `region`
  std::string region;         // "" = $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1
  bool path_style = true;     // http://host/bucket/key (MinIO, Ceph); false: bucket.host/key
  int64_t part_size_mb = 16;  // multipart part size; larger objects are uploaded in parts
  int64_t parallel_parts = 8;     // parts (and ranged reads) in flight per transfer
  double timeout_s = 30.0;        // connect timeout and the longest stall of a request
  int64_t max_retries = 5;        // per request: connection errors, timeouts, 5xx, SlowDown
  std::string access_key_id;      // "" = $AWS_ACCESS_KEY_ID
  std::string secret_access_key;  // "" = $AWS_SECRET_ACCESS_KEY (prefer the environment)
  std::string session_token;      // "" = $AWS_SESSION_TOKEN
};

// What to_yaml() prints instead of a secret; reading it back gives "" (the environment's).
inline constexpr const char* kRedacted = "<redacted>";

struct Config {
  std::string name = "fmnist-resnet";  // model name in the registry
  std::string store = "./artifacts";   // local folder, file:///path or s3://bucket/prefix
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
  ServeConfig serve;
  S3Config s3;
};

// Loads `path` (empty: defaults only), applies `overrides` ("section.key=value", value parsed
// as YAML), validates. Throws core::Error(kUsage) listing every problem.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Parses YAML text (for tests and for configs stored in manifests).
Config config_from_yaml(const std::string& yaml_text,
                        const std::vector<std::string>& overrides = {});
// The effective config as YAML, every field present, in a stable order; secrets (s3.*secret*,
// s3.session_token) are printed as kRedacted, so the output is safe for logs and manifests.
std::string to_yaml(const Config& config);
// Dotted keys of every field, for --help.
std::vector<std::string> config_keys();

}  // namespace ddpipe::core
