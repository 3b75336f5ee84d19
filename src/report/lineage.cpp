// Lineage (what each version was trained from, its config) and the alias history.
#include <algorithm>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "registry/compare.h"
#include "report/html.h"
#include "report/sections.h"

namespace ddpipe::report {
namespace {

using nlohmann::json;

// The alias table shows at most this many moves, newest first.
constexpr std::size_t kMaxAliasRows = 200;

struct Row {
  const char* label;
  bool compare;  // highlight the cells that differ from the main version's
  bool mono;
  std::function<std::string(const VersionReport&)> value;  // plain text, escaped on output
};

std::string or_dash(const std::string& s) { return s.empty() ? "\u2013" : s; }

std::string last_epoch_text(const registry::Manifest& m, const char* key) {
  if (!m.epochs.is_array() || m.epochs.empty() || !m.epochs.back().is_object()) return "";
  return scalar_text(m.epochs.back().value(key, json()));
}

const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {"version", false, true, [](const VersionReport& v) { return v.version; }},
      {"run id", false, true, [](const VersionReport& v) { return v.manifest.run_id; }},
      {"dataset", true, false, [](const VersionReport& v) { return v.manifest.dataset.name; }},
      {"dataset digest", true, true,
       [](const VersionReport& v) { return v.manifest.dataset.digest.substr(0, 12); }},
      {"classes", true, false,
       [](const VersionReport& v) { return std::to_string(v.manifest.dataset.classes.size()); }},
      {"train / test size", true, false,
       [](const VersionReport& v) {
         return count(v.manifest.dataset.train_size) + " / " + count(v.manifest.dataset.test_size);
       }},
      {"model", true, true, [](const VersionReport& v) { return v.manifest.model_spec.arch; }},
      {"width", true, false,
       [](const VersionReport& v) { return std::to_string(v.manifest.model_spec.width); }},
      {"parameters", true, false,
       [](const VersionReport& v) { return count(v.manifest.parameters); }},
      {"precision", true, false,
       [](const VersionReport& v) { return last_epoch_text(v.manifest, "precision"); }},
      {"world size", true, false,
       [](const VersionReport& v) { return std::to_string(v.manifest.world_size); }},
      {"seed", true, false, [](const VersionReport& v) { return std::to_string(v.manifest.seed); }},
      {"source revision", true, true,
       [](const VersionReport& v) { return v.manifest.source_revision.substr(0, 12); }},
      {"created", false, false, [](const VersionReport& v) { return v.manifest.created; }},
      {"epochs", true, false,
       [](const VersionReport& v) { return std::to_string(v.manifest.epochs.size()); }},
      {"train time", false, false,
       [](const VersionReport& v) { return duration(v.manifest.train_seconds); }},
      {"resumed from", true, true,
       [](const VersionReport& v) { return v.manifest.lineage.resumed_from; }},
  };
  return kRows;
}

void write_lineage_table(std::ostream& out, const ReportData& data) {
  out << "<div class=\"scroll\"><table class=\"lineage\"><thead><tr><th></th>";
  for (std::size_t i = 0; i < data.versions.size(); ++i) {
    out << "<th class=\"vcol\" style=\"--c:" << version_color(i) << "\">"
        << version_chip(data.versions[i].version, i) << "</th>";
  }
  out << "</tr></thead><tbody>";
  for (const Row& row : rows()) {
    const std::string base = row.value(data.versions[0]);
    out << "<tr><th>" << row.label << "</th>";
    for (const auto& v : data.versions) {
      const std::string value = row.value(v);
      const bool differs = row.compare && &v != &data.versions[0] && value != base;
      out << "<td" << (differs ? " class=\"diff\"" : "") << ">" << (row.mono ? "<code>" : "")
          << escape(or_dash(value)) << (row.mono ? "</code>" : "") << "</td>";
    }
    out << "</tr>";
  }
  out << "</tbody></table></div>";
}

// The config keys where each other version differs from the main one.
void write_config_diffs(std::ostream& out, const ReportData& data) {
  const auto& main = data.versions[0];
  for (std::size_t i = 1; i < data.versions.size(); ++i) {
    const auto& v = data.versions[i];
    registry::Manifest a, b;  // only the configs: diff() compares nothing else of these
    a.config = main.manifest.config, b.config = v.manifest.config;
    const json keys = registry::diff(a, b)["config"];
    out << "<h3>Config: " << version_chip(v.version, i) << " against "
        << version_chip(main.version, 0) << "</h3>";
    if (keys.empty()) {
      out << "<p class=\"note\">Same config.</p>";
      continue;
    }
    out << "<table><thead><tr><th>key</th><th>main</th><th>this version</th></tr></thead><tbody>";
    for (const auto& k : keys) {
      out << "<tr><th><code>" << escape(scalar_text(k["key"])) << "</code></th><td><code>"
          << escape(or_dash(scalar_text(k["a"]))) << "</code></td><td class=\"diff\"><code>"
          << escape(or_dash(scalar_text(k["b"]))) << "</code></td></tr>";
    }
    out << "</tbody></table>";
  }
}

