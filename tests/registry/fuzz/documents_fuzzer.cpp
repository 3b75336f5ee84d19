// libFuzzer target: the JSON documents the registry and the run tracker read back from the store,
// which anyone with write access to it can edit: a version's manifest.json
// (registry::Manifest::from_json), an alias history entry (registry::AliasMove::from_json) and a
// run record (runs::RunRecord::from_json), each parsed, then written back and read again (the
// round trip must hold). Built with clang under ASan + UBSan; see cmake/DdpipeFuzz.cmake.
//
// Expected refusals: nlohmann::json::exception from json::parse (the callers turn it into
// core::Error), core::Error from from_json; anything else escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "runs/run_record.h"

using namespace ddpipe;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json doc;
  try {
    doc = json::parse(reinterpret_cast<const char*>(data),
                      reinterpret_cast<const char*>(data) + size);
  } catch (const json::exception&) {
    return 0;
  }
  try {
    const registry::Manifest m = registry::Manifest::from_json(doc, "fuzz/manifest.json");
    registry::Manifest::from_json(m.to_json(), "fuzz/manifest.json (written back)");
  } catch (const core::Error&) {
  }
  try {
    const runs::RunRecord r = runs::RunRecord::from_json(doc, "runs/fuzz/run.json");
    runs::RunRecord::from_json(r.to_json(), "runs/fuzz/run.json (written back)");
    runs::shown_status(r, 1.0e9, 60.0);
  } catch (const core::Error&) {
  }
  try {  // the alias history reader skips an entry that throws json::exception
    registry::AliasMove::from_json(doc).to_json();
  } catch (const json::exception&) {
  }
  return 0;
}
