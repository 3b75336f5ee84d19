#include "train/trainer.h"

#include <ATen/autocast_mode.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/ingest.h"
#include "data/loader.h"
#include "data/shard_source.h"
#include "data/transforms.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "eval/confusion.h"
#include "eval/inference.h"
#include "model/export.h"
#include "model/model.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "report/report.h"
#include "storage/store.h"
#include "train/checkpointer.h"
#include "train/epoch.h"
#include "train/init_from.h"
#include "train/preemption.h"
#include "train/rank_telemetry.h"
#include "train/training_state.h"

#ifndef DDPIPE_GIT_REVISION
#define DDPIPE_GIT_REVISION "unknown"
#endif

namespace ddpipe::train {
namespace {

using nlohmann::json;

// train.precision with "auto" resolved: bf16 where the CPU multiplies bf16 natively.
std::string effective_precision(const core::Config& config) {
  if (config.train.precision != "auto") return config.train.precision;
  return __builtin_cpu_supports("avx512bf16") ? "bf16" : "fp32";
}

// dist.grad_compression and its PowerSGD settings; Q's random start comes from the run's seed.
dist::CompressionOptions compression_options(const core::Config& config) {
  return {dist::grad_compression_from(config.dist.grad_compression), config.dist.powersgd_rank,
          config.dist.powersgd_start_step, static_cast<uint64_t>(config.seed)};
}

// One rank's life, in the order it happens: run() resumes (or starts fresh), trains the epochs
// — each one training steps, evaluation, one allreduce of the sums, then rank 0's checkpoint and
// metrics — and rank 0 publishes the version. Every rank takes part in every collective.
class RankJob {
 public:
  RankJob(const core::Config& config, const dist::WorldInfo& world, dist::Communicator& comm,
          storage::Store& store, const data::Dataset& dataset, data::ShardedDataset* sharded,
          std::string run_id, RankTelemetry& telemetry);
  TrainResult run(double t_start);

 private:
  void resume();
  bool run_epoch(int64_t epoch);
  EpochSums train_steps(int64_t epoch, const EpochBatches& batches, double t_epoch,
                        EpochTimes& times);
  bool train_step(int64_t epoch, int64_t step, const EpochBatches& batches,
                  const data::Batch& batch, TrainSums& sums);
  [[noreturn]] void stop_preempted();
  std::filesystem::path local_checkpoint_dir() const {
    return core::expand_user(config_.cache_dir) / "checkpoints" / config_.name;
  }
  void after_step(bool synced, int64_t steps);
  eval::EvalSums evaluate_share();
  data::SplitOrder train_order() const;
  int64_t split_size(bool train) const;
  void final_evaluation();
  void finish_epoch(int64_t epoch, const json& metrics);
  void save_checkpoint();
  void publish();
  void add_state_dicts(registry::Files& files, registry::Manifest& manifest);
  std::string report_html(const registry::Manifest& manifest);
  registry::Manifest version_manifest();