// A version in the alias table: its chip when it is on the page, else its name.
std::string version_cell(const ReportData& data, const std::string& version) {
  if (version.empty()) return "<span class=\"arrow\">(none)</span>";
  for (std::size_t i = 0; i < data.versions.size(); ++i) {
    if (data.versions[i].version == version) return version_chip(version, i);
  }
  return "<code>" + escape(version) + "</code>";
}

std::string gate_cell(const json& gate) {
  if (!gate.is_object()) return "<span class=\"arrow\">no gate</span>";
  const bool pass = gate.contains("pass") && gate["pass"].is_boolean() && gate["pass"].get<bool>();
  std::string out =
      std::string("<span class=\"tag ") + (pass ? "pass\">passed" : "fail\">failed") + "</span>";
  if (gate.contains("reason"))
    out += "<br><small>" + escape(scalar_text(gate["reason"])) + "</small>";
  return out;
}

void write_current_aliases(std::ostream& out, const ReportData& data) {
  out << "<div class=\"legend\">";
  for (const auto& [alias, moves] : data.alias_history) {
    if (moves.empty()) continue;
    out << "<span><span class=\"tag\">" << escape(alias_label(alias))
        << "</span><span class=\"arrow\">\u2192</span>" << version_cell(data, moves.back().to)
        << "</span>";
  }
  out << "</div>";
}

}  // namespace

void write_lineage(std::ostream& out, const ReportData& data) {
  out << "<section id=\"lineage\"><h2>Lineage</h2><p class=\"lead\">What each version was "
         "trained from and how. Highlighted cells differ from the main version.</p>";
  write_lineage_table(out, data);
  write_config_diffs(out, data);
  for (std::size_t i = 0; i < data.versions.size(); ++i) {
    const auto& v = data.versions[i];
    out << "<details><summary>Resolved config of " << escape(v.version) << " (YAML)</summary><pre>"
        << escape(v.manifest.config.empty() ? "(not recorded)" : v.manifest.config)
        << "</pre></details>";
  }
  out << "</section>";
}

void write_aliases(std::ostream& out, const ReportData& data) {
  using Move = std::pair<std::string, const registry::AliasMove*>;
  std::vector<Move> moves;
  for (const auto& [alias, history] : data.alias_history) {
    for (const auto& m : history) moves.emplace_back(alias, &m);
  }
  out << "<section id=\"aliases\"><h2>Alias history</h2>";
  if (moves.empty()) {
    out << "<p class=\"note\">No alias of " << escape(data.model)
        << " has a recorded move.</p></section>";
    return;
  }
  std::sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) {
    return std::tie(b.second->time, b.first, b.second->seq) <
           std::tie(a.second->time, a.first, a.second->seq);
  });
  out << "<p class=\"lead\">Where each alias points now, and every recorded move, newest "
         "first.</p>";
  write_current_aliases(out, data);
  out << "<div class=\"scroll\"><table><thead><tr><th>time "
         "(UTC)</th><th>alias</th><th>move</th><th>reason</th>"
         "<th>actor</th><th>gate</th></tr></thead><tbody>";
  for (std::size_t k = 0; k < std::min(moves.size(), kMaxAliasRows); ++k) {
    const auto& [alias, m] = moves[k];
    out << "<tr><td class=\"mono nowrap\">" << escape(m->time) << "</td><td><span class=\"tag\">"
        << escape(alias_label(alias)) << "</span> <small>#" << m->seq << "</small></td><td>"
        << version_cell(data, m->from) << "<span class=\"arrow\">\u2192</span>"
        << version_cell(data, m->to) << "</td><td>" << escape(or_dash(m->reason))
        << "</td><td class=\"nowrap\">" << escape(or_dash(m->actor)) << "</td><td>"
        << gate_cell(m->gate) << "</td></tr>";
  }
  out << "</tbody></table></div>";
  if (moves.size() > kMaxAliasRows) {
    out << "<p class=\"note\">" << count(int64_t(moves.size() - kMaxAliasRows))
        << " older moves are not shown (`ddpipe models history " << escape(data.model)
        << "` lists them).</p>";
  }
  out << "</section>";
}

}  // namespace ddpipe::report
