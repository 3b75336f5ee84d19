#include "shards/ingest.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/random.h"
#include "shards/listing.h"
#include "shards/tar.h"

namespace ddpipe::shards {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// One shard to build: samples [begin, end) of a split.
struct Job {
  bool test = false;
  size_t begin = 0, end = 0;
  std::string id;  // "train/000007": its name in the progress object
};

std::string sample_key(bool test, size_t position) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%010zu", position);
  return std::string(test ? "test-" : "train-") + digits;
}

// Cuts a split into shards of about `target` tar bytes, by the samples' size hints.
void plan_split(const IngestSource& source, bool test, uint64_t target, std::vector<Job>& jobs) {
  const uint64_t cls_bytes = tar_member_bytes(10);
  const size_t n = source.size(test);
  size_t begin = 0, count = 0;
  uint64_t bytes = 0;
  auto cut = [&](size_t end) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%06zu", count++);
    jobs.push_back({test, begin, end, std::string(test ? "test/" : "train/") + digits});
    begin = end;
    bytes = 0;
  };
  for (size_t i = 0; i < n; ++i) {
    const uint64_t sample = tar_member_bytes(source.size_hint(test, i)) + cls_bytes;
    if (i > begin && bytes + sample > target) cut(i);
    bytes += sample;
  }
  if (begin < n) cut(n);
}

std::string plan_digest(const IngestSource& source, const IngestOptions& options) {
  core::Hasher h;
  source.hash_plan(h);
  h.update("shard_mb\t" + std::to_string(options.shard_mb) + "\n");
  // Skipping bad files makes other shards than failing on them would: another plan.
  if (options.bad_image == BadImagePolicy::kSkip) h.update("skip bad images\n");
  return h.hex_digest();
}

// The default ImageCheck: "jpg" or "png" from the magic bytes.
std::string magic_extension(std::string_view bytes, const std::string& what) {
  if (bytes.size() >= 3 && bytes.substr(0, 3) == "\xff\xd8\xff") return "jpg";
  if (bytes.size() >= 8 && bytes.substr(0, 8) == "\x89PNG\r\n\x1a\n") return "png";
  core::fail_data(what +
                  ": not a JPEG or PNG image (its first bytes are neither "
                  "FF D8 FF nor 89 'PNG')");
}

struct Built {
  std::string tar;
  int64_t samples = 0;
  int64_t skipped = 0;
  std::string first_key;
};

// Reads a sample and checks it; "" when the policy leaves it out.
std::string read_sample(const IngestSource& source, bool test, size_t i,
                        const IngestOptions& options, std::string& ext) {
  std::string bytes = source.read(test, i);
  const std::string what = source.what(test, i);
  try {
    ext = options.check_image ? options.check_image(bytes, what) : magic_extension(bytes, what);
    return bytes;
  } catch (const core::Error& e) {
    if (e.kind() != core::ErrorKind::kData) throw;
    if (options.bad_image == BadImagePolicy::kFail) {
      core::fail_data(std::string(e.what()) +
                      " (remove it, or set data.bad_images=skip to leave it out)");
    }
    core::log::warn("ingest", "skipping a bad image", {{"sample", what}, {"error", e.what()}});
  }
  ext.clear();
  return "";
}

Built build_shard(const Job& job, const IngestSource& source, const IngestOptions& options) {
  Built b;
  uint64_t estimate = 1024;
  for (size_t i = job.begin; i < job.end; ++i) {
    estimate += tar_member_bytes(source.size_hint(job.test, i)) + 1024;
  }
  b.tar.reserve(estimate);
  TarWriter tar(b.tar);
  for (size_t i = job.begin; i < job.end; ++i) {
    std::string ext;
    const std::string bytes = read_sample(source, job.test, i, options, ext);
    if (ext.empty()) {
      ++b.skipped;
      continue;
    }
    const std::string key = sample_key(job.test, i);
    tar.add(key + "." + ext, bytes);
    tar.add(key + ".cls", std::to_string(source.label(job.test, i)));
    if (b.samples++ == 0) b.first_key = key;
  }
  tar.finish();
  return b;
}

}  // namespace

