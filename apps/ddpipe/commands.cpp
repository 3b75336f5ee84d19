// The subcommands: argument wiring around the libraries, nothing more.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/formats.h"
#include "data/ingest.h"
#include "data/sampler.h"
#include "dist/launcher.h"
#include "dist/world.h"
#include "eval/inference.h"
#include "eval/top_k.h"
#include "k8s/local_pods.h"
#include "k8s/render.h"
#include "model/export.h"
#include "registry/registry.h"
#include "runs/runs.h"
#include "serve/server.h"
#include "shards/ingest.h"
#include "storage/store.h"
#include "train/trainer.h"

namespace ddpipe::app {
namespace {

using nlohmann::json;

data::IngestResult do_ingest(const core::Config& config) {
  auto store = storage::open_store(config);
  core::log::info(
      "ingest", "reading dataset",
      {{"format", config.data.format}, {"path", config.data.path}, {"name", config.data.name}});
  data::Dataset ds = data::load_source(config.data, static_cast<uint64_t>(config.seed));
  data::IngestResult r = data::ingest(ds, *store);
  core::log::info("ingest", r.already_present ? "dataset already in the store" : "dataset stored",
                  {{"name", r.name},
                   {"digest", r.digest},
                   {"prefix", r.prefix},
                   {"train", ds.train.size()},
                   {"test", ds.test.size()}});
  return r;
}

// The names a job's keys are built from, checked before anything starts (docs/security.md).
void check_job_names(const core::Config& config, const std::string& run_id) {
  storage::validate_name("name", config.name);
  if (!run_id.empty()) storage::validate_name("train.run_id (or $DDPIPE_RUN_ID)", run_id);
}

// Whether the config schema declares `key` a secret (printed as core::kRedacted).
bool is_secret_key(const std::string& key) {
  for (const core::KeyInfo& k : core::config_reference()) {
    if (k.key == key) return k.secret;
  }
  return false;
}

}  // namespace

int cmd_config(const Args& a) {
  const std::string sub = a.positional.empty() ? "" : a.positional[0];
  if (sub == "docs") {
    std::cout << config_reference_markdown();
    return 0;
  }
  if (sub != "show") core::fail_usage("usage: ddpipe config show|docs (see ddpipe config --help)");
  std::cout << core::to_yaml(load(a));
  return 0;
}

// data.form=sharded: the streaming ingest into WebDataset shards (an image folder's files, the
// other formats re-encoded as PNG).
json ingest_sharded(const core::Config& config) {
  auto store = storage::open_store(config);
  const shards::IngestReport r =
      data::ingest_sharded(config.data, static_cast<uint64_t>(config.seed), *store);
  return {{"name", r.name},
          {"digest", r.digest},
          {"index", r.index_key},
          {"already_present", r.already_present},
          {"store", config.store},
          {"form", "sharded"},
          {"train", r.train_samples},
          {"test", r.test_samples},
          {"shards", r.shards},
          {"shards_built", r.shards_built},
          {"shards_resumed", r.shards_resumed},
          {"skipped_files", r.skipped_files}};
}

int cmd_ingest(const Args& a) {
  auto config = load(a);
  if (config.data.form == "sharded") {
    std::cout << ingest_sharded(config).dump() << "\n";
    return 0;
  }
  auto r = do_ingest(config);
  std::cout << json({{"name", r.name},
                     {"digest", r.digest},
                     {"prefix", r.prefix},
                     {"already_present", r.already_present},
                     {"store", config.store}})
                   .dump()
            << "\n";
  return 0;
}

int cmd_train(const Args& a) {
  auto config = load(a);
  check_job_names(config, train::effective_run_id(config));
  auto world = dist::world_from_env();
  core::log::set_rank(static_cast<int>(world.rank));
  auto result = train::train(config, world);
  if (world.rank == 0) {
    std::cout << json({{"model", config.name},
                       {"version", result.version},
                       {"metrics", result.metrics_key},
                       {"seconds", result.seconds},
                       {"final", result.epochs.empty() ? json() : result.epochs.back()}})
                     .dump()
              << "\n";
  }
  return 0;
}

// The first node's launcher completes the run record after a failed attempt: restarting, or
// failed with the error of the rank that failed first (ranks killed by the launcher or by a
// signal cannot say it themselves).
std::function<void(const dist::AttemptEnd&)> record_attempt_end(const core::Config& config,
                                                                const std::string& run_id) {
  return [config, run_id](const dist::AttemptEnd& end) {
    auto store = storage::open_store(config);
    // Preempted: the job stopped at a stored checkpoint and resumes when it is run again.
    const bool resumable =
        end.restarting || end.code == core::exit_code(core::ErrorKind::kPreempted);
    runs::update_run(*store, config.name, run_id, [&](runs::RunRecord& r) {
      r.status = resumable ? runs::kRestarting : runs::kFailed;
      r.error = runs::RunError{end.reason, end.code, end.failed_rank};
      r.attempts.push_back({end.attempt, end.code, end.failed_rank, end.reason});
      if (!resumable) r.finished = core::iso_timestamp();
    });
  };
}

// The local launcher for `config`; every restart of the group shares one run id.
dist::LaunchOptions launch_options(const Args& a, const core::Config& config,
                                   std::vector<std::string> extra_sets) {
  std::string run_id = train::effective_run_id(config);
  check_job_names(config, run_id);
  if (run_id.empty())
    run_id = "run-" + core::version_timestamp() + "-" + std::to_string(::getpid());
  extra_sets.push_back("train.run_id=" + run_id);
  dist::LaunchOptions o;
  o.nproc = config.dist.nproc;
  o.nnodes = config.dist.nnodes;
  o.node_rank = config.dist.node_rank;
  o.master_addr = config.dist.master_addr;
  o.master_port = config.dist.master_port;
  o.max_restarts = config.dist.max_restarts;
  o.min_nproc = config.dist.min_nproc;
  o.preempt_stop_seconds = core::preempt_stop_seconds(config.checkpoint);
  o.argv = rank_argv(a, extra_sets);
  // In a pod of a multi-node job the environment says where this node is.
  if (auto node = dist::node_from_env(config.dist.nproc, config.is_set("dist.nproc"))) {
    o.nproc = node->nproc;
    o.nnodes = node->nnodes;
    o.node_rank = node->node_rank;
    if (!node->master_addr.empty()) {
      o.master_addr = node->master_addr;
      o.master_port = node->master_port;
    }
    core::log::info("launch", "node of a " + node->contract + " job, from the environment",
                    {{"nnodes", o.nnodes}, {"node_rank", o.node_rank}, {"nproc", o.nproc}});
  }
  if (o.node_rank == 0) o.on_attempt_end = record_attempt_end(config, run_id);
  return o;
}

int cmd_launch(const Args& a) {
  if (a.has("from-pytorchjob") && a.has("from-trainjob")) {
    core::fail_usage("--from-pytorchjob and --from-trainjob: give one job file");
  }
  const bool trainjob = a.has("from-trainjob");
  if (trainjob || a.has("from-pytorchjob")) {
    const std::string network = a.option("pod-network", "host");
    if (network != "host" && network != "bridge") {
      core::fail_usage("--pod-network: expected host or bridge, got '" + network + "'");
    }
    k8s::LocalJobOptions o;
    o.kind = trainjob ? k8s::JobKind::kTrainJob : k8s::JobKind::kPyTorchJob;
    o.network = network == "bridge" ? k8s::PodNetwork::kBridge : k8s::PodNetwork::kHost;
    o.ddpipe_binary = std::filesystem::read_symlink("/proc/self/exe").string();
    return k8s::run_job_locally(a.options.at(trainjob ? "from-trainjob" : "from-pytorchjob"), o);
  }
  if (a.has("pod-network")) {
    core::fail_usage("--pod-network needs --from-pytorchjob FILE or --from-trainjob FILE");
  }
  auto config = load(a);
  return dist::launch_local(launch_options(a, config, {}));
}

int cmd_k8s(const Args& a) {
  if (a.positional.size() != 1 || a.positional[0] != "render") {
    core::fail_usage(
        "usage: ddpipe k8s render [--config FILE] [--workers N] [--image I] "
        "[--job-name J] (see ddpipe k8s --help)");
  }
  auto config = load(a);
  k8s::RenderOptions o;
  if (a.has("operator")) o.op = k8s::operator_from_name(a.options.at("operator"));
  o.workers = a.count_option("workers", 1);
  o.metrics_port = a.count_option("metrics-port", o.metrics_port);
  if (o.metrics_port > 65535) core::fail_usage("--metrics-port: expected 0-65535");
  const std::string workers = std::to_string(o.workers);
  o.image = a.option("image", o.image);
  o.job_name = a.option("job-name", "");
  // The header says how to render it again (credentials never appear).
  o.source = "ddpipe k8s render";
  if (!a.config_path.empty()) o.source += " --config " + a.config_path;
  for (const auto& s : a.overrides) {
    const std::string key = s.substr(0, s.find('='));
    o.source += " --set " + (is_secret_key(key) ? key + "=" + core::kRedacted : s);
  }
  if (o.op != k8s::kDefaultOperator) o.source += " --operator " + k8s::operator_name(o.op);
  o.source += " --workers " + workers + " --image " + o.image;
  if (!o.job_name.empty()) o.source += " --job-name " + o.job_name;
  if (a.has("metrics-port")) o.source += " --metrics-port " + std::to_string(o.metrics_port);
  std::cout << k8s::render_yaml(config, o);
  return 0;
}

int cmd_run(const Args& a) {
  auto config = load(a);
  check_job_names(config, train::effective_run_id(config));  // before the ingest
  const std::string digest = config.data.form == "sharded"
                                 ? ingest_sharded(config).at("digest").get<std::string>()
                                 : do_ingest(config).digest;
  int code = dist::launch_local(launch_options(a, config, {"data.digest=" + digest}));
  if (code != 0) {
    core::log::error("run", "training failed", {{"exit_code", code}});
    return code;
  }
  auto store = storage::open_store(config);
  registry::Registry reg(*store);
  std::string version = reg.resolve(config.name, "latest");
  const registry::Manifest m = reg.manifest(config.name, version);
  std::cout << "\nTrained " << config.name << " on " << config.data.name << " with "
            << config.dist.nproc << " ranks: test accuracy "
            << m.final_metrics.value("test_acc", 0.0) * 100.0 << "% after "
            << m.final_metrics.value("epoch", 0) << " epochs ("
            << static_cast<int64_t>(m.train_seconds) << " s).\n"
            << "Model version: " << config.store << "/"
            << registry::Registry::version_prefix(config.name, version) << "  (model_latest -> "
            << version << ")\n"
            << "Predict:  ddpipe predict --store " << config.store << " --model " << config.name
            << " image.png\n"
            << "Details:  ddpipe models show --store " << config.store << " " << config.name << "\n"
            << "Report:   " << config.store << "/"
            << registry::Registry::version_prefix(config.name, version) << "report.html\n";
  promote_after_run(config, version);  // registry.promote: the gate, the pipeline's last step
  return 0;
}

namespace {

void check_model_input(const data::Dataset& ds, const eval::LoadedModel& m) {
  if (ds.channels != m.channels || ds.height != m.height || ds.width != m.width) {
    core::fail_usage("dataset " + ds.name + " has images " + std::to_string(ds.channels) + "x" +
                     std::to_string(ds.height) + "x" + std::to_string(ds.width) + ", model " +
                     m.model + " expects " + std::to_string(m.channels) + "x" +
                     std::to_string(m.height) + "x" + std::to_string(m.width));
  }
}

// An in-memory dataset's split, normalised with the statistics the model was trained with.
eval::EvalSums eval_in_memory(const core::Config& config, storage::Store& store,
                              const eval::LoadedModel& m, const std::string& digest, bool train) {
  auto ds =
      data::load_ingested(store, config.data.name, digest, core::expand_user(config.cache_dir));
  check_model_input(ds, m);
  const data::Split& split = train ? ds.train : ds.test;
  std::vector<int64_t> idx(static_cast<size_t>(split.size()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  ds.mean.assign(m.mean.begin(), m.mean.end());
  ds.std.assign(m.std.begin(), m.std.end());
  return eval::evaluate(*m.net, ds, split, idx, m.normalize, config.train.eval_batch_size,
                        config.loader.workers, m.channels_last);
}

// A sharded dataset's split, streamed through the shard cache and centre-cropped to the model's
// input as training evaluated it.
eval::EvalSums eval_sharded(const core::Config& config, storage::Store& store,
                            const eval::LoadedModel& m, const std::string& digest, bool train) {
  data::ShardedDataset::Options o = data::sharded_options(config);
  o.image_size = m.height;
  o.normalize = m.normalize;
  data::ShardedDataset ds(store, config.data.name, digest, o);
  check_model_input(ds.header(), m);
  if (!m.center_crop) {
    core::fail_usage("model " + m.model + " version " + m.version +
                     " resizes images whole (trained in memory); dataset " + config.data.name +
                     " is sharded, evaluated with a centre crop: evaluate it on an in-memory "
                     "ingest of the same data");
  }
  std::vector<int64_t> idx(static_cast<size_t>(ds.split(train).samples));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  data::LoaderOptions lo;
  lo.batch_size = config.train.eval_batch_size;
  lo.workers = config.loader.workers;
  lo.prefetch = config.loader.prefetch;
  lo.channels_last = m.channels_last;
  return eval::evaluate_sharded(*m.net, ds, train, idx, lo);
}

}  // namespace

int cmd_eval(const Args& a) {
  auto config = load(a);
  auto store = storage::open_store(config);
  std::string model = a.option("model", config.name);
  auto m = eval::load_model(*store, model, a.option("version", "latest"));
  std::string digest = config.data.digest.empty() ? data::latest_digest(*store, config.data.name)
                                                  : config.data.digest;
  std::string split_name = a.option("split", "test");
  if (split_name != "test" && split_name != "train")
    core::fail_usage("--split: expected test or train");
  const bool sharded = store->exists(shards::index_key(config.data.name, digest));
  const bool train = split_name == "train";
  const eval::EvalSums s = sharded ? eval_sharded(config, *store, m, digest, train)
                                   : eval_in_memory(config, *store, m, digest, train);
  std::cout << json({{"model", model},
                     {"version", m.version},
                     {"dataset", config.data.name},
                     {"digest", digest},
                     {"form", sharded ? "sharded" : "memory"},
                     {"split", split_name},
                     {"samples", s.count},
                     {"loss", s.loss_sum / s.count},
                     {"accuracy", s.correct / s.count}})
                   .dump()
            << "\n";
  return 0;
}

int cmd_predict(const Args& a) {
  auto config = load(a);
  if (a.positional.empty()) core::fail_usage("ddpipe predict: give at least one image file");
  auto store = storage::open_store(config);
  std::string model = a.option("model", config.name);
  auto m = eval::load_model(*store, model, a.option("version", "latest"));
  const int64_t top_k = a.count_option("top-k", 0);
  int failures = 0;
  for (const auto& file : a.positional) {
    try {
      auto img = data::decode_image(core::read_file(file), file);
      auto p = eval::predict(m, {img}).at(0);
      json out = {{"file", file},
                  {"prediction", p.label},
                  {"confidence", p.confidence},
                  {"class_index", p.class_index},
                  {"model", model},
                  {"version", m.version}};
      if (top_k > 0) {
        json top = json::array();
        for (int64_t c : eval::top_k(p.probabilities, top_k)) {
          top.push_back({{"class", m.classes[c]}, {"probability", p.probabilities[c]}});
        }
        out["top_k"] = top;
      }
      std::cout << out.dump() << "\n";
    } catch (const core::Error& e) {
      ++failures;
      std::cout << json({{"file", file}, {"error", e.what()}}).dump() << "\n";
    }
  }
  return failures ? core::exit_code(core::ErrorKind::kData) : 0;
}

namespace {

// `ddpipe models export NAME [REF] --format pth|safetensors --out
// FILE`, from the version's model.pt (also for versions made before model.pth existed).
int models_export(const Args& a, storage::Store& store) {
  const std::string usage =
      "usage: ddpipe models export NAME [REF] --format pth|safetensors --out FILE";
  if (a.positional.size() < 2) core::fail_usage(usage);
  const std::string format = a.option("format", ""), out = a.option("out", "");
  if (format != "pth" && format != "safetensors") {
    core::fail_usage("ddpipe models export: --format must be pth or safetensors, got '" + format +
                     "' (" + usage + ")");
  }
  if (out.empty()) core::fail_usage("ddpipe models export: --out FILE is required (" + usage + ")");
  const std::string name = a.positional[1];
  auto m = eval::load_model(store, name, a.positional.size() > 2 ? a.positional[2] : "latest");
  const registry::Manifest::ModelSpec& s = m.manifest.model_spec;
  const std::string bytes =
      format == "pth"
          ? model::state_dict_pth(*m.net)
          : model::state_dict_safetensors(
                *m.net,
                model::safetensors_metadata({s.arch, s.in_channels, s.num_classes, s.width}));
  core::write_file_atomic(out, bytes);
  std::cout << json({{"model", name},
                     {"version", m.version},
                     {"format", format},
                     {"out", out},
                     {"bytes", bytes.size()},
                     {"sha256", core::sha256_hex(bytes)}})
                   .dump()
            << "\n";
  return 0;
}

}  // namespace

int cmd_models(const Args& a) {
  auto config = load(a);
  auto store = storage::open_store(config);
  registry::Registry reg(*store);
  std::string sub = a.positional.empty() ? "list" : a.positional[0];
  if (sub == "list") {
    auto models = reg.models();
    if (models.empty()) std::cout << "no models in " << config.store << "\n";
    for (auto& name : models) {
      auto aliases = reg.aliases(name);
      std::cout << name << "\n";
      for (auto& v : reg.versions(name)) {
        std::string tags;
        for (auto& [alias, target] : aliases) {
          if (target == v) tags += (tags.empty() ? "" : ",") + alias;
        }
        char line[256];
        try {
          const registry::Manifest man = reg.manifest(name, v);
          std::snprintf(line, sizeof line, "  %-28s test_acc=%.4f  epochs=%lld  created=%s%s%s\n",
                        v.c_str(), man.final_metrics.value("test_acc", 0.0),
                        static_cast<long long>(man.final_metrics.value("epoch", 0)),
                        man.created.empty() ? "?" : man.created.c_str(),
                        tags.empty() ? "" : "  <- ", tags.c_str());
        } catch (const core::Error& e) {
          std::snprintf(line, sizeof line, "  %-28s (manifest unreadable: %.120s)\n", v.c_str(),
                        e.what());
        }
        std::cout << line;
      }
    }
    return 0;
  }
  if (sub == "show") {
    if (a.positional.size() < 2) core::fail_usage("usage: ddpipe models show NAME [REF]");
    std::string name = a.positional[1];
    std::string ref = a.positional.size() > 2 ? a.positional[2] : "latest";
    std::cout << reg.manifest_json(name, reg.resolve(name, ref)).dump(2) << "\n";
    return 0;
  }
  if (sub == "export") return models_export(a, *store);
  if (auto code = run_registry_subcommand(sub, a, config)) return *code;
  core::fail_usage("ddpipe models: unknown subcommand '" + sub +
                   "' (expected list, show, promote, rollback, history, diff, rm, gc or export)");
}

int cmd_serve(const Args& a) { return serve::serve_until_signal(load(a)); }

int cmd_ui(const Args& a) {
  const core::Config config = load(a);
  return serve::serve_until_signal(config, [&config](int port) {
    std::printf("dashboard: http://%s:%d/ui/\n", config.serve.host.c_str(), port);
    std::fflush(stdout);
  });
}

namespace {

// An object named on the command line: `s3://bucket/key`, or a key of the configured store.
struct ObjectRef {
  std::unique_ptr<storage::Store> store;
  std::string key;
};

bool is_object_url(const std::string& arg) { return storage::parse_object_url(arg).has_value(); }

ObjectRef object_ref(const std::string& arg, const core::Config& config) {
  auto url = storage::parse_object_url(arg);
  if (!url) return {storage::open_store(config), arg};
  return {storage::open_store(url->store, config.s3), url->key};
}

// `ddpipe store cp`: each side a local file or an s3:// object. Returns the destination.
std::string copy_object(const std::string& src, std::string dst, const core::Config& config) {
  const std::string name = src.substr(src.rfind('/') + 1);
  if (!dst.empty() &&
      (dst.back() == '/' || (!is_object_url(dst) && std::filesystem::is_directory(dst)))) {
    dst += (dst.back() == '/' ? "" : "/") + name;
  }
  if (!is_object_url(src) && !is_object_url(dst)) {
    core::copy_file_atomic(src, dst);
  } else if (!is_object_url(src)) {
    ObjectRef to = object_ref(dst, config);
    to.store->put_file(to.key, src);
  } else if (ObjectRef from = object_ref(src, config); !is_object_url(dst)) {
    from.store->get_file(from.key, dst);
  } else if (ObjectRef to = object_ref(dst, config); from.store->url() == to.store->url()) {
    from.store->copy(from.key, to.key);
  } else {
    const core::TempDir tmp("ddpipe-cp");
    from.store->get_file(from.key, tmp / name);
    to.store->put_file(to.key, tmp / name);
  }
  return dst;
}

}  // namespace

int cmd_store(const Args& a) {
  auto config = load(a);
  const auto& p = a.positional;
  const std::string sub = p.empty() ? "" : p[0];
  if (sub == "ls" && p.size() <= 2) {
    ObjectRef ref = object_ref(p.size() > 1 ? p[1] : "", config);
    for (const auto& o : ref.store->list(ref.key)) {
      std::printf("%12llu  %s\n", static_cast<unsigned long long>(o.size), o.key.c_str());
    }
    return 0;
  }
  if (sub == "cp" && p.size() == 3) {
    const double t0 = core::monotonic_seconds();
    const std::string dst = copy_object(p[1], p[2], config);
    json done = {{"src", p[1]}, {"dst", dst}, {"seconds", core::monotonic_seconds() - t0}};
    const std::string local = is_object_url(p[1]) ? dst : p[1];
    if (!is_object_url(local)) done["bytes"] = std::filesystem::file_size(local);
    std::cout << done.dump() << "\n";
    return 0;
  }
  if (sub == "rm" && p.size() >= 2) {
    for (size_t i = 1; i < p.size(); ++i) {
      ObjectRef ref = object_ref(p[i], config);
      ref.store->remove(ref.key);
    }
    return 0;
  }
  core::fail_usage(
      "usage: ddpipe store ls [PREFIX] | cp SRC DST | rm KEY... (see ddpipe store --help)");
}

}  // namespace ddpipe::app
