// ddpipe::train — one rank of a data-parallel training job.
//
// train() runs the whole job for this rank: loads the ingested dataset (through the local
// cache), builds the model from `config.seed`, wraps it in dist::DataParallel, trains
// `train.epochs` epochs with SGD + cosine annealing, evaluates on the full test split after
// every epoch (sharded over all ranks, every sample counted once), and on rank 0 checkpoints
// every epoch and finally publishes a model version, model_latest and the metrics JSON.
// Every rank takes part in every collective, so no rank finishes while another waits.
// With train.resume the job continues from the newest checkpoint of `config.name`; otherwise it
// continues automatically from the newest checkpoint of the same run id, if any (a restarted
// pod or local group). checkpoint.every_steps adds mid-epoch checkpoints; a resumed run sees
// exactly the batches an uninterrupted run would. Storage outages shorter than
// checkpoint.storage_grace_s do not stop training (see Checkpointer).
// Throws core::Error (kData, kNotFound, kUsage, kRetryable for lost peers).
// The parts: training_state.h (what a checkpoint holds and how it comes back), epoch.h (an
// epoch's batches, sums and metrics); trainer.cpp reads top-down as a rank's life.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/config.h"
#include "dist/world.h"

namespace ddpipe::train {

struct TrainResult {
  std::string version;      // published version (rank 0; empty elsewhere)
  std::string metrics_key;  // store key of the metrics JSON (rank 0)
  nlohmann::json epochs;    // per-epoch metrics, identical on every rank
  double seconds = 0.0;
};

TrainResult train(const core::Config& config, const dist::WorldInfo& world);

// The run id whose checkpoints are resumed automatically: train.run_id, else $DDPIPE_RUN_ID.
std::string effective_run_id(const core::Config& config);

// Sets intra-op threads and the flush-to-zero mode for a rank (called by train()).
void configure_runtime(const core::Config& config, const dist::WorldInfo& world);

}  // namespace ddpipe::train