namespace {

void check_options(const IngestOptions& options) {
  check_name(options.name);
  if (options.shard_mb < 1 || options.shard_mb > 65536) {
    core::fail_usage("data.shard_mb must be in [1, 65536], got " +
                     std::to_string(options.shard_mb));
  }
  if (options.channels != 1 && options.channels != 3) {
    core::fail_usage("data.channels must be 1 or 3 for a sharded dataset, got " +
                     std::to_string(options.channels));
  }
}

json shard_record(const ShardRef& r, int64_t skipped) {
  return {{"sha256", r.sha256},
          {"bytes", r.bytes},
          {"samples", r.samples},
          {"first_key", r.first_key},
          {"skipped", skipped}};
}

// One run of an ingest: the plan, the shards done, the workers.
class Ingest {
 public:
  Ingest(const IngestSource& source, const IngestOptions& options, storage::Store& store);
  IngestReport run();

 private:
  void resume_from_progress();
  void work();
  void build(size_t j);
  void record(size_t j, const ShardRef& ref, int64_t skipped);
  void save_progress(double now);  // mu_ held
  DatasetIndex make_index() const;

  const IngestSource& source_;
  const IngestOptions& options_;
  storage::Store& store_;
  std::vector<Job> jobs_;
  std::string plan_;
  std::string progress_key_;
  json progress_;
  std::vector<std::optional<ShardRef>> done_;  // per job
  std::vector<size_t> todo_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex mu_;  // guards progress_, done_, error_, report_, bar_
  std::exception_ptr error_;
  IngestReport report_;
  std::unique_ptr<core::ProgressBar> bar_;
  int64_t finished_ = 0;
  uint64_t bytes_ = 0;    // of the shards built by this run
  bool unsaved_ = false;  // shards recorded in progress_ but not yet in the store
  double started_at_ = 0, saved_at_ = 0, logged_at_ = 0;
};

Ingest::Ingest(const IngestSource& source, const IngestOptions& options, storage::Store& store)
    : source_(source), options_(options), store_(store) {
  check_options(options);
  const uint64_t target = static_cast<uint64_t>(options.shard_mb) * kMiB;
  plan_split(source, false, target, jobs_);
  plan_split(source, true, target, jobs_);
  plan_ = plan_digest(source, options);
  progress_key_ = progress_key(options.name, plan_);
  done_.resize(jobs_.size());
  report_.name = options.name;
}

void Ingest::resume_from_progress() {
  progress_ = {{"plan", plan_},
               {"name", options_.name},
               {"source", source_.origin()},
               {"shard_mb", options_.shard_mb},
               {"shards", json::object()}};
  const auto text = store_.try_get(progress_key_);
  json previous;
  if (text) previous = json::parse(*text, nullptr, false);
  if (text && (previous.is_discarded() || !previous.contains("shards"))) {
    core::log::warn("ingest", "ignoring an unreadable progress object", {{"key", progress_key_}});
  }
  std::set<std::string> stored;
  for (const auto& o : store_.list("datasets/" + options_.name + "/shards/")) stored.insert(o.key);
  for (size_t j = 0; j < jobs_.size(); ++j) {
    const json* r = nullptr;
    if (previous.is_object() && previous.contains("shards") && previous["shards"].is_object() &&
        previous["shards"].contains(jobs_[j].id)) {
      r = &previous["shards"][jobs_[j].id];
    }
    if (!r || !r->is_object()) {
      todo_.push_back(j);
      continue;
    }
    ShardRef ref;
    try {
      ref = {"", r->value("sha256", ""), r->value("bytes", uint64_t{0}),
             r->value("samples", int64_t{0}), r->value("first_key", "")};
    } catch (const json::exception&) {
      ref.samples = -1;  // mistyped: garbled
    }
    if (is_sha256_hex(ref.sha256)) ref.key = shard_key(options_.name, ref.sha256);
    if (ref.samples < 0 || (ref.samples > 0 && (ref.key.empty() || !stored.count(ref.key)))) {
      todo_.push_back(j);  // recorded, but gone from the store (or garbled): build it again
      continue;
    }
    done_[j] = ref;
    progress_["shards"][jobs_[j].id] = *r;
    ++report_.shards_resumed;
    report_.skipped_files += r->contains("skipped") && (*r)["skipped"].is_number_integer()
                                 ? (*r)["skipped"].get<int64_t>()
                                 : 0;
  }
}

void Ingest::build(size_t j) {
  const Job& job = jobs_[j];
  Built b = build_shard(job, source_, options_);
  ShardRef ref;
  ref.samples = b.samples;
  ref.first_key = b.first_key;
  if (b.samples > 0) {  // a shard whose every file was skipped is not stored
    ref.sha256 = core::sha256_hex(b.tar);
    ref.key = shard_key(options_.name, ref.sha256);
    ref.bytes = b.tar.size();
    // Content-addressed: a shard already in the pool (another ingest's) is not put again.
    if (!store_.exists(ref.key)) store_.put(ref.key, b.tar);
  }
  record(j, ref, b.skipped);
  if (options_.after_shard) options_.after_shard(ref);
}

void Ingest::record(size_t j, const ShardRef& ref, int64_t skipped) {
  std::lock_guard<std::mutex> lock(mu_);
  done_[j] = ref;
  progress_["shards"][jobs_[j].id] = shard_record(ref, skipped);
  unsaved_ = true;
  const double now = core::monotonic_seconds();
  if (now - saved_at_ >= options_.progress_interval_s) save_progress(now);
  ++report_.shards_built;
  report_.skipped_files += skipped;
  bytes_ += ref.bytes;
  ++finished_;
  bar_->update(finished_, jobs_[j].id);
  core::log::debug("ingest", "shard " + jobs_[j].id + " stored as " + ref.key);
  if (options_.show_progress && core::log::json() && now - logged_at_ >= 30) {
    logged_at_ = now;
    core::log::info("ingest", "progress",
                    {{"shards_done", finished_},
                     {"shards", jobs_.size()},
                     {"mb_per_s", static_cast<double>(bytes_) / kMiB / (now - started_at_)}});
  }
}

void Ingest::save_progress(double now) {
  store_.put(progress_key_, progress_.dump(1) + "\n");
  unsaved_ = false;
  saved_at_ = now;
}

void Ingest::work() {
  while (!failed_) {
    const size_t t = next_++;
    if (t >= todo_.size()) return;
    try {
      build(todo_[t]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      failed_ = true;
    }
  }
}

DatasetIndex Ingest::make_index() const {
  DatasetIndex index;
  index.name = options_.name;
  index.classes = source_.classes();
  index.channels = options_.channels;
  index.shard_mb = options_.shard_mb;
  index.source = source_.description();
  for (size_t j = 0; j < jobs_.size(); ++j) {
    const ShardRef& ref = *done_[j];
    if (ref.samples == 0) continue;
    SplitIndex& split = jobs_[j].test ? index.test : index.train;
    split.samples += ref.samples;
    split.shards.push_back(ref);
  }
  if (index.train.samples == 0) {
    core::fail_data(source_.origin() + ": no JPEG or PNG image in the train split");
  }
  return index;
}

IngestReport Ingest::run() {
  resume_from_progress();
  core::log::info("ingest", "sharding",
                  {{"source", source_.origin()},
                   {"name", options_.name},
                   {"train", source_.size(false)},
                   {"test", source_.size(true)},
                   {"shards", jobs_.size()},
                   {"resumed", report_.shards_resumed},
                   {"plan", plan_}});
  bar_ = std::make_unique<core::ProgressBar>("ingest", static_cast<int64_t>(jobs_.size()),
                                             options_.show_progress);
  finished_ = report_.shards_resumed;
  started_at_ = saved_at_ = logged_at_ = core::monotonic_seconds();
  const unsigned cores = std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 8);
  const size_t workers = std::min<size_t>(options_.workers > 0 ? options_.workers : cores,
                                          std::max<size_t>(todo_.size(), 1));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) pool.emplace_back([this] { work(); });
  work();
  for (auto& t : pool) t.join();
  bar_->finish();
  if (unsaved_) {
    try {
      save_progress(core::monotonic_seconds());
    } catch (...) {
      if (!error_) throw;  // else the first error is the one to report
    }
  }
  if (error_) std::rethrow_exception(error_);

