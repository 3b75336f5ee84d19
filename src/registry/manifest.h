// ddpipe::registry — the manifest of a model version: what was trained, on what, how, with which
// result. Stored as models/<model>/<version>/manifest.json; its fields are documented in
// docs/storage.md ("Model manifests").
//
// schema_version: 2 is written by this build. Manifests written before the field existed are
// version 1 (same fields, no "schema_version"); both are read. A later version is rejected, as
// is a manifest missing a required field: core::Error(kData) naming the manifest and the field.
// Required are the fields a version cannot be used without — dataset.{classes, channels, height,
// width, mean, std}, model_spec.{arch, in_channels, num_classes, width} and
// preprocess.normalize —; every other field reads as its default when absent.
// Keys this build does not know are kept in `extra` and written back by to_json().
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ddpipe::registry {

struct Manifest {
  static constexpr int64_t kSchemaVersion = 2;  // written by this build

  // The ingested dataset the model was trained on (datasets/<name>/<digest>/).
  struct Dataset {
    std::string name;
    std::string digest;                // SHA-256 of the ingested content
    std::vector<std::string> classes;  // index → label
    int64_t channels = 0, height = 0, width = 0;
    std::vector<double> mean, std;  // per channel, of the training split (pixels / 255)
    int64_t train_size = 0, test_size = 0;
  };
  // What model::make_model builds.
  struct ModelSpec {
    std::string arch;
    int64_t in_channels = 0;
    int64_t num_classes = 0;
    int64_t width = 0;
  };
  // How an image becomes the network's input.
  struct Preprocess {
    bool normalize = true;       // (x / 255 - mean) / std
    bool channels_last = false;  // NHWC weights and inputs
    // Resize the shorter side to resize_shorter, then crop the central height × width (trained
    // from shards: data::resize_center_crop); otherwise resize the image whole to height × width.
    bool center_crop = false;
    int64_t resize_shorter = 0;
  };
  struct Lineage {
    std::string dataset;       // store prefix "datasets/<name>/<digest>/"
    std::string resumed_from;  // checkpoint id ("epoch_3", "epoch_3_step_40"), or empty
  };

  int64_t schema_version = kSchemaVersion;  // as stored; 1 when the document has none
  Dataset dataset;
  ModelSpec model_spec;
  Preprocess preprocess;
  Lineage lineage;
  std::string config;  // the resolved config as YAML, secrets redacted
  std::string source_revision;
  std::string run_id;
  int64_t world_size = 0;
  int64_t seed = 0;
  int64_t parameters = 0;
  nlohmann::json epochs = nlohmann::json::array();          // per-epoch metrics objects
  nlohmann::json final_metrics = nlohmann::json::object();  // "final": the last epoch's, or {}
  double train_seconds = 0.0;
  std::string model_sha256;  // of model.pt
  // Set by Registry::publish.
  std::string model;
  std::string version;
  std::string created;  // ISO 8601, UTC

  nlohmann::json extra = nlohmann::json::object();  // keys unknown to this build, kept as is

  // The document as stored; always written with schema_version kSchemaVersion.
  nlohmann::json to_json() const;
  // Reads schema version 1 or 2. `where` names the manifest in errors (e.g. its store key).
  // Throws core::Error(kData) for a later schema version, a missing required field or a field
  // of the wrong type.
  static Manifest from_json(const nlohmann::json& doc, const std::string& where);
};

}  // namespace ddpipe::registry
