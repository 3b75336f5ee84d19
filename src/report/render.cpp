// render_html: the page's frame (head, style, footer), the header with one card per version,
// and the helpers the sections share.
#include <cmath>
#include <sstream>

#include "report/html.h"
#include "report/report.h"
#include "report/sections.h"

namespace ddpipe::report {
namespace {

// The whole style sheet: system fonts, no url(), no @import; printable.
constexpr const char* kStyle = R"css(
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f3f5f8;--good:#007a5a;--bad:#c2410c}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",
"Liberation Sans",sans-serif;-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:1180px;margin:0 auto;padding:28px 28px 36px}
code,.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
code,.mono{font-size:12px}
header.top{margin-bottom:18px}
.eyebrow{text-transform:uppercase;letter-spacing:.09em;font-size:11px;color:var(--muted);
font-weight:700}
h1{font-size:30px;line-height:1.15;margin:4px 0 6px;letter-spacing:-.01em;word-break:break-all}
h2{font-size:18px;margin:0 0 2px}
h3{font-size:14px;margin:18px 0 8px}
.sub{color:var(--muted);margin:0 0 10px}
.sub b{color:var(--ink)}
nav.toc a{color:#334e68;text-decoration:none;margin-right:16px;font-size:13px;font-weight:600}
section{background:#fff;border:1px solid var(--line);border-radius:12px;padding:20px 22px;
margin:16px 0;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.lead{color:var(--muted);margin:0 0 14px}
.note{color:var(--muted);margin:10px 0 0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(270px,1fr));gap:14px}
.card{background:#fff;border:1px solid var(--line);border-top:5px solid var(--c);
border-radius:12px;padding:14px 16px;box-shadow:0 1px 2px rgba(16,24,40,.05);max-width:480px}
.card-top{display:flex;align-items:center;gap:6px;flex-wrap:wrap}
.ver{font:600 12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
.kpi{display:flex;align-items:baseline;gap:8px;margin:10px 0 2px;flex-wrap:wrap}
.kpi .big{font-size:34px;font-weight:750;letter-spacing:-.02em;font-variant-numeric:tabular-nums}
.kpi .lbl{color:var(--muted);font-size:12px}
.delta{font-size:12px;font-weight:700;white-space:nowrap}
.up{color:var(--good)}.down{color:var(--bad)}.same{color:var(--muted)}
dl{display:grid;grid-template-columns:auto 1fr;gap:3px 14px;margin:10px 0 0;font-size:12.5px}
dt{color:var(--muted)}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums;
overflow-wrap:anywhere}
.tag{display:inline-block;padding:1px 8px;border-radius:999px;font-size:11px;font-weight:700;
background:#e8eef5;color:#334e68}
.tag.main{background:var(--ink);color:#fff}
.pass{background:#d9f2e9;color:#005c44}.fail{background:#fde4d8;color:#9a3412}
.chip{white-space:nowrap}
.swatch{display:inline-block;width:11px;height:11px;border-radius:3px;background:var(--c);
margin-right:5px;vertical-align:-1px}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:0 0 14px;font-size:12.5px}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:22px 26px}
figure{margin:0}
figcaption{display:flex;justify-content:space-between;align-items:baseline;gap:10px;
font-size:13px;margin-bottom:2px}
.key{color:var(--muted);font-size:12px;white-space:nowrap}
.key svg{vertical-align:middle;margin:0 3px 0 8px}
svg.plot{width:100%;height:auto;display:block}
svg.plot .grid line{stroke:#eceff3;stroke-width:1}
svg.plot .axis{stroke:#9aa5b1;fill:none;stroke-width:1}
svg.plot text{font-size:11px;fill:#616e7c;font-variant-numeric:tabular-nums}
svg.plot .axis-title{font-size:12px;fill:#3e4c59;font-weight:600}
svg.plot .line{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}
svg.plot .marks circle,svg.plot .dot{stroke-width:1.5}
.steps svg.plot .line{stroke-width:1.2;stroke-opacity:.9}
.nodata{display:flex;align-items:center;justify-content:center;min-height:160px;
border:1px dashed var(--line);border-radius:8px;color:var(--muted)}
.eval{display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:26px;
align-items:start}
svg.cm{width:100%;height:auto;display:block;max-width:560px}
.eval.wide{grid-template-columns:1fr}.eval.wide svg.cm{max-width:none}
.scroll{overflow-x:auto}
svg.cm text{font-size:11px;fill:#3e4c59}
svg.cm .count{font-weight:600;font-variant-numeric:tabular-nums}
svg.cm .axis-title{font-size:12px;font-weight:700}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-weight:700;color:var(--muted);font-size:11px;text-transform:uppercase;
letter-spacing:.05em;border-bottom:2px solid var(--line)}
tbody th{font-weight:600;color:#3e4c59;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.nowrap{white-space:nowrap}
td.diff{background:#fff6e0}
table.lineage tbody th{width:170px}
th.vcol{border-bottom:3px solid var(--c);text-transform:none;letter-spacing:0}
.bar{position:relative;min-width:120px}
.bar i{position:absolute;left:10px;top:7px;bottom:7px;border-radius:3px;background:#cfe2f3;
max-width:calc(100% - 20px)}
.bar span{position:relative;font-variant-numeric:tabular-nums}
tfoot td{font-weight:700;border-bottom:0;white-space:nowrap}
details{margin-top:10px}
summary{cursor:pointer;color:#334e68;font-weight:600}
pre{background:#0f172a;color:#e2e8f0;padding:12px 14px;border-radius:8px;overflow:auto;
font-size:12px;line-height:1.5;max-height:480px}
.arrow{color:var(--muted);margin:0 4px}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:18px}
@media (max-width:860px){.charts,.eval{grid-template-columns:1fr}}
@media print{body{background:#fff}main{padding:0}section,.card{box-shadow:none;
break-inside:avoid}nav.toc{display:none}}
)css";

// The delta of `v` against the main version's `base` as a coloured span.
std::string delta_span(double v, double base, bool percent_points, bool lower_better) {
  const double d = v - base;
  const double shown = percent_points ? d * 100 : d;
  const std::string text =
      (shown >= 0 ? "+" : "\u2212") + fixed(std::abs(shown), percent_points ? 2 : 4);
  const bool zero = std::abs(shown) < (percent_points ? 0.005 : 0.00005);
  const bool better = lower_better ? d < 0 : d > 0;
  const char* cls = zero ? "same" : better ? "up" : "down";
  const char* arrow = zero ? "" : d > 0 ? "\u25B2 " : "\u25BC ";
  return std::string("<span class=\"delta ") + cls + "\">" + arrow + text +
         (percent_points ? " pp" : "") + "</span>";
}

void write_card(std::ostream& out, const ReportData& data, std::size_t i,
                const std::vector<std::string>& aliases) {
  const VersionReport& v = data.versions[i];
  const registry::Manifest& m = v.manifest;
  const auto acc = final_metric(m, "test_acc"), loss = final_metric(m, "test_loss");
  const auto main_acc = final_metric(data.versions[0].manifest, "test_acc");
  const auto main_loss = final_metric(data.versions[0].manifest, "test_loss");
  out << "<article class=\"card\" style=\"--c:" << version_color(i)
      << "\"><div class=\"card-top\"><span class=\"swatch\"></span><span class=\"ver\">"
      << escape(v.version) << "</span>" << (i == 0 ? "<span class=\"tag main\">main</span>" : "");
  for (const auto& a : aliases) out << "<span class=\"tag\">" << escape(a) << "</span>";
  out << "</div><div class=\"kpi\"><span class=\"big\">" << (acc ? percent(*acc) : "\u2013")
      << "</span><span class=\"lbl\">test accuracy</span>";
  if (i > 0 && acc && main_acc) out << delta_span(*acc, *main_acc, true, false);
  out << "</div><dl><dt>test loss</dt><dd>" << (loss ? fixed(*loss, 4) : "\u2013");
  if (i > 0 && loss && main_loss) out << " " << delta_span(*loss, *main_loss, false, true);
  out << "</dd><dt>epochs</dt><dd>" << (m.epochs.is_array() ? m.epochs.size() : 0)
      << "</dd><dt>dataset</dt><dd>" << escape(m.dataset.name.empty() ? "\u2013" : m.dataset.name)
      << "</dd><dt>digest</dt><dd><code>" << escape(m.dataset.digest.substr(0, 12))
      << "</code></dd><dt>world size</dt><dd>" << m.world_size << "</dd><dt>train time</dt><dd>"
      << duration(m.train_seconds) << "</dd><dt>created</dt><dd>"
      << escape(m.created.empty() ? "\u2013" : m.created) << "</dd></dl></article>";
}

// "fashion-mnist (3f2a…, 10 classes)" when all versions share the main one's dataset.
std::string dataset_summary(const ReportData& data) {
  const auto& d = data.versions[0].manifest.dataset;
  for (const auto& v : data.versions) {
    if (v.manifest.dataset.digest != d.digest) return "<b>datasets differ</b> (see the cards)";
  }
  return "dataset <b>" + escape(d.name.empty() ? "(unnamed)" : d.name) + "</b> <code>" +
         escape(d.digest.substr(0, 12)) + "</code> \u00B7 " + std::to_string(d.classes.size()) +
         " classes";
}

}  // namespace

void write_header(std::ostream& out, const ReportData& data) {
  out << "<header class=\"top\"><div class=\"eyebrow\">ddpipe \u00B7 run report</div><h1>"
      << escape(data.model) << "</h1><p class=\"sub\">";
  if (data.versions.empty()) {
    out << "No versions to show.";
  } else {
    const auto& main = data.versions[0].manifest;
    out << data.versions.size() << (data.versions.size() == 1 ? " version" : " versions")
        << " \u00B7 " << dataset_summary(data) << " \u00B7 world size <b>" << main.world_size
        << "</b>";
  }
  out << " \u00B7 generated " << escape(data.generated) << "</p><nav class=\"toc\">"
      << "<a href=\"#curves\">Curves</a><a href=\"#steps\">Steps</a>"
      << "<a href=\"#evaluation\">Evaluation</a><a href=\"#lineage\">Lineage</a>"
      << "<a href=\"#aliases\">Aliases</a></nav></header>";
  if (data.versions.empty()) return;
  const auto aliases = current_aliases(data);
  out << "<div class=\"cards\">";
  for (std::size_t i = 0; i < data.versions.size(); ++i) {
    auto it = aliases.find(data.versions[i].version);
    write_card(out, data, i, it == aliases.end() ? std::vector<std::string>{} : it->second);
  }
  out << "</div>";
}

std::string render_html(const ReportData& data) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<meta name=\"generator\" content=\"ddpipe report\">\n<title>" << escape(data.model)
      << " \u2014 ddpipe run report</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n"
      << "<main>\n";
  write_header(out, data);
  if (!data.versions.empty()) {
    write_curves(out, data);
    write_steps(out, data);
    write_evaluation(out, data);
    write_lineage(out, data);
  }
  write_aliases(out, data);
  out << "\n<footer>Generated by ddpipe report \u00B7 " << escape(data.generated)
      << " \u00B7 self-contained: no scripts, no external resources</footer>\n</main>\n</body>\n"
      << "</html>\n";
  return out.str();
}

std::optional<double> final_metric(const registry::Manifest& m, const std::string& metric) {
  if (auto v = number(m.final_metrics, metric)) return v;
  if (m.epochs.is_array() && !m.epochs.empty()) return number(m.epochs.back(), metric);
  return std::nullopt;
}

std::string alias_label(const std::string& alias) {
  return alias == "model_latest" ? "latest" : alias;
}

std::map<std::string, std::vector<std::string>> current_aliases(const ReportData& data) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [alias, moves] : data.alias_history) {
    if (!moves.empty()) out[moves.back().to].push_back(alias_label(alias));
  }
  return out;
}

std::string version_chip(const std::string& version, std::size_t i) {
  return "<span class=\"chip\" style=\"--c:" + version_color(i) +
         "\"><span class=\"swatch\"></span><span class=\"ver\">" + escape(version) +
         "</span></span>";
}

}  // namespace ddpipe::report