  DatasetIndex index = make_index();
  report_.already_present = !write_index(store_, index);
  report_.digest = index.digest;
  report_.index_key = index_key(index.name, index.digest);
  report_.train_samples = index.train.samples;
  report_.test_samples = index.test.samples;
  report_.shards = static_cast<int64_t>(index.train.shards.size() + index.test.shards.size());
  return report_;
}

FolderListing shuffled_listing(const IngestOptions& options) {
  FolderListing listing = list_image_folder(options.root, options.test_fraction, options.seed);
  shuffle_for_shards(listing, options.seed);
  return listing;
}

// An image folder's files, in the order shuffle_for_shards gives them.
class FolderSource : public IngestSource {
 public:
  explicit FolderSource(const IngestOptions& options)
      : options_(options), listing_(shuffled_listing(options)) {}

  std::string origin() const override { return "image folder " + options_.root.string(); }
  const std::vector<std::string>& classes() const override { return listing_.classes; }
  size_t size(bool test) const override { return entries(test).size(); }
  std::string what(bool test, size_t i) const override { return entry(test, i).path.string(); }
  int32_t label(bool test, size_t i) const override { return entry(test, i).label; }
  uint64_t size_hint(bool test, size_t i) const override { return entry(test, i).size; }

  std::string read(bool test, size_t i) const override {
    const FolderEntry& e = entry(test, i);
    std::string bytes = read_entry(listing_, e);
    if (bytes.size() != e.size) {
      core::fail_data(e.path.string() + ": " + std::to_string(bytes.size()) + " bytes, " +
                      std::to_string(e.size) +
                      " when the folder was listed: it changed during "
                      "the ingest (run it again once the folder is stable)");
    }
    return bytes;
  }

