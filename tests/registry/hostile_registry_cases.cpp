#include "hostile_registry_cases.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hostile_keys.h"
#include "registry/registry.h"
#include "test_util.h"

namespace ddpipe::testing {

namespace {

using nlohmann::json;

void expect_usage(const Hostile& h, const std::string& op, const std::string& field,
                  const std::function<void()>& f) {
  SCOPED_TRACE("name: " + h.label + ", call: " + op);
  const std::string m = usage_error(f);
  EXPECT_NE(m.find(field + " '"), std::string::npos) << m;
}

void check_caller_names(registry::Registry& reg, const std::string& v) {
  for (const Hostile& h : hostile_names()) {
    const std::string& n = h.text;
    expect_usage(h, "resolve model", "model name", [&] { reg.resolve(n, "latest"); });
    expect_usage(h, "resolve ref", "version or alias", [&] { reg.resolve("m", n); });
    expect_usage(h, "versions", "model name", [&] { reg.versions(n); });
    expect_usage(h, "manifest", "version", [&] { reg.manifest_json("m", n); });
    expect_usage(h, "read", "version", [&] { reg.read("m", n, "model.pt"); });
    expect_usage(h, "read_metrics", "version", [&] { reg.read_metrics("m", n); });
    expect_usage(h, "read_steps", "version", [&] { reg.read_steps("m", n); });
    expect_usage(h, "set_alias name", "alias", [&] { reg.set_alias("m", n, v); });
    expect_usage(h, "set_alias version", "version", [&] { reg.set_alias("m", "prod", n); });
    expect_usage(h, "alias_history", "alias", [&] { reg.alias_history("m", n); });
    expect_usage(h, "publish", "model name", [&] { reg.publish(n, {}, registry::Manifest{}); });
  }
}

// An alias file whose "version" is hostile: reading the alias is a data error naming the file
// and the content; nothing outside models/m/ is touched.
void check_pointer(storage::Store& store, registry::Registry& reg, const std::string& version) {
  SCOPED_TRACE("alias content: " + version);
  const std::string key = "models/m/aliases/evil";
  store.put(key, json{{"version", version}, {"updated", "2026-12-07T00:00:00Z"}}.dump());
  auto data_error = [&](const std::string& op, const std::function<void()>& f) {
    SCOPED_TRACE(op);
    const std::string m = error_of(core::ErrorKind::kData, f);
    EXPECT_NE(m.find("alias " + key + " names version '"), std::string::npos) << m;
    EXPECT_NE(m.find("expected model_v<stamp>"), std::string::npos) << m;
  };
  data_error("resolve", [&] { reg.resolve("m", "evil"); });
  data_error("aliases", [&] { reg.aliases("m"); });
  data_error("rollback", [&] { reg.rollback_alias("m", "evil", "test"); });
  data_error("move", [&] { reg.set_alias("m", "evil", reg.resolve("m", "latest")); });
  store.remove(key);
}

std::vector<std::string> keys_of(storage::Store& store) {
  std::vector<std::string> keys;
  for (const storage::ObjectInfo& o : store.list("")) keys.push_back(o.key);
  return keys;
}

}  // namespace

void check_registry_refuses_hostile_names(storage::Store& store) {
  registry::Registry reg(store);
  const std::string v =
      reg.publish("m", {{"model.pt", "weights"}}, registry::Manifest{}, "20261207_000000");
  const std::vector<std::string> before = keys_of(store);
  check_caller_names(reg, v);
  for (const std::string& version :
       {std::string("../../etc"), std::string("/etc/passwd"), std::string("model_v1/../../../x"),
        std::string("model_v1\n"), std::string("model_v") + std::string(200, '9'),
        std::string("production")}) {
    check_pointer(store, reg, version);
  }
  EXPECT_EQ(keys_of(store), before) << "a refused call wrote or removed an object";
  EXPECT_EQ(reg.resolve("m", "latest"), v);
}

}  // namespace ddpipe::testing