  const core::Config& config_;
  const dist::WorldInfo& world_;
  dist::Communicator& comm_;
  storage::Store& store_;
  registry::Registry reg_;
  const data::Dataset& dataset_;         // in memory; or the sharded form's header (no samples)
  data::ShardedDataset* const sharded_;  // the sharded form; nullptr in memory
  const std::string run_id_;
  RankTelemetry& telemetry_;
  const bool is_main_;
  const std::string precision_;
  const model::ModelSpec spec_;
  const data::Augment augment_;
  const torch::nn::functional::CrossEntropyFuncOptions ce_options_;
  std::string stamp_;  // names the metrics object
  std::optional<registry::CheckpointRef> resumed_;
  eval::Confusion confusion_;  // this rank's share of the latest evaluation, then the sum
  nlohmann::json evaluation_;  // rank 0: eval::classification_report of the last epoch
  int64_t optimizer_steps_ = 0;
  StopVote stop_vote_;
  bool preempted_ = false;  // the ranks agreed to stop where state_.position is
  TrainResult result_;      // written by uploads_ (declared after it: destroyed before it)
  TrainingState state_;
  std::unique_ptr<dist::DataParallel> ddp_;  // after resume(): it broadcasts rank 0's weights
  std::unique_ptr<Checkpointer> uploads_;    // rank 0
};

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

std::string effective_run_id(const core::Config& config) {
  if (!config.train.run_id.empty()) return config.train.run_id;
  const char* env = std::getenv("DDPIPE_RUN_ID");
  return env ? env : "";
}

namespace {

// A rank's job once its store and telemetry exist: the data, the process group, the epochs.
TrainResult run_rank(const core::Config& config, const dist::WorldInfo& world,
                     storage::Store& store, RankTelemetry& telemetry, const std::string& run_id,
                     double t_start) {
  // Data: ingested content, verified through the local cache.
  std::string digest = config.data.digest.empty() ? data::latest_digest(store, config.data.name)
                                                  : config.data.digest;
  const auto cache_dir = core::expand_user(config.cache_dir);
  std::unique_ptr<data::ShardedDataset> sharded;
  data::Dataset dataset;
  if (config.data.form == "sharded") {
    sharded = std::make_unique<data::ShardedDataset>(store, config.data.name, digest,
                                                     data::sharded_options(config));
  } else {
    dataset = data::load_ingested(store, config.data.name, digest, cache_dir);
  }

  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  dist::Communicator comm(world, ms(config.dist.timeout_s), ms(config.dist.rdzv_timeout_s),
                          ms(config.dist.heartbeat_timeout_s));
  try {
    TrainResult result = RankJob(config, world, comm, store, sharded ? sharded->header() : dataset,
                                 sharded.get(), run_id, telemetry)
                             .run(t_start);
    comm.stop_heartbeat();
    return result;
  } catch (const Preempted&) {
    throw;  // every rank leaves together: nothing to tell the others
  } catch (const std::exception& e) {
    comm.abort(e.what());  // the other ranks leave at once instead of waiting for a timeout
    throw;
  }
}

}  // namespace

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
  RankTelemetry telemetry(config, world, *store, run_id);
  const PreemptionSignal sigterm;  // from here on SIGTERM stops the job at a step boundary
  try {
    TrainResult result = run_rank(config, world, *store, telemetry, run_id, t_start);
    telemetry.succeeded(result.version);
    return result;
  } catch (const Preempted& e) {
    telemetry.preempted(e.what());
    throw;
  } catch (const core::Error& e) {
    telemetry.failed(e.what(), core::exit_code(e.kind()));
    throw;
  } catch (const std::exception& e) {
    telemetry.failed(e.what(), core::exit_code(core::ErrorKind::kInternal));
    throw;
  }
}

namespace {

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

void set_lr(torch::optim::SGD& opt, double lr) {
  for (auto& group : opt.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

std::vector<int64_t> strided_shard(int64_t n, int64_t world, int64_t rank) {
  std::vector<int64_t> idx;
  for (int64_t i = rank; i < n; i += world) idx.push_back(i);
  return idx;
}

data::LoaderOptions train_loader_options(const core::Config& config, int64_t epoch) {
  data::LoaderOptions lo;
  lo.batch_size = config.train.batch_size;
  lo.train = true;
  lo.seed = static_cast<uint64_t>(config.seed);
  lo.epoch = epoch;
  lo.workers = config.loader.workers;
  lo.prefetch = config.loader.prefetch;
  lo.channels_last = config.model.channels_last;
  return lo;
}

data::Augment train_augment(const core::Config& config, const data::Dataset& dataset) {
  data::Augment augment;
  augment.random_crop = config.features.random_crop;
  augment.crop_padding = config.features.crop_padding;
  augment.horizontal_flip = config.features.horizontal_flip;
  augment.normalize = config.features.normalize;
  augment.mean.assign(dataset.mean.begin(), dataset.mean.end());
  augment.std.assign(dataset.std.begin(), dataset.std.end());
  return augment;
}

RankJob::RankJob(const core::Config& config, const dist::WorldInfo& world, dist::Communicator& comm,
                 storage::Store& store, const data::Dataset& dataset, data::ShardedDataset* sharded,
                 std::string run_id, RankTelemetry& telemetry)
    : config_(config),
      world_(world),
      comm_(comm),
      store_(store),
      reg_(store),
      dataset_(dataset),
      sharded_(sharded),
      run_id_(std::move(run_id)),
      telemetry_(telemetry),
      is_main_(world.rank == 0),
      precision_(effective_precision(config)),
      spec_{config.model.arch, dataset.channels, static_cast<int64_t>(dataset.classes.size()),
            config.model.width},
      augment_(train_augment(config, dataset)),
      ce_options_(torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
          config.train.label_smoothing)),
      stop_vote_(comm),
      // Identical initialisation from the seed; DataParallel broadcasts rank 0's anyway.
      state_(config, spec_) {
  state_.sample_order = sample_order_of(config, world.world_size);
}

TrainResult RankJob::run(double t_start) {
  resume();
  // model.init_from on a fresh run: on every rank, so a mismatch stops all of them at once.
  if (!resumed_) init_from_state_dict(state_.net(), config_, store_);
  ddp_ = std::make_unique<dist::DataParallel>(comm_, state_.net(), config_.dist.bucket_mb,
                                              compression_options(config_));
  if (!state_.compression.empty()) {
    ddp_->load_compression_state(state_.compression, state_.compression_source);
  }
  telemetry_.exchange_hosts(comm_);
  stamp_ = core::version_timestamp();
  telemetry_.set_stamp(stamp_);
  if (is_main_) {
    uploads_ = std::make_unique<Checkpointer>(
        reg_, config_.name, local_checkpoint_dir(), config_.checkpoint.storage_grace_s,
        [this](const std::string& what, double seconds, bool ok) {
          telemetry_.upload_done(what, seconds, ok);
        });
  }
  for (int64_t epoch = state_.position.epoch; epoch < config_.train.epochs; ++epoch) {
    if (!run_epoch(epoch)) stop_preempted();
  }
  final_evaluation();
  result_.epochs = state_.epochs;
  result_.seconds = core::monotonic_seconds() - t_start;
  if (is_main_) publish();
  // Success means every rank got here and the version is committed.
  comm_.barrier();
  return result_;
}

// Continues the run's newest checkpoint, if any: first rank 0 uploads what an earlier process
// of the run could only write to local disk, then every rank reads the same one. At another
// world size the run keeps its sample order (epoch.h).
void RankJob::resume() {
  if (is_main_) upload_local_checkpoints(reg_, config_.name, local_checkpoint_dir(), run_id_);
  comm_.barrier();
  resumed_ = checkpoint_to_resume(reg_, config_, run_id_);
  if (!resumed_) return;
  state_.restore(reg_, *resumed_, dataset_.digest);
  const SampleOrder& order = state_.sample_order;
  if (order.world_size != world_.world_size && is_main_) {
    core::log::info(
        "train", "resuming at another world size: same global batch and sample order",
        {{"checkpointed_world_size", order.world_size},
         {"world_size", world_.world_size},
         {"global_batch", order.global_batch},
         {"per_rank_batch", (order.global_batch + world_.world_size - 1) / world_.world_size}});
  }
}

// One epoch; false when the ranks agreed to stop for a preemption (no evaluation then).
bool RankJob::run_epoch(int64_t epoch) {
  const double t_epoch = core::monotonic_seconds();
  const double comm_before = ddp_->exposed_comm_seconds();
  const double comm_window_before = ddp_->comm_seconds();
  const EpochBatches batches = epoch_batches(config_, state_.sample_order, world_, train_order(),
                                             epoch, state_.position.step);
  EpochTimes times;
  telemetry_.begin_epoch(epoch, batches.steps, batches.first_step);
  EpochSums sums = train_steps(epoch, batches, t_epoch, times);
  if (preempted_) return false;
  sums.test = evaluate_share();
  confusion_ = sums.test.confusion;
  sums.peak_rss_mb = peak_rss_mb();
  sums.busy_step_seconds = telemetry_.busy_step_seconds();
  const EpochSums total = sum_over_ranks(sums, comm_, world_);
  times.epoch_seconds = core::monotonic_seconds() - t_epoch;
  times.comm_exposed_seconds = ddp_->exposed_comm_seconds() - comm_before;
  times.comm_seconds = ddp_->comm_seconds() - comm_window_before;
  json metrics = epoch_metrics(config_, world_, epoch, batches.steps, total, times, precision_);
  telemetry_.end_epoch(metrics, total.rank_busy_step_seconds);
  finish_epoch(epoch, metrics);
  return true;
}

EpochSums RankJob::train_steps(int64_t epoch, const EpochBatches& batches, double t_epoch,
                               EpochTimes& times) {
  data::LoaderOptions lo = train_loader_options(config_, epoch);
  lo.batch_sizes = batches.batch_sizes;
  std::unique_ptr<data::ShardSource> source;  // the sharded form: outlives the loader
  if (sharded_) {
    source = sharded_->source(true, batches.indices, batches.batch_sizes,
                              static_cast<uint64_t>(config_.seed), epoch);
  }
  data::BatchLoader loader =
      source ? data::BatchLoader(*source, batches.indices, lo)
             : data::BatchLoader(dataset_, dataset_.train, batches.indices, augment_, lo);
  state_.net().train();
  EpochSums sums;
  if (batches.first_step > 0) sums.train = state_.partial;
  const double exposed_start = ddp_->exposed_comm_seconds(), window_start = ddp_->comm_seconds();
  // Steady state: after the first kWarmupSteps steps (allocator and oneDNN warm-up).
  constexpr int64_t kWarmupSteps = 5;
  double steady_start = 0;
  int64_t offset = 0;  // of this step's samples in batches.indices
  for (int64_t step = batches.first_step; step < batches.steps; ++step) {
    const double t_step = core::monotonic_seconds();
    const double waited = ddp_->exposed_comm_seconds() + ddp_->buffer_sync_seconds();
    if (step == batches.first_step + kWarmupSteps) steady_start = t_step;
    auto batch = loader.next();
    if (!batch) break;
    telemetry_.test_slowdown();
    const TrainSums before = sums.train;
    const bool synced = train_step(epoch, step, batches, *batch, sums.train);
    const int64_t taken = batch->labels.size(0);
    telemetry_.test_log_samples(epoch, step, &batches.indices[static_cast<size_t>(offset)], taken);
    offset += taken;
    const double n = static_cast<double>(taken);
    sums.images += n;
    if (steady_start > 0) sums.steady_images += n;
    state_.position = {epoch, step + 1};
    state_.partial = sums.train;
    const int64_t accum_start = step - step % config_.train.grad_accum;
    telemetry_.after_step(
        {epoch, step + 1, batches.steps, core::monotonic_seconds() - t_step,
         ddp_->exposed_comm_seconds() + ddp_->buffer_sync_seconds() - waited, n,
         sums.train.loss_sum - before.loss_sum, sums.train.correct - before.correct,
         learning_rate(config_.train, epoch, accum_start, batches.steps), loader.wait_seconds(),
         ddp_->exposed_comm_seconds() - exposed_start, ddp_->comm_seconds() - window_start});
    if (synced && stop_vote_.after_step()) {
      preempted_ = true;
      break;
    }
    after_step(synced, batches.steps);
  }
  if (!preempted_ && stop_vote_.drain()) preempted_ = true;
  telemetry_.end_steps();
  times.train_seconds = core::monotonic_seconds() - t_epoch;
  sums.steady_seconds = steady_start > 0 ? core::monotonic_seconds() - steady_start : 0.0;
  times.data_wait_seconds = loader.wait_seconds();
  return sums;
}

// One batch: forward (under bf16 autocast if enabled), backward with the gradient allreduce
// overlapped, and the optimizer step on the last batch of a train.grad_accum window. Adds the
// batch to `sums`; returns whether the optimizer stepped.
bool RankJob::train_step(int64_t epoch, int64_t step, const EpochBatches& batches,
                         const data::Batch& batch, TrainSums& sums) {
  const int64_t steps = batches.steps;
  const int64_t accum = config_.train.grad_accum;
  const bool sync = (step + 1) % accum == 0 || step + 1 == steps;
  if (step % accum == 0) {
    set_lr(state_.optimizer(), learning_rate(config_.train, epoch, step, steps));
  }
  ddp_->sync_buffers();
  torch::Tensor logits;
  {
    AutocastGuard autocast(precision_ == "bf16");
    logits = state_.net().forward(batch.images);
  }
  auto loss =
      torch::nn::functional::cross_entropy(logits.to(torch::kFloat), batch.labels, ce_options_);
  ddp_->begin_backward(sync);
  // Unequal shares of a step (a run resumed at another world size) weigh each rank's mean.
  const double share = loss_scale(batches, step, world_);
  ((share == 1.0 ? loss : loss * share) / static_cast<double>(accum)).backward();
  if (sync) {
    ddp_->finish_gradients();
    state_.optimizer().step();
    ddp_->zero_grad();
    ++optimizer_steps_;
  }
  const double b = static_cast<double>(batch.labels.size(0));
  sums.loss_sum += loss.item<double>() * b;
  sums.correct += logits.argmax(1).eq(batch.labels).sum().item<double>();
  sums.count += b;
  return sync;
}

// After each step: on rank 0 the uploads' health, and on every rank a mid-epoch checkpoint
// every checkpoint.every_steps optimizer steps (not at the epoch's end: that one follows).
void RankJob::after_step(bool synced, int64_t steps) {
  if (is_main_) uploads_->check();
  const int64_t every = config_.checkpoint.every_steps;
  if (synced && every > 0 && state_.position.step < steps && optimizer_steps_ % every == 0) {
    save_checkpoint();
  }
}

// The ranks agreed to stop at state_.position (preemption.h): rank 0 checkpoints there, every
// rank waits for it, and rank 0 waits for the upload until checkpoint.preempt_grace_s after the
// signal. Every rank then leaves with Preempted (kPreempted): exit code 143.
void RankJob::stop_preempted() {
  const std::string where = state_.position.id();
  core::log::warn("train", "preempted: stopping at an agreed step boundary",
                  {{"checkpoint", where},
                   {"epoch", state_.position.epoch},
                   {"step", state_.position.step},
                   {"signal_here", PreemptionSignal::requested()}});
  state_.compression = ddp_->compression_state();  // collective
  if (is_main_) state_.save(*uploads_, run_id_, dataset_.digest);
  comm_.barrier();         // the checkpoint is on rank 0's disk before anyone leaves
  comm_.stop_heartbeat();  // the others leave now: not a lost peer
  bool stored = true;
  if (is_main_) {
    const double left = config_.checkpoint.preempt_grace_s - PreemptionSignal::seconds_since();
    stored = uploads_->flush_within(left);
    if (!stored) {
      core::log::warn("train", "preemption checkpoint not in the store yet; it stays on local disk",
                      {{"checkpoint", where}, {"dir", local_checkpoint_dir().string()}});
    }
  }
  throw Preempted("preempted (SIGTERM): checkpoint " + where +
                  (stored ? " stored" : " on local disk") + "; a restart resumes there");
}

// The order of the train split's epochs: DistributedSampler's in memory, the shard stream's.
data::SplitOrder RankJob::train_order() const {
  if (!sharded_) return data::SplitOrder::in_memory(dataset_.train.size());
  return data::SplitOrder::sharded(sharded_->shard_samples(true), config_.data.shuffle_buffer);
}

int64_t RankJob::split_size(bool train) const {
  if (sharded_) return sharded_->split(train).samples;
  return train ? dataset_.train.size() : dataset_.test.size();
}

// Evaluation on the full test split: rank r takes r, r + N, …; no padding, each once.
eval::EvalSums RankJob::evaluate_share() {
  auto test_idx = strided_shard(split_size(false), world_.world_size, world_.rank);
  if (sharded_) {
    data::LoaderOptions lo;
    lo.batch_size = config_.train.eval_batch_size;
    lo.workers = config_.loader.workers;
    lo.prefetch = config_.loader.prefetch;
    lo.channels_last = config_.model.channels_last;
    return eval::evaluate_sharded(state_.net(), *sharded_, false, test_idx, lo);
  }
  return eval::evaluate(state_.net(), dataset_, dataset_.test, test_idx, config_.features.normalize,
                        config_.train.eval_batch_size, config_.loader.workers,
                        config_.model.channels_last);
}

// After the last epoch: the confusion matrix of its evaluation, summed over ranks (one
// allreduce), and on rank 0 the per-class report stored with the version. A run resumed after
// its last epoch evaluates once more.
void RankJob::final_evaluation() {
  if (confusion_.classes == 0) confusion_ = evaluate_share().confusion;
  std::vector<torch::Tensor> t{torch::tensor(confusion_.counts, torch::kDouble)};
  comm_.allreduce_sum(t);
  const auto summed = t[0].contiguous();
  std::copy(summed.data_ptr<double>(), summed.data_ptr<double>() + summed.numel(),
            confusion_.counts.begin());
  if (is_main_) evaluation_ = eval::classification_report(confusion_, dataset_.classes);
}

// Records an epoch on every rank; rank 0 logs it, checkpoints and uploads the metrics so far.
void RankJob::finish_epoch(int64_t epoch, const json& metrics) {
  state_.epochs.push_back(metrics);
  state_.position = {epoch + 1, 0};
  state_.partial = {};
  if (is_main_) {
    json line = metrics;
    line["event"] = "epoch";
    core::log::info("train", "epoch " + std::to_string(epoch + 1) + " done", line);
  }
  save_checkpoint();
  if (!is_main_) return;
  json running = {{"model", config_.name},
                  {"status", "running"},
                  {"run_id", run_id_},
                  {"epochs", state_.epochs}};
  uploads_->submit("metrics", [this, running, rows = telemetry_.step_rows()] {
    result_.metrics_key = reg_.write_metrics(config_.name, stamp_, running);
    if (!rows.empty()) reg_.write_steps(config_.name, stamp_, rows);
  });
}

// Every rank: the compression state is gathered (a collective). Rank 0: a checkpoint of the
// state now; once it is uploaded (the queue runs in order), the run's older checkpoints beyond
// checkpoint.keep_last are deleted. The newest stays: a restart of this run resumes from it.
void RankJob::save_checkpoint() {
  state_.compression = ddp_->compression_state();
  if (!is_main_) return;
  state_.save(*uploads_, run_id_, dataset_.digest);
  if (config_.checkpoint.keep_last <= 0 || run_id_.empty()) return;
  uploads_->submit("checkpoint retention", [this] {
    for (const auto& r :
         reg_.trim_checkpoints(config_.name, run_id_, config_.checkpoint.keep_last)) {
      core::log::info("train", "removed old checkpoint",
                      {{"checkpoint", r.what}, {"keep_last", config_.checkpoint.keep_last}});
    }
  });
}

// Rank 0: the weights, then the manifest (Registry::publish), then the final metrics.
void RankJob::publish() {
  registry::Manifest manifest = version_manifest();
  // Shared, not copied: the upload may be retried, and the weights are 45 MB for ResNet-18.
  auto files = std::make_shared<registry::Files>();
  (*files)["model.pt"] = model::save_state(state_.net());
  manifest.model_sha256 = core::sha256_hex((*files)["model.pt"]);
  (*files)["report.html"] = report_html(manifest);
  add_state_dicts(*files, manifest);
  uploads_->submit("model version", [this, files, manifest, rows = telemetry_.step_rows()] {
    // Retried as a whole: a version without manifest is invisible, so a retry is harmless.
    // The version and its metrics share the run's stamp (model_v<stamp>, metrics_v<stamp>).
    if (result_.version.empty())
      result_.version = reg_.publish(config_.name, *files, manifest, stamp_);
    result_.metrics_key = reg_.write_metrics(config_.name, result_.version.substr(7),
                                             {{"model", config_.name},
                                              {"version", result_.version},
                                              {"status", "completed"},
                                              {"run_id", run_id_},
                                              {"world_size", world_.world_size},
                                              {"epochs", manifest.epochs},
                                              {"final", manifest.final_metrics},
                                              {"train_seconds", result_.seconds}});
    if (!rows.empty()) reg_.write_steps(config_.name, stamp_, rows);
  });
  uploads_->flush();
  core::log::info(
      "train", "published model version",
      {{"model", config_.name}, {"version", result_.version}, {"metrics", result_.metrics_key}});
}

// The weights as PyTorch state dicts beside model.pt (which eval and serve load), and
// their digests in the manifest ("files": {name: sha256}).
void RankJob::add_state_dicts(registry::Files& files, registry::Manifest& manifest) {
  files["model.pth"] = model::state_dict_pth(state_.net());
  files["model.safetensors"] =
      model::state_dict_safetensors(state_.net(), model::safetensors_metadata(spec_));
  nlohmann::json digests = nlohmann::json::object();
  for (const auto& [name, bytes] : files) digests[name] = core::sha256_hex(bytes);
  manifest.extra["files"] = digests;
}

// The version's report.html (report::render_html): its curves, step history, confusion matrix,
// lineage and the model's alias history so far.
std::string RankJob::report_html(const registry::Manifest& manifest) {
  report::ReportData data;
  data.model = config_.name;
  report::VersionReport version{"model_v" + stamp_, manifest, telemetry_.step_rows()};
  version.manifest.model = config_.name;
  version.manifest.version = version.version;
  version.manifest.created = core::iso_timestamp();
  data.versions.push_back(std::move(version));
  data.generated = core::iso_timestamp();
  try {
    data.alias_history = report::alias_histories(reg_, config_.name);
  } catch (const core::Error& e) {  // the store away: the report goes without the history
    core::log::warn("train", "report.html without the alias history", {{"error", e.what()}});
  }
  return report::render_html(data);
}

registry::Manifest RankJob::version_manifest() {
  registry::Manifest m;
  const data::Dataset& ds = dataset_;
  m.dataset = {ds.name,  ds.digest, ds.classes, ds.channels,      ds.height,
               ds.width, ds.mean,   ds.std,     split_size(true), split_size(false)};
  m.model_spec = {spec_.arch, spec_.in_channels, spec_.num_classes, spec_.width};
  m.preprocess = {config_.features.normalize, config_.model.channels_last, sharded_ != nullptr,
                  sharded_ ? data::eval_side(config_.features.image_size) : 0};
  m.lineage = {"datasets/" + ds.name + "/" + ds.digest + "/", resumed_ ? resumed_->id() : ""};
  m.config = core::to_yaml(config_);
  m.source_revision = DDPIPE_GIT_REVISION;
  m.run_id = run_id_;
  m.world_size = world_.world_size;
  m.seed = config_.seed;
  m.parameters = model::parameter_count(state_.net());
  m.epochs = state_.epochs;
  m.final_metrics = state_.epochs.empty() ? json::object() : state_.epochs.back();
  m.train_seconds = result_.seconds;
  if (!evaluation_.is_null()) m.extra["evaluation"] = evaluation_;
  return m;
}

}  // namespace
}  // namespace ddpipe::train