  void hash_plan(core::Hasher& h) const override {
    for (bool test : {false, true}) {
      for (const FolderEntry& e : entries(test)) {
        h.update((test ? "test\t" : "train\t") + std::to_string(e.label) + "\t" +
                 std::to_string(e.size) + "\t" + std::to_string(e.mtime_ns) + "\t" +
                 e.path.string() + "\n");
      }
    }
  }

  json description() const override {
    json d = {{"format", "image-folder"},
              {"split", listing_.presplit ? "train/ and test/ folders" : "seeded"}};
    if (!listing_.presplit) {
      d["test_fraction"] = options_.test_fraction;
      d["seed"] = options_.seed;
    }
    return d;
  }

 private:
  const std::vector<FolderEntry>& entries(bool test) const {
    return test ? listing_.test : listing_.train;
  }
  const FolderEntry& entry(bool test, size_t i) const { return entries(test)[i]; }

  const IngestOptions& options_;
  const FolderListing listing_;
};

}  // namespace

void shuffle_for_shards(FolderListing& listing, uint64_t seed) {
  for (auto* split : {&listing.train, &listing.test}) {
    const std::string name = split == &listing.test ? "test" : "train";
    std::mt19937_64 rng(core::splitmix64(seed ^ core::fnv1a("shard order " + name)));
    for (size_t i = split->size(); i > 1; --i)
      std::swap((*split)[i - 1], (*split)[core::uniform_below(rng, i)]);
  }
}

BadImagePolicy parse_bad_image_policy(const std::string& value) {
  if (value == "fail") return BadImagePolicy::kFail;
  if (value == "skip") return BadImagePolicy::kSkip;
  core::fail_usage("data.bad_images: expected fail or skip, got '" + value + "'");
}

IngestReport ingest_samples(const IngestSource& source, const IngestOptions& options,
                            storage::Store& store) {
  Ingest ingest(source, options, store);
  IngestReport r = ingest.run();
  core::log::info(
      "ingest",
      r.already_present ? "sharded dataset already in the store" : "sharded dataset stored",
      {{"name", r.name},
       {"digest", r.digest},
       {"train", r.train_samples},
       {"test", r.test_samples},
       {"shards", r.shards},
       {"built", r.shards_built},
       {"resumed", r.shards_resumed},
       {"skipped_files", r.skipped_files},
       {"store", store.url()}});
  return r;
}

IngestReport ingest_image_folder(const IngestOptions& options, storage::Store& store) {
  check_options(options);  // before the listing, which may take long
  const FolderSource source(options);
  return ingest_samples(source, options, store);
}

}  // namespace ddpipe::shards
