// ddpipe::report — the sections of the page, in page order (internal to the component). Each
// writes one <section> (the header writes the <header> and the version cards) and never throws
// for data it cannot draw: it says so instead.
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "registry/manifest.h"
#include "report/report.h"

namespace ddpipe::report {

void write_header(std::ostream& out, const ReportData& data);      // render.cpp
void write_curves(std::ostream& out, const ReportData& data);      // curves.cpp
void write_steps(std::ostream& out, const ReportData& data);       // curves.cpp
void write_evaluation(std::ostream& out, const ReportData& data);  // evaluation.cpp
void write_lineage(std::ostream& out, const ReportData& data);     // lineage.cpp
void write_aliases(std::ostream& out, const ReportData& data);     // lineage.cpp

// The version's final value of `metric`: its final metrics', else its last epoch's.
std::optional<double> final_metric(const registry::Manifest& m, const std::string& metric);
// version → the aliases pointing at it after their last recorded move ("latest" for
// model_latest).
std::map<std::string, std::vector<std::string>> current_aliases(const ReportData& data);
// An alias as shown: "latest" for "model_latest".
std::string alias_label(const std::string& alias);
// A colour swatch and the version name (escaped), coloured as the i-th version.
std::string version_chip(const std::string& version, std::size_t i);

}  // namespace ddpipe::report
