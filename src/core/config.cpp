#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "core/error.h"

namespace ddpipe::core {
namespace {

// One field of the schema: where it lives, how to read, check and print it, and its docs.
struct Field {
  std::string key;
  std::string type;  // "integer", "number", "boolean", "string", "list of strings"
  std::function<std::string(const YAML::Node&)> set;  // returns "" or the error text
  std::function<YAML::Node()> get;
  bool secret = false;               // never printed: to_yaml() and error messages show kRedacted
  std::string allowed;               // the allowed values, as the docs print them ("" = any)
  std::string help;                  // what the key means
  std::vector<std::string> choices;  // a string key's allowed values ({} = any)
};

template <typename T>
bool scalar_as(const YAML::Node& n, T& out) {
  if (!n.IsScalar()) return false;
  try {
    out = n.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

std::string show(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

constexpr int64_t kBig = std::numeric_limits<int32_t>::max();

template <typename T>
std::string number_text(T v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// The shortest decimal that reads back as `v` (0.2, not 0.20000000000000001).
std::string shortest(double v) {
  const int integer_digits = std::fabs(v) >= 1 ? static_cast<int>(std::log10(std::fabs(v))) + 1 : 1;
  for (int digits = std::min(integer_digits, 17); digits <= 17; ++digits) {
    std::ostringstream o;
    o.precision(digits);
    o << v;
    if (std::stod(o.str()) == v) return o.str();
  }
  return number_text(v);
}

// "lo–hi", or "≥ lo" when there is no real upper bound.
template <typename T>
std::string range_text(T lo, T hi) {
  if (hi >= static_cast<T>(kBig)) return "≥ " + number_text(lo);
  return number_text(lo) + "–" + number_text(hi);
}

std::string choices_text(const std::vector<std::string>& choices) {
  std::string all;
  for (auto& c : choices) all += (all.empty() ? "" : ", ") + c;
  return all;
}

Field int_field(const std::string& key, int64_t* p, int64_t lo, int64_t hi, std::string help) {
  return {key,
          "integer",
          [=](const YAML::Node& n) -> std::string {
            int64_t v;
            if (!scalar_as(n, v)) return "expected an integer, got " + show(n);
            if (v < lo || v > hi) {
              return "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                     ", got " + std::to_string(v);
            }
            *p = v;
            return "";
          },
          [=] { return YAML::Node(*p); },
          false,
          range_text(lo, hi),
          std::move(help)};
}

Field num_field(const std::string& key, double* p, double lo, double hi, std::string help) {
  return {key,
          "number",
          [=](const YAML::Node& n) -> std::string {
            double v;
            if (!scalar_as(n, v) || v != v) return "expected a number, got " + show(n);
            if (v < lo || v > hi) {
              return "must be between " + number_text(lo) + " and " + number_text(hi) + ", got " +
                     number_text(v);
            }
            *p = v;
            return "";
          },
          [=] { return YAML::Node(shortest(*p)); },
          false,
          range_text(lo, hi),
          std::move(help)};
}

Field bool_field(const std::string& key, bool* p, std::string help) {
  return {key,
          "boolean",
          [=](const YAML::Node& n) -> std::string {
            bool v;
            if (!scalar_as(n, v)) return "expected true or false, got " + show(n);
            *p = v;
            return "";
          },
          [=] { return YAML::Node(*p); },
          false,
          "",
          std::move(help)};
}

// A string; `allowed` documents a format the schema does not check itself (checked where the
// value is used, e.g. model names by the registry).
Field str_field(const std::string& key, std::string* p, std::string help, std::string allowed = "",
                bool non_empty = false) {
  return {key,
          "string",
          [=](const YAML::Node& n) -> std::string {
            if (!n.IsScalar()) return "expected a string, got " + show(n);
            if (non_empty && n.Scalar().empty()) return "must not be empty";
            *p = n.Scalar();
            return "";
          },
          [=] { return YAML::Node(*p); },
          false,
          std::move(allowed),
          std::move(help)};
}

// A list of non-empty strings (YAML `[a, b]` or a block sequence; "" or `[]` is the empty list).
Field list_field(const std::string& key, std::vector<std::string>* p, std::string help,
                 std::string allowed = "") {
  return {key,
          "list of strings",
          [=](const YAML::Node& n) -> std::string {
            if (n.IsScalar() && n.Scalar().empty()) {
              p->clear();
              return "";
            }
            if (!n.IsSequence()) return "expected a list of strings like [a, b], got " + show(n);
            std::vector<std::string> items;
            for (const YAML::Node& item : n) {
              if (!item.IsScalar() || item.Scalar().empty()) {
                return "expected a list of non-empty strings, got an item that is " + show(item);
              }
              items.push_back(item.Scalar());
            }
            *p = std::move(items);
            return "";
          },
          [=] {
            YAML::Node seq(YAML::NodeType::Sequence);
            for (const std::string& s : *p) seq.push_back(s);
            seq.SetStyle(YAML::EmitterStyle::Flow);
            return seq;
          },
          false,
          std::move(allowed),
          std::move(help)};
}

// A string with a fixed set of values (more may be added by load_config's `choices`).
Field choice_field(const std::string& key, std::string* p, std::vector<std::string> choices,
                   std::string help) {
  Field f = str_field(key, p, std::move(help));
  f.choices = std::move(choices);
  return f;
}

// A credential: stored as given, printed as kRedacted; reading kRedacted back gives "".
Field secret_field(const std::string& key, std::string* p, std::string help) {
  return {key,
          "string",
          [=](const YAML::Node& n) -> std::string {
            if (!n.IsScalar()) return "expected a string, got " + show(n);
            *p = n.Scalar() == kRedacted ? std::string() : n.Scalar();
            return "";
          },
          [=] { return YAML::Node(p->empty() ? std::string() : std::string(kRedacted)); },
          true,
          "",
          std::move(help)};
}

// The schema, one section a function, in the order `config show` prints. Each row is the one
// declaration of a key: its type, range or choices and meaning (docs/configuration.md is
// generated from these rows by `ddpipe config docs`).
void job_fields(Config& c, std::vector<Field>& f) {
  f.push_back(str_field("name", &c.name, "model name in the registry", "`[A-Za-z0-9._-]+`", true));
  f.push_back(str_field("store", &c.store, "the artifact store ([storage.md](storage.md))",
                        "folder path, `file:///path` or `s3://bucket/prefix`", true));
  f.push_back(
      str_field("cache_dir", &c.cache_dir, "local copies of ingested datasets", "path", true));
  f.push_back(int_field("seed", &c.seed, 0, kBig,
                        "model init, sampler shuffle (seed + epoch), augmentation"));
  f.push_back(bool_field("deterministic", &c.deterministic,
                         "`at::globalContext().setDeterministicAlgorithms`"));
}

void data_fields(DataConfig& d, std::vector<Field>& f) {
  f.push_back(choice_field("data.format", &d.format,
                           {"idx", "cifar10", "image-folder", "synthetic"}, "input format"));
  f.push_back(str_field("data.name", &d.name, "dataset name in the store", "", true));
  f.push_back(str_field("data.path", &d.path, "input file or folder"));
  f.push_back(str_field("data.digest", &d.digest,
                        "ingested content to train on; empty = newest ingest of `data.name`",
                        "64 hex or empty"));
  f.push_back(bool_field("data.download", &d.download,
                         "`cifar10`: fetch `data.url` into `data.path` when missing"));
  f.push_back(str_field("data.url", &d.url, "download URL of the `cifar10` archive"));
  f.push_back(str_field("data.md5", &d.md5, "expected MD5 of the archive", "32 hex"));
  f.push_back(int_field("data.channels", &d.channels, 1, 3,
                        "`image-folder`/`synthetic`: stored channels (1 grey, 3 RGB)"));
  f.push_back(
      int_field("data.height", &d.height, 1, 4096, "`image-folder`/`synthetic`: stored height"));
  f.push_back(
      int_field("data.width", &d.width, 1, 4096, "`image-folder`/`synthetic`: stored width"));
  f.push_back(num_field("data.test_fraction", &d.test_fraction, 0.0, 0.9,
                        "`image-folder` without `train/`+`test/`: seeded share for test"));
  f.push_back(int_field("data.train_size", &d.train_size, 1, kBig, "`synthetic`: training images"));
  f.push_back(int_field("data.test_size", &d.test_size, 1, kBig, "`synthetic`: test images"));
  f.push_back(int_field("data.classes", &d.classes, 2, 100000, "`synthetic`: classes"));
  f.push_back(choice_field("data.form", &d.form, {"memory", "sharded"},
                           "how the dataset is stored: `memory` (loaded whole) or `sharded` "
                           "(WebDataset tar shards, streamed; other formats re-encoded as "
                           "PNG: [datasets.md](datasets.md))"));
  f.push_back(int_field("data.shard_mb", &d.shard_mb, 1, 65536,
                        "`sharded`: target size of a shard in MiB"));
  f.push_back(num_field("data.cache_gb", &d.cache_gb, 0.001, 1e6,
                        "`sharded`: bound of the local shard cache (`cache_dir/shards/`) in GiB"));
  f.push_back(int_field("data.shuffle_buffer", &d.shuffle_buffer, 0, kBig,
                        "sharded splits: samples shuffled in a buffer after the seeded shard "
                        "permutation (0 or 1 = none; [stream-order.md](stream-order.md))"));
  f.push_back(choice_field("data.bad_images", &d.bad_images, {"fail", "skip"},
                           "`sharded`: an image whose header (ingest) or data (training) does "
                           "not decode fails naming it, or is left out with a warning "
                           "([datasets.md](datasets.md#bad-images))"));
}

void input_fields(Config& c, std::vector<Field>& f) {
  f.push_back(bool_field("features.random_crop", &c.features.random_crop,
                         "random crop after zero padding (train split only); off in the default "
                         "Fashion-MNIST job, where it costs accuracy in a short run"));
  f.push_back(
      int_field("features.crop_padding", &c.features.crop_padding, 0, 64, "padding for the crop"));
  f.push_back(bool_field("features.horizontal_flip", &c.features.horizontal_flip,
                         "random flip, p = 0.5 (train split only)"));
  f.push_back(bool_field("features.normalize", &c.features.normalize,
                         "`(x/255 − mean)/std` with the dataset's own statistics (sharded "
                         "form: ImageNet's, [datasets.md](datasets.md))"));
  f.push_back(int_field("features.image_size", &c.features.image_size, 8, 4096,
                        "sharded form: side S of the S×S random resized crop (training) and "
                        "centre crop (evaluation) the images of any size become"));
  f.push_back(num_field("features.crop_scale_min", &c.features.crop_scale_min, 0.01, 1.0,
                        "sharded form: smallest area of the random resized crop, as a share of "
                        "the image's (torchvision's `scale=(min, 1)`); 0.08 as ImageNet's "
                        "recipe, larger for small images where an 8% crop keeps too little"));
  f.push_back(int_field("loader.workers", &c.loader.workers, 0, 64,
                        "batch-building threads per rank (0 = on the training thread)"));
  f.push_back(int_field("loader.prefetch", &c.loader.prefetch, 1, 64,
                        "batches buffered ahead (bounds memory)"));
  // The architectures are the model component's: load_config's `choices` adds them.
  f.push_back(choice_field("model.arch", &c.model.arch, {}, "architecture"));
  f.push_back(int_field("model.width", &c.model.width, 4, 512, "base width of `resnet-mini`"));
  f.push_back(bool_field("model.channels_last", &c.model.channels_last,
                         "NHWC memory format (faster oneDNN convolutions)"));
  // Fine-tuning from a PyTorch state dict.
  f.push_back(str_field("model.init_from", &c.model.init_from,
                        "initial weights: a state dict saved by PyTorch (`torch.save(model."
                        "state_dict(), path)`, `.pth`) or a `.safetensors` file, as a local path "
                        "or a key of `store`; applied to a fresh run, not when resuming. Names "
                        "and shapes must match the model (README: \"Use a ddpipe model in "
                        "Python\"); empty = initialise from `seed`",
                        "path, store key or empty"));
  f.push_back(list_field("model.init_skip", &c.model.init_skip,
                         "with `model.init_from`: name prefixes left as initialised from `seed` "
                         "and not required in the file, e.g. `[fc]` for a head of another class "
                         "count",
                         "name prefixes"));
}

void optimizer_fields(TrainConfig& t, std::vector<Field>& f) {
  f.push_back(int_field("train.epochs", &t.epochs, 1, 100000, "epochs"));
  f.push_back(int_field("train.batch_size", &t.batch_size, 1, 65536, "per rank, per micro-batch"));
  f.push_back(num_field("train.lr", &t.lr, 0.0, 100.0,
                        "SGD learning rate for the global batch (all ranks)"));
  f.push_back(num_field("train.momentum", &t.momentum, 0.0, 0.9999, "SGD momentum"));
  f.push_back(num_field("train.weight_decay", &t.weight_decay, 0.0, 1.0, "L2 weight decay"));
  f.push_back(bool_field("train.nesterov", &t.nesterov, "Nesterov momentum"));
  f.push_back(choice_field("train.scheduler", &t.scheduler, {"cosine", "none", "step"},
                           "`cosine`: CosineAnnealingLR(T_max = epochs), stepped per epoch; "
                           "`step`: StepLR(`train.lr_step_size`, `train.lr_gamma`), the LR "
                           "times gamma every step-size epochs; `none`: constant"));
  f.push_back(int_field("train.lr_step_size", &t.lr_step_size, 1, 100000,
                        "`step`: epochs between decays of the LR"));
  f.push_back(num_field("train.lr_gamma", &t.lr_gamma, 0.0, 1.0,
                        "`step`: what each decay multiplies the LR by"));
  f.push_back(num_field("train.warmup_epochs", &t.warmup_epochs, 0.0, 1000.0,
                        "linear warm-up, per step; less than `train.epochs`"));
  f.push_back(int_field("train.grad_accum", &t.grad_accum, 1, 1024,
                        "micro-batches per optimizer step (one allreduce per step)"));
  f.push_back(num_field("train.label_smoothing", &t.label_smoothing, 0.0, 0.5,
                        "cross-entropy label smoothing"));
}

void run_fields(TrainConfig& t, std::vector<Field>& f) {
  f.push_back(int_field("train.threads", &t.threads, 0, 256,
                        "intra-op threads per rank; 0 = cores / local ranks"));
  f.push_back(int_field("train.eval_batch_size", &t.eval_batch_size, 1, 65536, "evaluation batch"));
  f.push_back(int_field("train.max_steps_per_epoch", &t.max_steps_per_epoch, 0, kBig,
                        "cut epochs short (benchmarks, tests); 0 = full"));
  f.push_back(
      bool_field("train.resume", &t.resume, "continue from the newest checkpoint of `name`"));
  f.push_back(str_field("train.run_id", &t.run_id,
                        "checkpoints of the same run id are resumed automatically (a restarted "
                        "pod or group); empty = `$DDPIPE_RUN_ID`, else a fresh id per launch"));
  f.push_back(bool_field("train.flush_denormal", &t.flush_denormal,
                         "flush denormals to zero (≈ +20% here)"));
  f.push_back(choice_field(
      "train.precision", &t.precision, {"auto", "fp32", "bf16"},
      "`bf16`: the forward pass under bf16 autocast (oneDNN's AVX512-BF16 kernels), weights, "
      "gradients, optimizer and evaluation in fp32; `auto`: bf16 when the CPU has AVX512-BF16, "
      "fp32 otherwise. Each rank logs the precision it uses"));
}

void dist_fields(Config& c, std::vector<Field>& f) {
  DistConfig& d = c.dist;
  f.push_back(int_field("dist.nproc", &d.nproc, 1, 256, "local ranks for `run` / `launch`"));
  f.push_back(str_field("dist.master_addr", &d.master_addr, "rendezvous address for local launches",
                        "", true));
  f.push_back(int_field("dist.master_port", &d.master_port, 0, 65535,
                        "rendezvous port; 0 = a free one (local launch only)"));
  f.push_back(num_field("dist.bucket_mb", &d.bucket_mb, 0.001, 1024.0, "gradient bucket size"));
  f.push_back(
      num_field("dist.timeout_s", &d.timeout_s, 0.1, 86400.0, "every collective's timeout"));
  f.push_back(num_field("dist.rdzv_timeout_s", &d.rdzv_timeout_s, 0.1, 86400.0,
                        "how long ranks wait for the master and each other at start"));
  f.push_back(num_field("dist.heartbeat_timeout_s", &d.heartbeat_timeout_s, 2.0, 86400.0,
                        "a rank silent this long is lost: the group exits 128 (retryable)"));
  f.push_back(int_field("dist.max_restarts", &d.max_restarts, 0, 1000,
                        "`launch`/`run`: restarts of the whole local group after a failure"));
  f.push_back(int_field("dist.min_nproc", &d.min_nproc, 0, 100000,
                        "`launch`: a restart after the same local rank failed twice in a row "
                        "drops one rank, down to this many (torchrun's elastic `--nproc` range); "
                        "0 = never shrink"));
  f.push_back(int_field("dist.nnodes", &d.nnodes, 1, 100000,
                        "`launch`: nodes of the job (torchrun `--nnodes`)"));
  f.push_back(
      int_field("dist.node_rank", &d.node_rank, 0, 100000,
                "`launch`: this node's index, below `dist.nnodes` (torchrun `--node-rank`)"));
  f.push_back(choice_field(
      "dist.grad_compression", &d.grad_compression, kGradCompressions,
      "gradients on the wire, as DDP's communication hooks (docs/scaling.md): `none` fp32; "
      "`bf16`/`fp16` half the bytes (bf16_compress_hook, fp16_compress_hook); `powersgd` a "
      "rank-`dist.powersgd_rank` approximation of each weight matrix's gradient with error "
      "feedback (powerSGD_hook)"));
  f.push_back(int_field("dist.powersgd_rank", &d.powersgd_rank, 1, 1024,
                        "PowerSGD's matrix_approximation_rank: columns of P and Q"));
  f.push_back(int_field("dist.powersgd_start_step", &d.powersgd_start_step, 0, kBig,
                        "PowerSGD's start_powerSGD_iter: optimizer steps averaged in fp32 before "
                        "compression starts"));
  f.push_back(int_field("checkpoint.every_steps", &c.checkpoint.every_steps, 0, kBig,
                        "also checkpoint every K optimizer steps; 0 = once per epoch"));
  f.push_back(num_field("checkpoint.storage_grace_s", &c.checkpoint.storage_grace_s, 0.0, 864000.0,
                        "store away: keep training and retry checkpoint uploads; fail only after "
                        "this many seconds"));
  f.push_back(int_field("checkpoint.keep_last", &c.checkpoint.keep_last, 0, kBig,
                        "a run keeps its newest K checkpoints in the store (older ones are "
                        "deleted once a newer one is uploaded; the one a restart resumes from "
                        "always stays); 0 = keep all"));
  f.push_back(num_field("checkpoint.preempt_grace_s", &c.checkpoint.preempt_grace_s, 1.0, 3600.0,
                        "SIGTERM (preemption): all ranks stop at one step boundary and the "
                        "checkpoint taken there must be in the store (else on local disk) within "
                        "this many seconds; rendered pods get this plus a margin as "
                        "terminationGracePeriodSeconds"));
}

// log.*, metrics.*, runs.*, dist.straggler_factor: what a job tells while it runs
// (docs/telemetry.md).
void telemetry_fields(TelemetryConfig& t, std::vector<Field>& f) {
  f.push_back(int_field("log.every_steps", &t.log_every_steps, 0, kBig,
                        "without a TTY, a progress event every K steps (loss, accuracy, img/s, "
                        "ETA); 0 = not by steps"));
  f.push_back(num_field("log.every_s", &t.log_every_s, 0.0, 86400.0,
                        "… or every S seconds, whichever comes first; 0 = not by time (both 0: "
                        "no progress events and no step history)"));
  f.push_back(int_field("metrics.port", &t.metrics_port, 0, 65535,
                        "every training rank serves Prometheus `/metrics` on this port + its "
                        "local rank; 0 = off"));
  f.push_back(num_field("dist.straggler_factor", &t.straggler_factor, 1.0, 1000.0,
                        "a rank whose mean step time exceeds this many times the median is "
                        "named in a warning"));
  f.push_back(num_field("runs.heartbeat_s", &t.runs_heartbeat_s, 0.0, 86400.0,
                        "rank 0 rewrites the run record (runs/<name>/<run_id>.json) at most "
                        "this often, and at least this often as a heartbeat; 0 = only at start "
                        "and end"));
  f.push_back(num_field("runs.lost_after_s", &t.runs_lost_after_s, 1.0, 864000.0,
                        "`ddpipe runs` shows a running job whose heartbeat is older than this "
                        "as lost"));
}

// registry.*: the promotion gate `ddpipe run` applies after publishing (docs/registry.md).
void registry_fields(RegistryConfig& r, std::vector<Field>& f) {
  f.push_back(str_field("registry.promote.alias", &r.promote.alias,
                        "after `ddpipe run` publishes, move this alias to the new version only "
                        "if it beats the alias's current version; empty = no promotion",
                        "`[A-Za-z0-9._-]+` or empty"));
  f.push_back(str_field("registry.promote.metric", &r.promote.metric,
                        "the final metric the gate compares (higher is better; lower for names "
                        "ending in `loss`)",
                        "a key of the manifest's `final`", true));
  f.push_back(num_field("registry.promote.min_delta", &r.promote.min_delta, 0.0, 1e9,
                        "the candidate must beat the alias by at least this much (0: strictly "
                        "better)"));
}

void serve_fields(ServeConfig& s, std::vector<Field>& f) {
  f.push_back(str_field("serve.host", &s.host,
                        "listen address; `0.0.0.0` exposes it beyond this machine", "", true));
  f.push_back(int_field("serve.port", &s.port, 0, 65535, "listen port; 0 = a free one, logged"));
  f.push_back(
      str_field("serve.model", &s.model, "model to serve; empty = `name`", "`[A-Za-z0-9._-]+`"));
  f.push_back(str_field("serve.version", &s.version,
                        "`latest`, an alias or `model_v<stamp>`; aliases are watched", "", true));
  f.push_back(int_field("serve.max_batch", &s.max_batch, 1, 4096,
                        "inputs per forward pass (dynamic batching)"));
  f.push_back(num_field("serve.max_delay_ms", &s.max_delay_ms, 0.0, 10000.0,
                        "how long the oldest queued input waits for others; 0: a batch starts "
                        "whenever the network is free, with everything queued meanwhile"));
  f.push_back(int_field("serve.max_queue", &s.max_queue, 1, 1000000,
                        "inputs waiting before requests get 503; also the most inputs in one "
                        "request (413)"));
  f.push_back(
      num_field("serve.max_body_mb", &s.max_body_mb, 0.001, 4096.0, "request body limit (413)"));
  f.push_back(int_field("serve.max_pixels", &s.max_pixels, 1, 1LL << 32,
                        "width × height of an uploaded image, checked before decoding (413)"));
  f.push_back(int_field("serve.threads", &s.threads, 1, 4096,
                        "HTTP worker threads = connections served at once"));
  f.push_back(int_field("serve.inference_threads", &s.inference_threads, 0, 256,
                        "libtorch intra-op threads; 0 = all cores"));
  f.push_back(num_field("serve.poll_s", &s.poll_s, 0.0, 86400.0,
                        "how often the alias is checked for a new version; 0 = load once"));
  f.push_back(str_field("serve.auth_token_env", &s.auth_token_env,
                        "environment variable holding the bearer token; empty = no auth (the "
                        "token itself is never configured or logged)",
                        "variable name"));
  f.push_back(num_field("serve.read_timeout_s", &s.read_timeout_s, 0.1, 3600.0,
                        "slow clients: the longest a whole request (headers and body) may take "
                        "to arrive, from its first byte (408)"));
  f.push_back(num_field("serve.write_timeout_s", &s.write_timeout_s, 0.1, 3600.0,
                        "the longest wait to write a response"));
  f.push_back(bool_field("serve.access_log", &s.access_log,
                         "one JSON log line per request (id, status, latency, sizes)"));
}

void s3_fields(S3Config& s, std::vector<Field>& f) {
  f.push_back(
      str_field("s3.endpoint", &s.endpoint,
                "S3 endpoint; empty = `$AWS_ENDPOINT_URL_S3`, `$AWS_ENDPOINT_URL`, else AWS",
                "`http(s)://host[:port]`"));
  f.push_back(str_field("s3.region", &s.region,
                        "signing region; empty = `$AWS_REGION`, `$AWS_DEFAULT_REGION`, else "
                        "`us-east-1`"));
  f.push_back(bool_field("s3.path_style", &s.path_style,
                         "`endpoint/bucket/key` (MinIO, Ceph); false: `bucket.host/key`"));
  f.push_back(int_field("s3.part_size_mb", &s.part_size_mb, 5, 5120,
                        "multipart part size; larger objects are uploaded in parts"));
  f.push_back(int_field("s3.parallel_parts", &s.parallel_parts, 1, 64,
                        "parts (uploads) or ranges (downloads) in flight per transfer"));
  f.push_back(num_field("s3.timeout_s", &s.timeout_s, 1.0, 3600.0,
                        "connect timeout and the longest a request may stall"));
  f.push_back(int_field("s3.max_retries", &s.max_retries, 0, 20,
                        "retries of connection errors, timeouts, 5xx, SlowDown (back-off with "
                        "jitter)"));
  f.push_back(str_field("s3.access_key_id", &s.access_key_id, "empty = `$AWS_ACCESS_KEY_ID`"));
  f.push_back(secret_field("s3.secret_access_key", &s.secret_access_key,
                           "empty = `$AWS_SECRET_ACCESS_KEY`; printed as `<redacted>` (prefer the "
                           "variable)"));
  f.push_back(secret_field("s3.session_token", &s.session_token,
                           "empty = `$AWS_SESSION_TOKEN`; printed as `<redacted>`"));
}

// Every field of `c`, with the string choices that components above core own added.
std::vector<Field> schema(Config& c, const ConfigChoices& extra = {}) {
  std::vector<Field> f;
  job_fields(c, f);
  data_fields(c.data, f);
  input_fields(c, f);
  optimizer_fields(c.train, f);
  run_fields(c.train, f);
  dist_fields(c, f);
  telemetry_fields(c.telemetry, f);
  registry_fields(c.registry, f);
  serve_fields(c.serve, f);
  s3_fields(c.s3, f);
  for (Field& field : f) {
    auto it = extra.find(field.key);
    if (it != extra.end())
      field.choices.insert(field.choices.end(), it->second.begin(), it->second.end());
    if (field.choices.empty()) continue;
    std::vector<std::string> quoted;
    for (auto& choice : field.choices) quoted.push_back("`" + choice + "`");
    field.allowed = choices_text(quoted);
  }
  return f;
}

// "" or why `field` refuses `value` (a choice key only, after its type was accepted).
std::string check_choice(const Field& field, const std::string& value) {
  if (field.choices.empty() ||
      std::find(field.choices.begin(), field.choices.end(), value) != field.choices.end()) {
    return "";
  }
  return "must be one of " + choices_text(field.choices) + ", got '" + value + "'";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string unknown_key_message(const std::string& key, const std::vector<Field>& fields) {
  std::string best;
  size_t best_d = 4;
  for (auto& f : fields) {
    size_t d = edit_distance(key, f.key);
    if (d < best_d) best_d = d, best = f.key;
  }
  std::string m = key + ": unknown key";
  if (!best.empty())
    m += " (did you mean '" + best + "'?)";
  else
    m += " (see `ddpipe config show` for every key)";
  return m;
}

// Flattens a YAML mapping into dotted leaves; non-map values are leaves. A key that is not a
// scalar (`? [a, b]: 1`) is a problem pushed on `errors`, prefixed with `where`.
void flatten(const YAML::Node& n, const std::string& prefix,
             std::vector<std::pair<std::string, YAML::Node>>& out, std::vector<std::string>& errors,
             const std::string& where) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar()) {
        errors.push_back(where + (prefix.empty() ? "the top level" : prefix) +
                         ": a key must be a name, not a YAML list or mapping");
        continue;
      }
      std::string k = it->first.as<std::string>();
      flatten(it->second, prefix.empty() ? k : prefix + "." + k, out, errors, where);
    }
  } else {
    out.emplace_back(prefix, n);
  }
}

bool is_section(const std::string& key, const std::vector<Field>& fields) {
  for (auto& f : fields) {
    if (f.key.rfind(key + ".", 0) == 0) return true;
  }
  return false;
}

// Applies values to a Config through its schema, collecting every problem.
class Builder {
 public:
  explicit Builder(const ConfigChoices& choices) : fields_(schema(config_, choices)) {}

  void apply_yaml(const YAML::Node& root, const std::string& origin) {
    if (!root || root.IsNull()) return;
    if (!root.IsMap()) {
      errors_.push_back(origin + ": the top level must be a mapping of sections");
      return;
    }
    std::vector<std::pair<std::string, YAML::Node>> leaves;
    const std::string where = origin.empty() ? "" : origin + ": ";
    flatten(root, "", leaves, errors_, where);
    for (auto& [k, v] : leaves) apply(k, v, where);
  }

  void apply_override(const std::string& o) {
    size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      errors_.push_back("--set " + o + ": expected section.key=value");
      return;
    }
    const std::string key = o.substr(0, eq);
    YAML::Node v;
    try {
      v = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception&) {
      const Field* f = find(key);
      const bool secret = f && f->secret;
      errors_.push_back("--set " + (secret ? key + "=" + kRedacted : o) +
                        ": value is not valid YAML");
      return;
    }
    if (v.IsNull()) v = YAML::Node(std::string());
    apply(key, v, "--set ");
  }

  // The config, after the cross-field checks; throws kUsage listing every problem.
  Config finish() {
    check_across();
    if (!errors_.empty()) {
      std::string msg = "invalid configuration (" + std::to_string(errors_.size()) + " problem" +
                        (errors_.size() > 1 ? "s" : "") + "):";
      for (auto& e : errors_) msg += "\n  " + e;
      fail_usage(msg);
    }
    return config_;
  }

 private:
  const Field* find(const std::string& key) const {
    auto it =
        std::find_if(fields_.begin(), fields_.end(), [&](const Field& f) { return f.key == key; });
    return it == fields_.end() ? nullptr : &*it;
  }

  void apply(const std::string& key, const YAML::Node& value, const std::string& where) {
    const Field* f = find(key);
    if (!f) {
      errors_.push_back(where + (is_section(key, fields_)
                                     ? key + ": expected a mapping of keys, got " + show(value)
                                     : unknown_key_message(key, fields_)));
      return;
    }
    std::string err = f->set(value);
    if (err.empty() && !f->choices.empty()) err = check_choice(*f, value.Scalar());
    if (!err.empty()) {
      errors_.push_back(where + key + ": " + err);
      return;
    }
    config_.explicit_keys.insert(key);
  }

  void check_across() {
    const Config& c = config_;
    if (c.train.warmup_epochs >= static_cast<double>(c.train.epochs) && c.train.warmup_epochs > 0) {
      errors_.push_back("train.warmup_epochs: must be less than train.epochs (" +
                        std::to_string(c.train.epochs) + ")");
    }
    if (c.data.format != "synthetic" && c.data.path.empty()) {
      errors_.push_back("data.path: must name the dataset's file or folder for format '" +
                        c.data.format + "'");
    }
    if (!c.s3.endpoint.empty() && c.s3.endpoint.rfind("http://", 0) != 0 &&
        c.s3.endpoint.rfind("https://", 0) != 0) {
      errors_.push_back("s3.endpoint: expected http://host[:port] or https://host[:port], got '" +
                        c.s3.endpoint + "'");
    }
    if (c.dist.node_rank >= c.dist.nnodes) {
      errors_.push_back("dist.node_rank: must be below dist.nnodes (" +
                        std::to_string(c.dist.nnodes) + "), got " +
                        std::to_string(c.dist.node_rank));
    }
    if (c.data.md5.size() != 32 && c.data.download) {
      errors_.push_back("data.md5: expected 32 hex characters (the archive's published MD5)");
    }
    if (!c.model.init_skip.empty() && c.model.init_from.empty()) {
      errors_.push_back(
          "model.init_skip: applies to the weights of model.init_from, which is empty");
    }
  }

  Config config_;
  std::vector<Field> fields_;  // bound to config_
  std::vector<std::string> errors_;
};

Config build(const YAML::Node& root, const std::string& origin,
             const std::vector<std::string>& overrides, const ConfigChoices& choices) {
  Builder b(choices);
  b.apply_yaml(root, origin);
  for (const std::string& o : overrides) b.apply_override(o);
  return b.finish();
}

}  // namespace

Config config_from_yaml(const std::string& yaml_text, const std::vector<std::string>& overrides,
                        const ConfigChoices& choices) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail_usage("config: not valid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return build(root, "", overrides, choices);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides,
                   const ConfigChoices& choices) {
  YAML::Node root;
  if (!path.empty()) {
    try {
      root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
      fail_usage("config file " + path + ": cannot be read (does it exist?)");
    } catch (const YAML::Exception& e) {
      fail_usage("config file " + path + ": not valid YAML at line " +
                 std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
  }
  return build(root, path, overrides, choices);
}

std::string find_config(const std::string& name_or_path,
                        const std::vector<std::filesystem::path>& shipped_dirs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (name_or_path.empty() || fs::is_regular_file(name_or_path, ec) ||
      name_or_path.find('/') != std::string::npos) {
    return name_or_path;
  }
  const std::string file =
      name_or_path.size() > 5 && name_or_path.substr(name_or_path.size() - 5) == ".yaml"
          ? name_or_path
          : name_or_path + ".yaml";
  std::set<std::string> shipped;
  for (const fs::path& dir : shipped_dirs) {
    if (fs::is_regular_file(dir / file, ec)) return (dir / file).string();
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".yaml") shipped.insert(e.path().stem().string());
    }
  }
  std::string names;
  for (const std::string& n : shipped) names += (names.empty() ? "" : ", ") + n;
  fail_usage("config " + name_or_path + ": no such file, and no shipped config of that name (" +
             (names.empty() ? std::string("none found") : "shipped: " + names) + ")");
}

std::string to_yaml(const Config& config) {
  Config copy = config;
  std::vector<Field> fields = schema(copy);
  YAML::Node root(YAML::NodeType::Map);
  // Keep the schema's order: yaml-cpp preserves insertion order.
  for (auto& f : fields) {  // "registry.promote.alias" nests three deep
    YAML::Node section = root;
    size_t start = 0;
    for (size_t dot; (dot = f.key.find('.', start)) != std::string::npos; start = dot + 1) {
      YAML::Node child = section[f.key.substr(start, dot - start)];
      section.reset(child);
    }
    section[f.key.substr(start)] = f.get();
  }
  YAML::Emitter out;
  out.SetDoublePrecision(10);
  out << root;
  return std::string(out.c_str()) + "\n";
}

std::vector<KeyInfo> config_reference(const ConfigChoices& choices) {
  Config defaults;
  std::vector<KeyInfo> keys;
  for (const Field& f : schema(defaults, choices)) {
    YAML::Emitter value;
    value.SetDoublePrecision(10);
    value << f.get();
    keys.push_back({f.key, f.type, value.c_str(), f.allowed, f.help, f.secret});
  }
  return keys;
}

}  // namespace ddpipe::core
