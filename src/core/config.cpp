#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "core/error.h"

namespace ddpipe::core {
namespace {

// One field of the schema: where it lives and how to read, check and print it.
struct Field {
  std::string key;
  std::string type;                                   // "integer", "number", "boolean", "string"
  std::function<std::string(const YAML::Node&)> set;  // returns "" or the error text
  std::function<YAML::Node()> get;
  bool secret = false;  // never printed: to_yaml() and error messages show kRedacted
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

Field int_field(const std::string& key, int64_t* p, int64_t lo, int64_t hi) {
  return {key, "integer",
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
          [=] { return YAML::Node(*p); }};
}

Field num_field(const std::string& key, double* p, double lo, double hi) {
  return {key, "number",
          [=](const YAML::Node& n) -> std::string {
            double v;
            if (!scalar_as(n, v) || v != v) return "expected a number, got " + show(n);
            if (v < lo || v > hi) {
              std::ostringstream o;
              o << "must be between " << lo << " and " << hi << ", got " << v;
              return o.str();
            }
            *p = v;
            return "";
          },
          [=] { return YAML::Node(*p); }};
}

Field bool_field(const std::string& key, bool* p) {
  return {key, "boolean",
          [=](const YAML::Node& n) -> std::string {
            bool v;
            if (!scalar_as(n, v)) return "expected true or false, got " + show(n);
            *p = v;
            return "";
          },
          [=] { return YAML::Node(*p); }};
}

Field str_field(const std::string& key, std::string* p, std::vector<std::string> choices = {},
                bool non_empty = false) {
  return {key, "string",
          [=](const YAML::Node& n) -> std::string {
            if (!n.IsScalar()) return "expected a string, got " + show(n);
            std::string v = n.Scalar();
            if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end()) {
              std::string all;
              for (auto& c : choices) all += (all.empty() ? "" : ", ") + c;
              return "must be one of " + all + ", got '" + v + "'";
            }
            if (non_empty && v.empty()) return "must not be empty";
            *p = v;
            return "";
          },
          [=] { return YAML::Node(*p); }};
}

// A credential: stored as given, printed as kRedacted; reading kRedacted back gives "".
Field secret_field(const std::string& key, std::string* p) {
  return {key, "string",
          [=](const YAML::Node& n) -> std::string {
            if (!n.IsScalar()) return "expected a string, got " + show(n);
            *p = n.Scalar() == kRedacted ? std::string() : n.Scalar();
            return "";
          },
          [=] { return YAML::Node(p->empty() ? std::string() : std::string(kRedacted)); }, true};
}

constexpr int64_t kBig = std::numeric_limits<int32_t>::max();

std::vector<Field> schema(Config& c) {
  return {
      str_field("name", &c.name, {}, true),
      str_field("store", &c.store, {}, true),
      str_field("cache_dir", &c.cache_dir, {}, true),
      int_field("seed", &c.seed, 0, kBig),
      bool_field("deterministic", &c.deterministic),
      str_field("data.format", &c.data.format, {"idx", "cifar10", "image-folder", "synthetic"}),
      str_field("data.name", &c.data.name, {}, true),
      str_field("data.path", &c.data.path),
      str_field("data.digest", &c.data.digest),
      bool_field("data.download", &c.data.download),
      str_field("data.url", &c.data.url),
      str_field("data.md5", &c.data.md5),
      int_field("data.channels", &c.data.channels, 1, 3),
      int_field("data.height", &c.data.height, 1, 4096),
      int_field("data.width", &c.data.width, 1, 4096),
      num_field("data.test_fraction", &c.data.test_fraction, 0.0, 0.9),
      int_field("data.train_size", &c.data.train_size, 1, kBig),
      int_field("data.test_size", &c.data.test_size, 1, kBig),
      int_field("data.classes", &c.data.classes, 2, 100000),
      bool_field("features.random_crop", &c.features.random_crop),
      int_field("features.crop_padding", &c.features.crop_padding, 0, 64),
      bool_field("features.horizontal_flip", &c.features.horizontal_flip),
      bool_field("features.normalize", &c.features.normalize),
      int_field("loader.workers", &c.loader.workers, 0, 64),
      int_field("loader.prefetch", &c.loader.prefetch, 1, 64),
      str_field("model.arch", &c.model.arch, {"resnet-mini", "resnet18", "resnet18-cifar"}),
      int_field("model.width", &c.model.width, 4, 512),
      bool_field("model.channels_last", &c.model.channels_last),
      int_field("train.epochs", &c.train.epochs, 1, 100000),
      int_field("train.batch_size", &c.train.batch_size, 1, 65536),
      num_field("train.lr", &c.train.lr, 0.0, 100.0),
      num_field("train.momentum", &c.train.momentum, 0.0, 0.9999),
      num_field("train.weight_decay", &c.train.weight_decay, 0.0, 1.0),
      bool_field("train.nesterov", &c.train.nesterov),
      str_field("train.scheduler", &c.train.scheduler, {"cosine", "none"}),
      num_field("train.warmup_epochs", &c.train.warmup_epochs, 0.0, 1000.0),
      int_field("train.grad_accum", &c.train.grad_accum, 1, 1024),
      num_field("train.label_smoothing", &c.train.label_smoothing, 0.0, 0.5),
      int_field("train.threads", &c.train.threads, 0, 256),
      int_field("train.eval_batch_size", &c.train.eval_batch_size, 1, 65536),
      int_field("train.max_steps_per_epoch", &c.train.max_steps_per_epoch, 0, kBig),
      bool_field("train.resume", &c.train.resume),
      str_field("train.run_id", &c.train.run_id),
      bool_field("train.flush_denormal", &c.train.flush_denormal),
      str_field("train.precision", &c.train.precision, {"auto", "fp32", "bf16"}),
      int_field("dist.nproc", &c.dist.nproc, 1, 256),
      str_field("dist.master_addr", &c.dist.master_addr, {}, true),
      int_field("dist.master_port", &c.dist.master_port, 0, 65535),
      num_field("dist.bucket_mb", &c.dist.bucket_mb, 0.001, 1024.0),
      num_field("dist.timeout_s", &c.dist.timeout_s, 0.1, 86400.0),
      num_field("dist.rdzv_timeout_s", &c.dist.rdzv_timeout_s, 0.1, 86400.0),
      num_field("dist.heartbeat_timeout_s", &c.dist.heartbeat_timeout_s, 2.0, 86400.0),
      int_field("dist.max_restarts", &c.dist.max_restarts, 0, 1000),
      int_field("dist.nnodes", &c.dist.nnodes, 1, 100000),
      int_field("dist.node_rank", &c.dist.node_rank, 0, 100000),
      int_field("checkpoint.every_steps", &c.checkpoint.every_steps, 0, kBig),
      num_field("checkpoint.storage_grace_s", &c.checkpoint.storage_grace_s, 0.0, 864000.0),
      str_field("serve.host", &c.serve.host, {}, true),
      int_field("serve.port", &c.serve.port, 0, 65535),
      str_field("serve.model", &c.serve.model),
      str_field("serve.version", &c.serve.version, {}, true),
      int_field("serve.max_batch", &c.serve.max_batch, 1, 4096),
      num_field("serve.max_delay_ms", &c.serve.max_delay_ms, 0.0, 10000.0),
      int_field("serve.max_queue", &c.serve.max_queue, 1, 1000000),
      num_field("serve.max_body_mb", &c.serve.max_body_mb, 0.001, 4096.0),
      int_field("serve.max_pixels", &c.serve.max_pixels, 1, 1LL << 32),
      int_field("serve.threads", &c.serve.threads, 1, 4096),
      int_field("serve.inference_threads", &c.serve.inference_threads, 0, 256),
      num_field("serve.poll_s", &c.serve.poll_s, 0.0, 86400.0),
      str_field("serve.auth_token_env", &c.serve.auth_token_env),
      num_field("serve.read_timeout_s", &c.serve.read_timeout_s, 0.1, 3600.0),
      num_field("serve.write_timeout_s", &c.serve.write_timeout_s, 0.1, 3600.0),
      bool_field("serve.access_log", &c.serve.access_log),
      str_field("s3.endpoint", &c.s3.endpoint),
      str_field("s3.region", &c.s3.region),
      bool_field("s3.path_style", &c.s3.path_style),
      int_field("s3.part_size_mb", &c.s3.part_size_mb, 5, 5120),
      int_field("s3.parallel_parts", &c.s3.parallel_parts, 1, 64),
      num_field("s3.timeout_s", &c.s3.timeout_s, 1.0, 3600.0),
      int_field("s3.max_retries", &c.s3.max_retries, 0, 20),
      str_field("s3.access_key_id", &c.s3.access_key_id),
      secret_field("s3.secret_access_key", &c.s3.secret_access_key),
      secret_field("s3.session_token", &c.s3.session_token),
  };
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

// Flattens a YAML mapping into dotted leaves; non-map values are leaves.
void flatten(const YAML::Node& n, const std::string& prefix,
             std::vector<std::pair<std::string, YAML::Node>>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.as<std::string>();
      flatten(it->second, prefix.empty() ? k : prefix + "." + k, out);
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

Config build(const YAML::Node& root, const std::string& origin,
             const std::vector<std::string>& overrides) {
  Config c;
  std::vector<Field> fields = schema(c);
  std::vector<std::string> errors;
  auto apply = [&](const std::string& key, const YAML::Node& value, const std::string& where) {
    auto it =
        std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
    if (it == fields.end()) {
      if (is_section(key, fields)) {
        errors.push_back(where + key + ": expected a mapping of keys, got " + show(value));
      } else {
        errors.push_back(where + unknown_key_message(key, fields));
      }
      return;
    }
    std::string err = it->set(value);
    if (!err.empty()) errors.push_back(where + key + ": " + err);
  };

  if (root && !root.IsNull()) {
    if (!root.IsMap()) {
      errors.push_back(origin + ": the top level must be a mapping of sections");
    } else {
      std::vector<std::pair<std::string, YAML::Node>> leaves;
      flatten(root, "", leaves);
      for (auto& [k, v] : leaves) apply(k, v, origin.empty() ? "" : origin + ": ");
    }
  }
  for (const std::string& o : overrides) {
    size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      errors.push_back("--set " + o + ": expected section.key=value");
      continue;
    }
    const std::string key = o.substr(0, eq);
    YAML::Node v;
    try {
      v = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      auto f =
          std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
      bool secret = f != fields.end() && f->secret;
      errors.push_back("--set " + (secret ? key + "=" + kRedacted : o) +
                       ": value is not valid YAML");
      continue;
    }
    if (v.IsNull()) v = YAML::Node(std::string());
    apply(key, v, "--set ");
  }

  // Cross-field checks.
  if (c.train.warmup_epochs >= static_cast<double>(c.train.epochs) && c.train.warmup_epochs > 0) {
    errors.push_back("train.warmup_epochs: must be less than train.epochs (" +
                     std::to_string(c.train.epochs) + ")");
  }
  if (c.data.format != "synthetic" && c.data.path.empty()) {
    errors.push_back("data.path: must name the dataset's file or folder for format '" +
                     c.data.format + "'");
  }
  if (!c.s3.endpoint.empty() && c.s3.endpoint.rfind("http://", 0) != 0 &&
      c.s3.endpoint.rfind("https://", 0) != 0) {
    errors.push_back("s3.endpoint: expected http://host[:port] or https://host[:port], got '" +
                     c.s3.endpoint + "'");
  }
  if (c.dist.node_rank >= c.dist.nnodes) {
    errors.push_back("dist.node_rank: must be below dist.nnodes (" + std::to_string(c.dist.nnodes) +
                     "), got " + std::to_string(c.dist.node_rank));
  }
  if (c.data.md5.size() != 32 && c.data.download) {
    errors.push_back("data.md5: expected 32 hex characters (the archive's published MD5)");
  }

  if (!errors.empty()) {
    std::string msg = "invalid configuration (" + std::to_string(errors.size()) + " problem" +
                      (errors.size() > 1 ? "s" : "") + "):";
    for (auto& e : errors) msg += "\n  " + e;
    fail_usage(msg);
  }
  return c;
}

}  // namespace

Config config_from_yaml(const std::string& yaml_text, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail_usage("config: not valid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return build(root, "", overrides);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
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
  return build(root, path, overrides);
}

std::string to_yaml(const Config& config) {
  Config copy = config;
  std::vector<Field> fields = schema(copy);
  YAML::Node root(YAML::NodeType::Map);
  // Keep the schema's order: yaml-cpp preserves insertion order.
  for (auto& f : fields) {
    size_t dot = f.key.find('.');
    if (dot == std::string::npos) {
      root[f.key] = f.get();
    } else {
      root[f.key.substr(0, dot)][f.key.substr(dot + 1)] = f.get();
    }
  }
  YAML::Emitter out;
  out.SetDoublePrecision(10);
  out << root;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> config_keys() {
  Config c;
  std::vector<std::string> keys;
  for (auto& f : schema(c)) keys.push_back(f.key + " (" + f.type + ")");
  return keys;
}

}  // namespace ddpipe::core
