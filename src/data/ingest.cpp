#include "data/ingest.h"

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/formats.h"
#include "data/image.h"
#include "shards/index.h"

namespace ddpipe::data {
namespace fs = std::filesystem;
namespace {

constexpr int kFormatVersion = 1;
const char* const kDataFiles[] = {"train.images", "train.labels", "test.images", "test.labels"};

std::string_view as_bytes(const std::vector<uint8_t>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

std::string encode_labels(const std::vector<int32_t>& labels) {
  std::string out(labels.size() * 4, '\0');
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto v = static_cast<uint32_t>(labels[i]);
    for (int b = 0; b < 4; ++b) out[4 * i + b] = static_cast<char>((v >> (8 * b)) & 0xff);
  }
  return out;
}

std::vector<uint8_t> read_exact(const fs::path& path, uint64_t expected) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) core::fail_storage("cannot read " + path.string() + ": " + ec.message());
  if (size != expected) {
    core::fail_data(path.string() + ": " + std::to_string(size) + " bytes, the manifest implies " +
                    std::to_string(expected));
  }
  std::vector<uint8_t> out(size);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) core::fail_storage("cannot open " + path.string());
  const size_t got = std::fread(out.data(), 1, out.size(), f);
  std::fclose(f);
  if (got != out.size()) core::fail_storage("reading " + path.string() + " failed");
  return out;
}

void read_split(const fs::path& dir, const std::string& which, int64_t size, int64_t image_bytes,
                Split& split) {
  split.images = read_exact(dir / (which + ".images"), static_cast<uint64_t>(size * image_bytes));
  const std::vector<uint8_t> raw =
      read_exact(dir / (which + ".labels"), static_cast<uint64_t>(size) * 4);
  split.labels.resize(static_cast<size_t>(size));
  for (size_t i = 0; i < split.labels.size(); ++i) {
    split.labels[i] =
        static_cast<int32_t>(uint32_t{raw[4 * i]} | uint32_t{raw[4 * i + 1]} << 8 |
                             uint32_t{raw[4 * i + 2]} << 16 | uint32_t{raw[4 * i + 3]} << 24);
  }
}

// A dataset in memory as the samples of a sharded ingest: each image encoded as a PNG when its
// shard is built.
class ReencodedSource : public shards::IngestSource {
 public:
  ReencodedSource(const Dataset& d, std::string format) : d_(d), format_(std::move(format)) {}

  std::string origin() const override {
    return format_ + " dataset " + d_.name + " (re-encoded as PNG)";
  }
  const std::vector<std::string>& classes() const override { return d_.classes; }
  size_t size(bool test) const override { return split(test).labels.size(); }
  std::string what(bool test, size_t i) const override {
    return origin() + ", " + (test ? "test" : "train") + " image " + std::to_string(i);
  }
  int32_t label(bool test, size_t i) const override { return split(test).labels[i]; }
  uint64_t size_hint(bool, size_t) const override {
    return static_cast<uint64_t>(d_.image_bytes());
  }
  std::string read(bool test, size_t i) const override {
    return encode_png(split(test).images.data() + i * static_cast<size_t>(d_.image_bytes()),
                      d_.channels, d_.height, d_.width);
  }
  void hash_plan(core::Hasher& h) const override {
    h.update("png re-encoding of the content " + d_.digest + "\n");
  }
  nlohmann::json description() const override {
    return {{"format", format_}, {"encoding", "png"}, {"content_digest", d_.digest}};
  }

 private:
  const Split& split(bool test) const { return test ? d_.test : d_.train; }

  const Dataset& d_;
  const std::string format_;
};

}  // namespace

shards::IngestReport ingest_sharded(const core::DataConfig& config, uint64_t seed,
                                    storage::Store& store, bool show_progress) {
  shards::IngestOptions o;
  o.name = config.name;
  o.shard_mb = config.shard_mb;
  o.bad_image = shards::parse_bad_image_policy(config.bad_images);
  o.check_image = image_member_extension;
  o.show_progress = show_progress;
  if (config.format == "image-folder") {
    o.root = core::expand_user(config.path);
    o.channels = config.channels;
    o.test_fraction = config.test_fraction;
    o.seed = seed;
    return shards::ingest_image_folder(o, store);
  }
  const Dataset dataset = load_source(config, seed);
  o.channels = dataset.channels;
  return shards::ingest_samples(ReencodedSource(dataset, config.format), o, store);
}

