#include "train/trainer.h"

#include <ATen/autocast_mode.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/ingest.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "eval/inference.h"
#include "model/model.h"
#include "registry/registry.h"
#include "storage/store.h"
#include "train/checkpointer.h"
#include "train/sgd.h"

#ifndef DDPIPE_GIT_REVISION
#define DDPIPE_GIT_REVISION "unknown"
#endif

namespace ddpipe::train {
namespace {

using nlohmann::json;

double learning_rate(const core::TrainConfig& t, int64_t epoch, int64_t step, int64_t steps) {
  double progress =
      static_cast<double>(epoch) + static_cast<double>(step) / std::max<int64_t>(1, steps);
  if (t.warmup_epochs > 0 && progress < t.warmup_epochs) {
    return t.lr * (progress + 1.0 / std::max<int64_t>(1, steps)) / t.warmup_epochs;
  }
  if (t.scheduler == "none") return t.lr;
  // CosineAnnealingLR(T_max = epochs), stepped once per epoch, as the original job.
  return 0.5 * t.lr * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / t.epochs));
}

void set_lr(torch::optim::SGD& opt, double lr) {
  for (auto& group : opt.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
}

std::string optimizer_state(torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  size_t bytes = 0;  // one momentum buffer per parameter
  for (const auto& group : opt.param_groups()) {
    for (const auto& p : group.params()) bytes += p.nbytes();
  }
  return model::archive_bytes(archive, bytes);
}

void load_optimizer_state(torch::optim::Optimizer& opt, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  opt.load(archive);
}

std::string rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto t = gen.get_state();
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel());
}

void set_rng_state(const std::string& bytes) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  gen.set_state(t);
}

// Mixed precision on CPU (bf16 autocast) for the forward pass; a no-op when disabled.
class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
  }

 private:
  bool enabled_;
};

// train.precision with "auto" resolved: bf16 where the CPU multiplies bf16 natively.
std::string effective_precision(const core::Config& config) {
  if (config.train.precision != "auto") return config.train.precision;
  return __builtin_cpu_supports("avx512bf16") ? "bf16" : "fp32";
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

void to_channels_last(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

std::vector<int64_t> strided_shard(int64_t n, int64_t world, int64_t rank) {
  std::vector<int64_t> idx;
  for (int64_t i = rank; i < n; i += world) idx.push_back(i);
  return idx;
}

json dataset_json(const data::Dataset& ds) {
  return {{"name", ds.name},
          {"digest", ds.digest},
          {"classes", ds.classes},
          {"channels", ds.channels},
          {"height", ds.height},
          {"width", ds.width},
          {"mean", ds.mean},
          {"std", ds.std},
          {"train_size", ds.train.size()},
          {"test_size", ds.test.size()}};
}

}  // namespace

void configure_runtime(const core::Config& config, const dist::WorldInfo& world) {
  int64_t threads = config.train.threads;
  if (threads == 0) {
    int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
    threads = std::max<int64_t>(1, cores / std::max<int64_t>(1, world.local_world_size));
  }
  at::set_num_threads(static_cast<int>(threads));
  if (config.train.flush_denormal) at::globalContext().setFlushDenormal(true);
  if (config.deterministic) at::globalContext().setDeterministicAlgorithms(true, false);
}

namespace {

// The checkpoint to continue from: the newest of any run with train.resume, else the newest
// of this run id (a restarted pod or group), else none.
std::optional<registry::CheckpointRef> checkpoint_to_resume(registry::Registry& reg,
                                                            const core::Config& config,
                                                            const std::string& run_id) {
  auto all = reg.checkpoints(config.name);
  if (config.train.resume) {
    if (all.empty()) core::log::info("train", "no checkpoint to resume from; starting at epoch 1");
    return all.empty() ? std::nullopt : std::optional(all.back());
  }
  if (run_id.empty()) return std::nullopt;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (reg.checkpoint_state(config.name, *it).value("run_id", "") == run_id) return *it;
  }
  return std::nullopt;
}

TrainResult train_with(const core::Config& config, const dist::WorldInfo& world,
                       dist::Communicator& comm, storage::Store& store,
                       const data::Dataset& dataset, const std::string& run_id, double t_start);

}  // namespace

std::string effective_run_id(const core::Config& config) {
  if (!config.train.run_id.empty()) return config.train.run_id;
  const char* env = std::getenv("DDPIPE_RUN_ID");
  return env ? env : "";
}

