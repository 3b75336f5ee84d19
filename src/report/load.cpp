// load_report: the versions named by refs, their step histories and the alias histories.
#include <algorithm>

#include "core/clock.h"
#include "core/error.h"
#include "report/report.h"

namespace ddpipe::report {

ReportData load_report(registry::Registry& reg, const std::string& model,
                       const std::vector<std::string>& refs) {
  registry::validate_name("model name", model);
  ReportData data;
  data.model = model;
  data.generated = core::iso_timestamp();
  const std::vector<std::string> wanted = refs.empty() ? std::vector<std::string>{"latest"} : refs;
  for (const auto& ref : wanted) {
    std::string version;
    try {
      version = reg.resolve(model, ref);
    } catch (const core::Error& e) {
      if (e.kind() != core::ErrorKind::kNotFound) throw;
      core::fail_not_found("report of model " + model + ": '" + ref +
                           "' is not a version, an alias or \"latest\" of it (" + e.what() +
                           "); `ddpipe models list` shows the versions and aliases");
    }
    const bool seen = std::any_of(data.versions.begin(), data.versions.end(),
                                  [&](const VersionReport& v) { return v.version == version; });
    if (seen) continue;
    data.versions.push_back(
        {version, reg.manifest(model, version), reg.read_steps(model, version)});
  }
  data.alias_history = alias_histories(reg, model);
  return data;
}

std::map<std::string, std::vector<registry::AliasMove>> alias_histories(registry::Registry& reg,
                                                                        const std::string& model) {
  std::map<std::string, std::vector<registry::AliasMove>> out;
  for (const auto& alias : reg.alias_names(model)) {
    auto history = reg.alias_history(model, alias);
    if (!history.empty()) out[alias] = std::move(history);
  }
  return out;
}

}  // namespace ddpipe::report