IngestResult ingest(const Dataset& dataset, storage::Store& store) {
  shards::check_name(dataset.name);
  if (dataset.digest.empty() || dataset.mean.empty()) {
    core::fail_usage("ingest: dataset '" + dataset.name + "' is not finalized");
  }
  IngestResult result;
  result.name = dataset.name;
  result.digest = dataset.digest;
  result.prefix = shards::dataset_prefix(dataset.name, dataset.digest);
  const std::string latest_key = shards::latest_key(dataset.name);

  result.already_present = store.exists(result.prefix + "manifest.json");
  if (!result.already_present) {
    store.put(result.prefix + "train.images", as_bytes(dataset.train.images));
    store.put(result.prefix + "train.labels", encode_labels(dataset.train.labels));
    store.put(result.prefix + "test.images", as_bytes(dataset.test.images));
    store.put(result.prefix + "test.labels", encode_labels(dataset.test.labels));
    const nlohmann::json manifest = {
        {"format_version", kFormatVersion},
        {"name", dataset.name},
        {"digest", dataset.digest},
        {"channels", dataset.channels},
        {"height", dataset.height},
        {"width", dataset.width},
        {"classes", dataset.classes},
        {"mean", dataset.mean},
        {"std", dataset.std},
        {"train_size", dataset.train.size()},
        {"test_size", dataset.test.size()},
        {"image_layout", "uint8 N x C x H x W"},
        {"label_encoding", "int32 little-endian"},
        {"created", core::iso_timestamp()},
    };
    store.put(result.prefix + "manifest.json", manifest.dump(2) + "\n");  // last: marks complete
  }
  // The pointer moves only when it names another digest, so a repeated ingest writes nothing.
  if (store.try_get(latest_key).value_or("") != dataset.digest + "\n") {
    store.put(latest_key, dataset.digest + "\n");
  }
  core::log::info("data", result.already_present ? "dataset already ingested" : "dataset ingested",
                  {{"name", result.name}, {"digest", result.digest}, {"store", store.url()}});
  return result;
}

std::string latest_digest(storage::Store& store, const std::string& name) {
  return shards::latest_digest(store, name);
}

Dataset load_ingested(storage::Store& store, const std::string& name, const std::string& digest,
                      const fs::path& cache_dir) {
  shards::check_name(name);
  if (digest.size() != 64 || digest.find_first_not_of("0123456789abcdef") != std::string::npos) {
    core::fail_usage("dataset digest '" + digest + "' is not a SHA-256 hex digest");
  }
  const std::string prefix = shards::dataset_prefix(name, digest);
  const fs::path dir = cache_dir / "datasets" / digest;
  std::error_code ec;
  bool cached = fs::is_regular_file(dir / "manifest.json", ec);
  for (const char* f : kDataFiles) cached = cached && fs::is_regular_file(dir / f, ec);
  if (!cached) {
    if (!store.exists(prefix + "manifest.json")) {
      core::fail_not_found("dataset '" + name + "' with digest " + digest + " is not in " +
                           store.url() + " (run `ddpipe ingest` with data.name=" + name + ")");
    }
    for (const char* f : kDataFiles) store.get_file(prefix + f, dir / f);
    store.get_file(prefix + "manifest.json", dir / "manifest.json");  // last: marks complete
  }

  const fs::path manifest_path = dir / "manifest.json";
  nlohmann::json m;
  Dataset d;
  try {
    m = nlohmann::json::parse(core::read_file(manifest_path));
    if (m.at("format_version").get<int>() != kFormatVersion) {
      core::fail_data(manifest_path.string() + ": unsupported format_version " +
                      m.at("format_version").dump());
    }
    if (m.at("digest").get<std::string>() != digest) {
      core::fail_data(manifest_path.string() + ": names digest " + m.at("digest").dump() +
                      ", expected " + digest);
    }
    d.name = m.at("name").get<std::string>();
    d.channels = m.at("channels").get<int64_t>();
    d.height = m.at("height").get<int64_t>();
    d.width = m.at("width").get<int64_t>();
    d.classes = m.at("classes").get<std::vector<std::string>>();
    read_split(dir, "train", m.at("train_size").get<int64_t>(), d.image_bytes(), d.train);
    read_split(dir, "test", m.at("test_size").get<int64_t>(), d.image_bytes(), d.test);
  } catch (const nlohmann::json::exception& e) {
    core::fail_data(manifest_path.string() + ": invalid manifest: " + e.what());
  }
  finalize(d, dir.string());
  if (d.digest != digest) {
    core::fail_data("dataset '" + name + "' in " + dir.string() +
                    " does not match its digest: " + "expected " + digest + ", got " + d.digest +
                    " (remove " + dir.string() + " to fetch it again from " + store.url() + ")");
  }
  return d;
}

}  // namespace ddpipe::data