TrainResult train(const core::Config& config, const dist::WorldInfo& world) {
  const double t_start = core::monotonic_seconds();
  const std::string run_id = effective_run_id(config);
  configure_runtime(config, world);
  core::log::info("train", "rank starting",
                  {{"rank", world.rank},
                   {"local_rank", world.local_rank},
                   {"world_size", world.world_size},
                   {"threads", at::get_num_threads()},
                   {"precision", effective_precision(config)},
                   {"run_id", run_id}});

  auto store = storage::open_store(config.store, config.s3);

  // Data: ingested content, verified through the local cache.
  std::string digest = config.data.digest.empty() ? data::latest_digest(*store, config.data.name)
                                                  : config.data.digest;
  const auto cache_dir = core::expand_user(config.cache_dir);
  data::Dataset dataset = data::load_ingested(*store, config.data.name, digest, cache_dir);

  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  dist::Communicator comm(world, ms(config.dist.timeout_s), ms(config.dist.rdzv_timeout_s),
                          ms(config.dist.heartbeat_timeout_s));
  try {
    TrainResult result = train_with(config, world, comm, *store, dataset, run_id, t_start);
    comm.stop_heartbeat();
    return result;
  } catch (const std::exception& e) {
    comm.abort(e.what());  // the other ranks leave at once instead of waiting for a timeout
    throw;
  }
}

namespace {

TrainResult train_with(const core::Config& config, const dist::WorldInfo& world,
                       dist::Communicator& comm, storage::Store& store,
                       const data::Dataset& dataset, const std::string& run_id, double t_start) {
  const bool is_main = world.rank == 0;
  const std::string precision = effective_precision(config);
  const bool bf16 = precision == "bf16";
  const auto cache_dir = core::expand_user(config.cache_dir);
  registry::Registry reg(store);

  // Model: identical initialisation from the seed; DataParallel broadcasts rank 0's anyway.
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  model::ModelSpec spec{config.model.arch, dataset.channels,
                        static_cast<int64_t>(dataset.classes.size()), config.model.width};
  auto net = model::make_model(spec);
  if (config.model.channels_last) to_channels_last(*net);

  FusedSGD optimizer(net->parameters(), torch::optim::SGDOptions(config.train.lr)
                                            .momentum(config.train.momentum)
                                            .weight_decay(config.train.weight_decay)
                                            .nesterov(config.train.nesterov));
  int64_t start_epoch = 0, skip_steps = 0;
  json epochs = json::array();
  json partial = {{"loss_sum", 0.0}, {"correct", 0.0}, {"count", 0.0}};
  std::optional<registry::CheckpointRef> resumed = checkpoint_to_resume(reg, config, run_id);
  if (resumed) {
    json state = reg.checkpoint_state(config.name, *resumed);
    if (state.value("dataset_digest", "") != dataset.digest) {
      core::fail_usage("cannot resume " + config.name + " from " + resumed->id() +
                       ": it was trained on dataset " + state.value("dataset_digest", "?") +
                       ", this run uses " + dataset.digest);
    }
    model::load_state(*net, reg.read_checkpoint(config.name, *resumed, "model.pt"));
    if (config.model.channels_last) to_channels_last(*net);
    load_optimizer_state(optimizer, reg.read_checkpoint(config.name, *resumed, "optimizer.pt"));
    set_rng_state(reg.read_checkpoint(config.name, *resumed, "rng.bin"));
    start_epoch = resumed->epoch;
    skip_steps = resumed->step;
    epochs = state.value("epochs", json::array());
    partial = state.value("partial", partial);
    core::log::info("train", "resuming from checkpoint",
                    {{"checkpoint", resumed->id()}, {"epoch", start_epoch}, {"step", skip_steps}});
  }
  dist::DataParallel ddp(comm, *net, config.dist.bucket_mb);

  data::Augment augment;
  augment.random_crop = config.features.random_crop;
  augment.crop_padding = config.features.crop_padding;
  augment.horizontal_flip = config.features.horizontal_flip;
  augment.normalize = config.features.normalize;
  augment.mean.assign(dataset.mean.begin(), dataset.mean.end());
  augment.std.assign(dataset.std.begin(), dataset.std.end());

  const std::string stamp = core::version_timestamp();
  TrainResult result;
  auto ce_options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
      config.train.label_smoothing);
  std::unique_ptr<Checkpointer> uploads;
  if (is_main) {
    uploads =
        std::make_unique<Checkpointer>(reg, config.name, cache_dir / "checkpoints" / config.name,
                                       config.checkpoint.storage_grace_s);
  }
  auto checkpoint = [&](const registry::CheckpointRef& where, double loss_sum, double correct,
                        double count) {
    std::vector<Checkpointer::FileWriter> files{
        {"model.pt", [&] { return model::save_state(*net); }},
        {"optimizer.pt", [&] { return optimizer_state(optimizer); }},
        {"rng.bin", rng_state}};
    json state = {{"epoch", where.epoch},
                  {"step", where.step},
                  {"run_id", run_id},
                  {"dataset_digest", dataset.digest},
                  {"config", core::to_yaml(config)},
                  {"epochs", epochs},
                  {"partial", {{"loss_sum", loss_sum}, {"correct", correct}, {"count", count}}}};
    uploads->save(where, files, state);
  };

