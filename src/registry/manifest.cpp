#include "registry/manifest.h"

#include <string>

#include "core/error.h"

namespace ddpipe::registry {
namespace {

using nlohmann::json;

enum class Need { kRequired, kOptional };
constexpr Need kRequired = Need::kRequired;
constexpr Need kOptional = Need::kOptional;

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

// "/dataset/height" → "dataset.height", as errors name fields.
std::string dotted(const std::string& pointer) {
  std::string out = pointer.substr(1);
  for (char& c : out) {
    if (c == '/') c = '.';
  }
  return out;
}

// The value at `pointer`, or nullptr when absent or null. A parent that is not an object is an
// error (a "dataset" string cannot hold dataset.height).
const json* find(const json& doc, const json::json_pointer& pointer, const std::string& where) {
  if (pointer.empty()) return &doc;
  const json* parent = find(doc, pointer.parent_pointer(), where);
  if (parent == nullptr) return nullptr;
  if (!parent->is_object()) {
    core::fail_data(where + ": field " + dotted(pointer.parent_pointer().to_string()) +
                    " must be an object, got " + parent->type_name());
  }
  auto it = parent->find(pointer.back());
  return it == parent->end() || it->is_null() ? nullptr : &*it;
}

int64_t read_schema_version(const json& doc, const std::string& where) {
  auto it = doc.find("schema_version");
  if (it == doc.end()) return 1;  // written before the field existed
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    core::fail_data(where + ": schema_version must be a positive integer, got " + it->dump());
  }
  const int64_t version = it->get<int64_t>();
  if (version > Manifest::kSchemaVersion) {
    core::fail_data(where + " has schema_version " + std::to_string(version) +
                    "; this build reads versions 1 to " + std::to_string(Manifest::kSchemaVersion) +
                    " (a newer ddpipe wrote it)");
  }
  return version;
}

}  // namespace

json Manifest::to_json() const {
  json doc = extra.is_object() ? extra : json::object();
  doc["schema_version"] = kSchemaVersion;
  for_each_field(*this, [&doc](const char* pointer, const auto& value, Need) {
    doc[json::json_pointer(pointer)] = value;
  });
  return doc;
}

Manifest Manifest::from_json(const json& doc, const std::string& where) {
  if (!doc.is_object()) core::fail_data(where + ": a manifest must be a JSON object");
  Manifest m;
  m.schema_version = read_schema_version(doc, where);
  m.extra = doc;
  m.extra.erase("schema_version");
  for_each_field(m, [&](const char* text, auto& value, Need need) {
    const json::json_pointer pointer(text);
    const json* v = find(doc, pointer, where);
    if (v == nullptr) {
      if (need == kRequired) {
        core::fail_data(where + " is incomplete: field " + dotted(text) + " is missing");
      }
    } else {
      try {
        v->get_to(value);
      } catch (const json::exception& e) {
        core::fail_data(where + ": field " + dotted(text) + " has the wrong type (" +
                        v->type_name() + "): " + e.what());
      }
    }
    if (m.extra.contains(pointer)) m.extra[pointer.parent_pointer()].erase(pointer.back());
  });
  for (const char* group : {"dataset", "model_spec", "preprocess", "lineage"}) {
    auto it = m.extra.find(group);
    if (it != m.extra.end() && it->is_object() && it->empty()) m.extra.erase(it);
  }
  return m;
}

}  // namespace ddpipe::registry
