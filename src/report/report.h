// ddpipe::report — one self-contained HTML page comparing versions of a model: header cards,
// per-epoch curves, step-level loss, the main version's confusion matrix and per-class scores,
// lineage (with the config) and the alias history. `ddpipe report NAME [REF...]` writes it; the
// trainer writes one into every new version (report.html).
//
// Loading (from a registry) and rendering (pure) are separate, so a page can be rendered from
// data held in memory before the version exists in the store.
//
// The page fetches nothing: inline CSS and SVG, the system font stack, no scripts, no links but
// "#…" anchors. Tests and tools may rely on these hooks:
//   - every curve is a <polyline> (a <circle> when it has one point) with
//     data-series="<chart>/<metric>/<version>", data-points="<n>" and its n "x,y" pairs in
//     `points`. Charts: epoch-loss (train_loss, test_loss), epoch-acc (train_acc, test_acc),
//     epoch-throughput (steady_images_per_second), epoch-lr (lr), step-loss (loss, x = global_step;
//     a series over kMaxStepPoints rows is downsampled, first and last row kept, and the caption
//     says so);
//   - the confusion matrix is <g data-confusion-matrix data-total="<sum of the cells>"> with one
//     <rect data-true="i" data-pred="j" data-count="c"> per cell (row = true class).
// Every string from the data is HTML-escaped.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "registry/manifest.h"
#include "registry/registry.h"

namespace ddpipe::report {

// Step-level series longer than this are downsampled (evenly spaced rows, first and last kept).
constexpr std::size_t kMaxStepPoints = 2000;

// One version on the page.
struct VersionReport {
  std::string version;                // "model_v20261206_101500"
  registry::Manifest manifest;        // epochs, final metrics, lineage, extra["evaluation"]
  std::vector<nlohmann::json> steps;  // Registry::read_steps rows; empty when it has none
};

struct ReportData {
  std::string model;
  std::vector<VersionReport> versions;  // the first is the main one (header, confusion matrix)
  // alias name ("model_latest" for the latest pointer) → its moves, oldest first. Aliases
  // without recorded moves may be left out.
  std::map<std::string, std::vector<registry::AliasMove>> alias_history;
  std::string generated;  // ISO 8601, shown in the header
};

// Loads `model`'s versions named by `refs` ("latest", an alias or a version name; empty means
// {"latest"}) in that order, a version named twice once, with their manifests and step
// histories, and the history of every alias. `generated` is now.
// Throws core::Error kNotFound naming the ref (and `ddpipe models list <model>`) for a ref that
// resolves to nothing, kUsage for a bad model name, and whatever the registry throws for an
// unreadable manifest or step history (kData, kStorage).
ReportData load_report(registry::Registry& reg, const std::string& model,
                       const std::vector<std::string>& refs);

// The recorded moves of every alias of `model` that has any (ReportData::alias_history).
std::map<std::string, std::vector<registry::AliasMove>> alias_histories(registry::Registry& reg,
                                                                        const std::string& model);

// The HTML page. Pure: the same data gives the same bytes. Never throws for data it cannot draw
// (no versions, missing metrics, no steps, no or malformed evaluation): the page says so where
// the chart or table would be. Versions past the eighth reuse the palette's colours.
std::string render_html(const ReportData& data);

}  // namespace ddpipe::report