  int64_t optimizer_steps = 0;
  for (int64_t epoch = start_epoch; epoch < config.train.epochs; ++epoch) {
    const double t_epoch = core::monotonic_seconds();
    const double comm_before = ddp.exposed_comm_seconds();
    const double comm_window_before = ddp.comm_seconds();
    auto indices = data::distributed_sampler_indices(dataset.train.size(), world.world_size,
                                                     world.rank, true, config.seed, epoch, false);
    data::LoaderOptions lo;
    lo.batch_size = config.train.batch_size;
    lo.train = true;
    lo.seed = static_cast<uint64_t>(config.seed);
    lo.epoch = epoch;
    lo.workers = config.loader.workers;
    lo.prefetch = config.loader.prefetch;
    lo.channels_last = config.model.channels_last;
    int64_t steps = (static_cast<int64_t>(indices.size()) + lo.batch_size - 1) / lo.batch_size;
    if (config.train.max_steps_per_epoch > 0)
      steps = std::min(steps, config.train.max_steps_per_epoch);
    indices.resize(std::min<size_t>(indices.size(), static_cast<size_t>(steps * lo.batch_size)));
    // A mid-epoch checkpoint: the batches before it were already trained on.
    const int64_t first_step = epoch == start_epoch ? std::min(skip_steps, steps) : 0;
    indices.erase(indices.begin(),
                  indices.begin() + std::min<size_t>(indices.size(), first_step * lo.batch_size));
    data::BatchLoader loader(dataset, dataset.train, indices, augment, lo);

    net->train();
    double loss_sum = 0, correct = 0, count = 0;
    if (first_step > 0) {
      loss_sum = partial.value("loss_sum", 0.0);
      correct = partial.value("correct", 0.0);
      count = partial.value("count", 0.0);
    }
    core::ProgressBar bar(
        "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(config.train.epochs), steps,
        is_main);
    const int64_t accum = config.train.grad_accum;
    double images_this_run = 0;
    // Steady state: after the first kWarmupSteps steps (allocator and oneDNN warm-up).
    constexpr int64_t kWarmupSteps = 5;
    double steady_start = 0, steady_images = 0;
    for (int64_t step = first_step; step < steps; ++step) {
      if (step == first_step + kWarmupSteps) steady_start = core::monotonic_seconds();
      auto batch = loader.next();
      if (!batch) break;
      const bool sync = (step + 1) % accum == 0 || step + 1 == steps;
      if (step % accum == 0) set_lr(optimizer, learning_rate(config.train, epoch, step, steps));
      ddp.sync_buffers();
      torch::Tensor logits;
      {
        AutocastGuard autocast(bf16);
        logits = net->forward(batch->images);
      }
      auto loss =
          torch::nn::functional::cross_entropy(logits.to(torch::kFloat), batch->labels, ce_options);
      ddp.begin_backward(sync);
      (loss / static_cast<double>(accum)).backward();
      if (sync) {
        ddp.finish_gradients();
        optimizer.step();
        ddp.zero_grad();
        ++optimizer_steps;
      }
      const double b = static_cast<double>(batch->labels.size(0));
      loss_sum += loss.item<double>() * b;
      correct += logits.argmax(1).eq(batch->labels).sum().item<double>();
      count += b;
      images_this_run += b;
      if (steady_start > 0) steady_images += b;
      if (is_main) {
        uploads->check();
        if (sync && config.checkpoint.every_steps > 0 && step + 1 < steps &&
            optimizer_steps % config.checkpoint.every_steps == 0) {
          checkpoint({epoch, step + 1}, loss_sum, correct, count);
        }
        double el = core::monotonic_seconds() - t_epoch;
        std::ostringstream s;
        s.precision(4);
        s << static_cast<int64_t>(images_this_run * world.world_size / std::max(el, 1e-9))
          << " img/s  loss " << loss_sum / std::max(count, 1.0);
        bar.update(step + 1, s.str());
      }
    }
    bar.finish();
    const double train_seconds = core::monotonic_seconds() - t_epoch;
    const double steady_seconds = steady_start > 0 ? core::monotonic_seconds() - steady_start : 0.0;

    // Evaluation on the full test split: rank r takes r, r + N, …; no padding, each once.
    auto test_idx = strided_shard(dataset.test.size(), world.world_size, world.rank);
    eval::EvalSums ev = eval::evaluate(*net, dataset, dataset.test, test_idx,
                                       config.features.normalize, config.train.eval_batch_size,
                                       config.loader.workers, config.model.channels_last);
    // Sums over ranks; slot 8 + r carries rank r's peak RSS so that every rank sees all.
    std::vector<double> local{loss_sum, correct,         count,         ev.loss_sum,   ev.correct,
                              ev.count, images_this_run, steady_images, steady_seconds};
    local.resize(9 + world.world_size, 0.0);
    local[9 + world.rank] = peak_rss_mb();
    std::vector<torch::Tensor> sums{torch::tensor(local, torch::kDouble)};
    comm.allreduce_sum(sums);
    auto s = sums[0].accessor<double, 1>();
    double rss_max = 0;
    for (int64_t r = 0; r < world.world_size; ++r) rss_max = std::max(rss_max, s[9 + r]);
    const double steady_ips = s[8] > 0 ? s[7] / (s[8] / world.world_size) : 0.0;
    const double epoch_seconds = core::monotonic_seconds() - t_epoch;
    json m = {{"epoch", epoch + 1},
              {"train_loss", s[0] / s[2]},
              {"train_acc", s[1] / s[2]},
              {"test_loss", s[3] / s[5]},
              {"test_acc", s[4] / s[5]},
              {"test_samples", static_cast<int64_t>(s[5])},
              {"lr", learning_rate(config.train, epoch, 0, steps)},
              {"train_seconds", train_seconds},
              {"epoch_seconds", epoch_seconds},
              {"images_per_second", s[6] / train_seconds},
              {"steady_images_per_second", steady_ips},
              {"peak_rss_mb_max_rank", rss_max},
              {"data_wait_seconds", loader.wait_seconds()},
              {"comm_exposed_seconds", ddp.exposed_comm_seconds() - comm_before},
              {"comm_seconds", ddp.comm_seconds() - comm_window_before},
              {"precision", precision}};
    epochs.push_back(m);
    if (is_main) {
      json line = m;
      line["event"] = "epoch";
      core::log::info("train", "epoch " + std::to_string(epoch + 1) + " done", line);
      checkpoint({epoch + 1, 0}, 0.0, 0.0, 0.0);
      json metrics = {
          {"model", config.name}, {"status", "running"}, {"run_id", run_id}, {"epochs", epochs}};
      uploads->submit("metrics", [&reg, &result, name = config.name, stamp, metrics] {
        result.metrics_key = reg.write_metrics(name, stamp, metrics);
      });
    }
  }

