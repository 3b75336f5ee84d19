#include "registry/manifest.h"

#include <string>

#include "core/error.h"
#include "core/json_document.h"

namespace ddpipe::registry {
namespace {

using nlohmann::json;

namespace json_document = core::json_document;
using json_document::Need;
constexpr Need kRequired = Need::kRequired;
constexpr Need kOptional = Need::kOptional;
constexpr Need kOmittedWhenDefault = Need::kOmittedWhenDefault;

// Every field of a manifest once: its JSON pointer, the member holding it, whether a manifest is
// usable without it. `M` is Manifest or const Manifest (reading or writing).
template <class M, class Visit>
void for_each_field(M& m, Visit&& visit) {
  visit("/dataset/name", m.dataset.name, kOptional);
  visit("/dataset/digest", m.dataset.digest, kOptional);
  visit("/dataset/classes", m.dataset.classes, kRequired);
  visit("/dataset/channels", m.dataset.channels, kRequired);
  visit("/dataset/height", m.dataset.height, kRequired);
  visit("/dataset/width", m.dataset.width, kRequired);
  visit("/dataset/mean", m.dataset.mean, kRequired);
  visit("/dataset/std", m.dataset.std, kRequired);
  visit("/dataset/train_size", m.dataset.train_size, kOptional);
  visit("/dataset/test_size", m.dataset.test_size, kOptional);
  visit("/model_spec/arch", m.model_spec.arch, kRequired);
  visit("/model_spec/in_channels", m.model_spec.in_channels, kRequired);
  visit("/model_spec/num_classes", m.model_spec.num_classes, kRequired);
  visit("/model_spec/width", m.model_spec.width, kRequired);
  visit("/preprocess/normalize", m.preprocess.normalize, kRequired);
  visit("/preprocess/channels_last", m.preprocess.channels_last, kOptional);
  visit("/preprocess/center_crop", m.preprocess.center_crop, kOmittedWhenDefault);
  visit("/preprocess/resize_shorter", m.preprocess.resize_shorter, kOmittedWhenDefault);
  visit("/lineage/dataset", m.lineage.dataset, kOptional);
  visit("/lineage/resumed_from", m.lineage.resumed_from, kOptional);
  visit("/config", m.config, kOptional);
  visit("/source_revision", m.source_revision, kOptional);
  visit("/run_id", m.run_id, kOptional);
  visit("/world_size", m.world_size, kOptional);
  visit("/seed", m.seed, kOptional);
  visit("/parameters", m.parameters, kOptional);
  visit("/epochs", m.epochs, kOptional);
  visit("/final", m.final_metrics, kOptional);
  visit("/train_seconds", m.train_seconds, kOptional);
  visit("/model_sha256", m.model_sha256, kOptional);
  visit("/model", m.model, kOptional);
  visit("/version", m.version, kOptional);
  visit("/created", m.created, kOptional);
}

}  // namespace

json Manifest::to_json() const {
  return json_document::write(*this, extra, kSchemaVersion,
                              [](const Manifest& m, auto&& visit) { for_each_field(m, visit); });
}

Manifest Manifest::from_json(const json& doc, const std::string& where) {
  if (!doc.is_object()) core::fail_data(where + ": a manifest must be a JSON object");
  Manifest m;
  m.schema_version = json_document::read_schema_version(doc, where, kSchemaVersion);
  m.extra = json_document::read(doc, where, m,
                                [](Manifest& m, auto&& visit) { for_each_field(m, visit); });
  return m;
}

}  // namespace ddpipe::registry
