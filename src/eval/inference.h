// ddpipe::eval — using a trained model: load a stored version, evaluate it on a dataset split,
// classify images. Shared by training (per-epoch evaluation), `ddpipe eval`, `ddpipe predict`
// and the inference service, so an image is preprocessed the same way everywhere.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/shard_source.h"
#include "eval/confusion.h"
#include "model/model.h"
#include "registry/manifest.h"
#include "storage/store.h"

namespace ddpipe::eval {

struct LoadedModel {
  std::string model;                       // registry name
  std::string version;                     // resolved version
  registry::Manifest manifest;             // the version's manifest
  std::shared_ptr<model::Classifier> net;  // in eval mode
  // From `manifest`, in the types preprocessing uses:
  std::vector<std::string> classes;
  std::vector<float> mean, std;  // normalisation the model was trained with
  int64_t channels = 0, height = 0, width = 0;
  bool normalize = true;
  bool channels_last = false;
  // Resize the shorter side to resize_shorter, then crop the central height × width (models
  // trained from shards); otherwise the image is resized whole to height × width.
  bool center_crop = false;
  int64_t resize_shorter = 0;
};

// Resolves `ref` ("latest", an alias or a version) and loads the weights. Throws
// core::Error(kNotFound) for unknown models/versions, kData for a manifest that is incomplete
// or of a later schema version (registry::Manifest::from_json) and for an unreadable model file.
LoadedModel load_model(storage::Store& store, const std::string& model, const std::string& ref);

// Loss sum, correct count and sample count over `indices` of `split` (no augmentation).
struct EvalSums {
  double loss_sum = 0.0;
  double correct = 0.0;
  double count = 0.0;
  Confusion confusion;  // dataset.classes × classes
};
EvalSums evaluate(model::Classifier& net, const data::Dataset& dataset, const data::Split& split,
                  const std::vector<int64_t>& indices, bool normalize, int64_t batch_size,
                  int64_t workers, bool channels_last);
// The same over what `loader` yields, for a model of `classes` outputs.
EvalSums evaluate(model::Classifier& net, data::BatchLoader& loader, int64_t classes);
// The same over `indices` of a sharded split (`train` or test), streamed through the dataset's
// shard cache and centre-cropped (data::ShardedDataset::source); loader.batch_size cuts the
// batches.
EvalSums evaluate_sharded(model::Classifier& net, data::ShardedDataset& dataset, bool train,
                          const std::vector<int64_t>& indices, const data::LoaderOptions& loader);

struct Prediction {
  int64_t class_index = 0;
  std::string label;
  float confidence = 0.0f;
  std::vector<float> probabilities;  // one per class
};

// Converts decoded images exactly as training did (channels, size, normalisation) and
// classifies them as one batch. Thread-safe if `m` is not modified concurrently.
std::vector<Prediction> predict(const LoadedModel& m, const std::vector<data::Image>& images);

// The two halves of predict(), for callers that batch images from several sources (the
// inference service). preprocess() writes one image as the network's input: C×H×W floats at
// `out` (m.channels × m.height × m.width of them). classify() runs `n` such inputs, contiguous
// at `inputs`, as one batch; an input's result is bitwise the same in any batch (a lone input
// runs as a batch of two). Both are thread-safe if `m` is not modified concurrently.
void preprocess(const LoadedModel& m, const data::Image& image, float* out);
std::vector<Prediction> classify(const LoadedModel& m, const float* inputs, int64_t n);

}  // namespace ddpipe::eval