  result.epochs = epochs;
  result.seconds = core::monotonic_seconds() - t_start;
  if (is_main) {
    json manifest = {
        {"config", core::to_yaml(config)},
        {"dataset", dataset_json(dataset)},
        {"model_spec",
         {{"arch", spec.arch},
          {"in_channels", spec.in_channels},
          {"num_classes", spec.num_classes},
          {"width", spec.width}}},
        {"parameters", model::parameter_count(*net)},
        {"preprocess",
         {{"normalize", config.features.normalize}, {"channels_last", config.model.channels_last}}},
        {"source_revision", DDPIPE_GIT_REVISION},
        {"run_id", run_id},
        {"world_size", world.world_size},
        {"seed", config.seed},
        {"epochs", epochs},
        {"final", epochs.empty() ? json::object() : epochs.back()},
        {"train_seconds", result.seconds},
        {"lineage",
         {{"dataset", "datasets/" + dataset.name + "/" + dataset.digest + "/"},
          {"resumed_from", resumed ? resumed->id() : ""}}}};
    // Shared, not copied: the upload may be retried, and the weights are 45 MB for ResNet-18.
    auto files = std::make_shared<registry::Files>();
    (*files)["model.pt"] = model::save_state(*net);
    manifest["model_sha256"] = core::sha256_hex((*files)["model.pt"]);
    uploads->submit("model version", [&, files, manifest] {
      // Retried as a whole: a version without manifest is invisible, so a retry is harmless.
      if (result.version.empty()) result.version = reg.publish(config.name, *files, manifest);
      result.metrics_key = reg.write_metrics(config.name, stamp,
                                             {{"model", config.name},
                                              {"version", result.version},
                                              {"status", "completed"},
                                              {"run_id", run_id},
                                              {"world_size", world.world_size},
                                              {"epochs", epochs},
                                              {"final", manifest["final"]},
                                              {"train_seconds", result.seconds}});
    });
    uploads->flush();
    core::log::info(
        "train", "published model version",
        {{"model", config.name}, {"version", result.version}, {"metrics", result.metrics_key}});
  }
  // Success means every rank got here and the version is committed.
  comm.barrier();
  return result;
}

}  // namespace
}  // namespace ddpipe::train
