#include "shards/index.h"

#include <set>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"

namespace ddpipe::shards {
namespace {

using nlohmann::json;

json split_json(const SplitIndex& split) {
  json shards = json::array();
  for (const ShardRef& s : split.shards) {
    shards.push_back({{"key", s.key},
                      {"sha256", s.sha256},
                      {"bytes", s.bytes},
                      {"samples", s.samples},
                      {"first_key", s.first_key}});
  }
  return {{"samples", split.samples}, {"shards", shards}};
}

// The integer `field` of `j`; a json error for any other type, a float included (converting
// 1e300 to an integer is undefined).
template <class T>
T integer(const json& j, const char* field) {
  const json& v = j.at(field);
  if (!v.is_number_integer()) {
    throw json::type_error::create(302, std::string(field) + " must be an integer", &v);
  }
  return v.get<T>();
}

// Reads one split of `j` and checks it against `name`; throws json errors for mistyped fields.
SplitIndex parse_split(const json& j, const std::string& name, const std::string& where) {
  SplitIndex split;
  split.samples = integer<int64_t>(j, "samples");
  int64_t sum = 0;
  for (const json& s : j.at("shards")) {
    ShardRef r{s.at("key").get<std::string>(), s.at("sha256").get<std::string>(),
               integer<uint64_t>(s, "bytes"), integer<int64_t>(s, "samples"),
               s.at("first_key").get<std::string>()};
    if (!is_sha256_hex(r.sha256) || r.key != shard_key(name, r.sha256)) {
      core::fail_data(where + ": shard '" + r.key + "' with sha256 '" + r.sha256 +
                      "' is not named " + shard_key(name, "<sha256>") + " after its digest");
    }
    if (r.samples <= 0 || r.bytes == 0 || r.first_key.empty()) {
      core::fail_data(where + ": shard " + r.key + " has no samples, no bytes or no first_key");
    }
    if (__builtin_add_overflow(sum, r.samples, &sum)) {
      core::fail_data(where + ": the shards' samples add up to more than 2^63");
    }
    split.shards.push_back(std::move(r));
  }
  if (sum != split.samples) {
    core::fail_data(where + ": \"samples\" is " + std::to_string(split.samples) +
                    " but its shards hold " + std::to_string(sum));
  }
  return split;
}

DatasetIndex parse_fields(const json& j, const std::string& origin) {
  if (j.at("format") != "webdataset" || j.at("version") != kIndexVersion) {
    core::fail_data(origin + ": format " + j.at("format").dump() + " version " +
                    j.at("version").dump() + " is not a ddpipe sharded index (expected " +
                    "\"webdataset\" version " + std::to_string(kIndexVersion) + ")");
  }
  DatasetIndex index;
  index.name = j.at("name").get<std::string>();
  check_name(index.name);
  index.classes = j.at("classes").get<std::vector<std::string>>();
  index.channels = integer<int64_t>(j, "channels");
  index.shard_mb = integer<int64_t>(j, "shard_mb");
  index.source = j.at("source");
  if (index.classes.empty()) core::fail_data(origin + ": no classes");
  if (index.channels != 1 && index.channels != 3) {
    core::fail_data(origin + ": channels is " + std::to_string(index.channels) +
                    ", expected 1 or 3");
  }
  const json& splits = j.at("splits");
  index.train = parse_split(splits.at("train"), index.name, origin + ": split train");
  index.test = parse_split(splits.at("test"), index.name, origin + ": split test");
  if (index.train.samples == 0) core::fail_data(origin + ": the train split has no samples");
  return index;
}

}  // namespace

void check_name(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) {
    core::fail_usage("dataset name '" + name + "' must be non-empty and contain no '/'");
  }
  storage::validate_key("datasets/" + name + "/latest");
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string latest_key(const std::string& name) {
  check_name(name);
  return "datasets/" + name + "/latest";
}

std::string dataset_prefix(const std::string& name, const std::string& digest) {
  check_name(name);
  return "datasets/" + name + "/" + digest + "/";
}

std::string index_key(const std::string& name, const std::string& digest) {
  return dataset_prefix(name, digest) + "index.json";
}

std::string shard_key(const std::string& name, const std::string& sha256) {
  check_name(name);
  return "datasets/" + name + "/shards/" + sha256 + ".tar";
}

std::string progress_key(const std::string& name, const std::string& plan_digest) {
  check_name(name);
  return "datasets/" + name + "/ingest/" + plan_digest + ".json";
}

json to_json(const DatasetIndex& index, bool with_digest) {
  json j = {{"format", "webdataset"},
            {"version", kIndexVersion},
            {"name", index.name},
            {"classes", index.classes},
            {"channels", index.channels},
            {"shard_mb", index.shard_mb},
            {"source", index.source},
            {"splits", {{"train", split_json(index.train)}, {"test", split_json(index.test)}}}};
  if (with_digest) j["digest"] = index.digest;
  return j;
}

void seal(DatasetIndex& index) { index.digest = core::sha256_hex(to_json(index, false).dump()); }

DatasetIndex parse_index(const std::string& text, const std::string& origin) {
  DatasetIndex index;
  std::string stated;
  try {
    const json j = json::parse(text);
    index = parse_fields(j, origin);
    stated = j.at("digest").get<std::string>();
  } catch (const json::exception& e) {
    core::fail_data(origin + ": invalid sharded dataset index: " + e.what());
  }
  seal(index);
  if (stated != index.digest) {
    core::fail_data(origin + ": \"digest\" is " + stated + " but the content's digest is " +
                    index.digest + " (edited or corrupt)");
  }
  return index;
}

std::string latest_digest(storage::Store& store, const std::string& name) {
  const std::string key = latest_key(name);
  const auto text = store.try_get(key);
  if (!text) {
    core::fail_not_found("dataset '" + name + "' was never ingested into " + store.url() +
                         " (run `ddpipe ingest` with data.name=" + name + ")");
  }
  const std::string digest = text->substr(0, text->find_last_not_of(" \t\r\n") + 1);
  if (!is_sha256_hex(digest)) {
    core::fail_data(store.url() + "/" + key + ": '" + digest + "' is not a SHA-256 hex digest");
  }
  return digest;
}

DatasetIndex read_index(storage::Store& store, const std::string& name, const std::string& digest) {
  if (!is_sha256_hex(digest)) {
    core::fail_usage("dataset digest '" + digest + "' is not a SHA-256 hex digest");
  }
  const std::string key = index_key(name, digest);
  const auto text = store.try_get(key);
  if (!text) {
    core::fail_not_found(
        "sharded dataset '" + name + "' with digest " + digest + " is not in " + store.url() +
        " (no " + key + "; run `ddpipe ingest` with data.name=" + name + " and data.form=sharded)");
  }
  DatasetIndex index = parse_index(*text, store.url() + "/" + key);
  if (index.digest != digest || index.name != name) {
    core::fail_data(store.url() + "/" + key + ": holds dataset '" + index.name + "' digest " +
                    index.digest + ", expected '" + name + "' digest " + digest);
  }
  return index;
}

bool write_index(storage::Store& store, DatasetIndex& index) {
  seal(index);
  const std::string key = index_key(index.name, index.digest);
  const bool present = store.exists(key);
  if (!present) {
    parse_index(to_json(index).dump(), key);  // never write an index that would not read back
    std::set<std::string> stored;
    for (const auto& o : store.list("datasets/" + index.name + "/shards/")) stored.insert(o.key);
    for (const SplitIndex* split : {&index.train, &index.test}) {
      for (const ShardRef& s : split->shards) {
        if (!stored.count(s.key)) {
          core::fail_data("sharded dataset '" + index.name + "': shard " + s.key + " is not in " +
                          store.url() + "; the index is written only after every shard");
        }
      }
    }
    store.put(key, to_json(index).dump(2) + "\n");  // last: marks the dataset complete
  }
  // The pointer moves only when it names another digest, so a repeated ingest writes nothing.
  const std::string latest = latest_key(index.name);
  if (store.try_get(latest).value_or("") != index.digest + "\n") {
    store.put(latest, index.digest + "\n");
  }
  return !present;
}

}  // namespace ddpipe::shards
