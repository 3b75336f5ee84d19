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

// Cuts a split into shards of about `target` tar bytes, by the listed file sizes.
void plan_split(const std::vector<FolderEntry>& entries, bool test, uint64_t target,
                std::vector<Job>& jobs) {
  const uint64_t cls_bytes = tar_member_bytes(10);
  size_t begin = 0, count = 0;
  uint64_t bytes = 0;
  auto cut = [&](size_t end) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%06zu", count++);
    jobs.push_back({test, begin, end, std::string(test ? "test/" : "train/") + digits});
    begin = end;
    bytes = 0;
  };
  for (size_t i = 0; i < entries.size(); ++i) {
    const uint64_t sample = tar_member_bytes(entries[i].size) + cls_bytes;
    if (i > begin && bytes + sample > target) cut(i);
    bytes += sample;
  }
  if (begin < entries.size()) cut(entries.size());
}

std::string plan_digest(const FolderListing& l, const IngestOptions& options) {
  core::Hasher h;
  for (const auto* split : {&l.train, &l.test}) {
    for (const FolderEntry& e : *split) {
      h.update((split == &l.test ? "test\t" : "train\t") + std::to_string(e.label) + "\t" +
               std::to_string(e.size) + "\t" + std::to_string(e.mtime_ns) + "\t" + e.path.string() +
               "\n");
    }
  }
  h.update("shard_mb\t" + std::to_string(options.shard_mb) + "\n");
  // Skipping bad files makes other shards than failing on them would: another plan.
  if (options.bad_image == IngestOptions::BadImage::kSkip) h.update("skip bad images\n");
  return h.hex_digest();
}

// "jpg" or "png" from the magic bytes, "" for anything else.
std::string image_extension(std::string_view bytes) {
  if (bytes.size() >= 3 && bytes.substr(0, 3) == "\xff\xd8\xff") return "jpg";
  if (bytes.size() >= 8 && bytes.substr(0, 8) == "\x89PNG\r\n\x1a\n") return "png";
  return "";
}

struct Built {
  std::string tar;
  int64_t samples = 0;
  int64_t skipped = 0;
  std::string first_key;
};

// Reads a sample's file, checks it is the listed one and an image; "" when skipped.
std::string read_sample(const FolderListing& listing, const FolderEntry& e,
                        IngestOptions::BadImage policy, std::string& ext) {
  std::string bytes = read_entry(listing, e);
  if (bytes.size() != e.size) {
    core::fail_data(e.path.string() + ": " + std::to_string(bytes.size()) + " bytes, " +
                    std::to_string(e.size) +
                    " when the folder was listed: it changed during "
                    "the ingest (run it again once the folder is stable)");
  }
  ext = image_extension(bytes);
  if (!ext.empty()) return bytes;
  if (policy == IngestOptions::BadImage::kFail) {
    core::fail_data(e.path.string() +
                    ": not a JPEG or PNG image (its first bytes are neither "
                    "FF D8 FF nor 89 'PNG'); remove it from the folder");
  }
  core::log::warn("ingest", "skipping a file that is not a JPEG or PNG image",
                  {{"path", e.path.string()}});
  return "";
}

Built build_shard(const Job& job, const FolderListing& listing, const IngestOptions& options) {
  const std::vector<FolderEntry>& entries = job.test ? listing.test : listing.train;
  Built b;
  uint64_t estimate = 1024;
  for (size_t i = job.begin; i < job.end; ++i) estimate += tar_member_bytes(entries[i].size) + 1024;
  b.tar.reserve(estimate);
  TarWriter tar(b.tar);
  for (size_t i = job.begin; i < job.end; ++i) {
    std::string ext;
    const std::string bytes = read_sample(listing, entries[i], options.bad_image, ext);
    if (ext.empty()) {
      ++b.skipped;
      continue;
    }
    const std::string key = sample_key(job.test, i);
    tar.add(key + "." + ext, bytes);
    tar.add(key + ".cls", std::to_string(entries[i].label));
    if (b.samples++ == 0) b.first_key = key;
  }
  tar.finish();
  return b;
}

}  // namespace

namespace {

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
  Ingest(const IngestOptions& options, storage::Store& store);
  IngestReport run();

 private:
  void resume_from_progress();
  void work();
  void build(size_t j);
  void record(size_t j, const ShardRef& ref, int64_t skipped);
  void save_progress(double now);  // mu_ held
  DatasetIndex make_index() const;

  const IngestOptions& options_;
  storage::Store& store_;
  FolderListing listing_;
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

Ingest::Ingest(const IngestOptions& options, storage::Store& store)
    : options_(options), store_(store) {
  check_name(options.name);
  if (options.shard_mb < 1 || options.shard_mb > 65536) {
    core::fail_usage("data.shard_mb must be in [1, 65536], got " +
                     std::to_string(options.shard_mb));
  }
  if (options.channels != 1 && options.channels != 3) {
    core::fail_usage("data.channels must be 1 or 3 for a sharded dataset, got " +
                     std::to_string(options.channels));
  }
  listing_ = list_image_folder(options.root, options.test_fraction, options.seed);
  shuffle_for_shards(listing_, options.seed);
  const uint64_t target = static_cast<uint64_t>(options.shard_mb) * kMiB;
  plan_split(listing_.train, false, target, jobs_);
  plan_split(listing_.test, true, target, jobs_);
  plan_ = plan_digest(listing_, options);
  progress_key_ = progress_key(options.name, plan_);
  done_.resize(jobs_.size());
  report_.name = options.name;
}

void Ingest::resume_from_progress() {
  progress_ = {{"plan", plan_},
               {"name", options_.name},
               {"path", options_.root.string()},
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
  Built b = build_shard(job, listing_, options_);
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
  index.classes = listing_.classes;
  index.channels = options_.channels;
  index.shard_mb = options_.shard_mb;
  index.source = {{"format", "image-folder"},
                  {"split", listing_.presplit ? "train/ and test/ folders" : "seeded"}};
  if (!listing_.presplit) {
    index.source["test_fraction"] = options_.test_fraction;
    index.source["seed"] = options_.seed;
  }
  for (size_t j = 0; j < jobs_.size(); ++j) {
    const ShardRef& ref = *done_[j];
    if (ref.samples == 0) continue;
    SplitIndex& split = jobs_[j].test ? index.test : index.train;
    split.samples += ref.samples;
    split.shards.push_back(ref);
  }
  if (index.train.samples == 0) {
    core::fail_data("image folder " + options_.root.string() +
                    ": no JPEG or PNG image in the train split");
  }
  return index;
}

IngestReport Ingest::run() {
  resume_from_progress();
  core::log::info("ingest", "sharding an image folder",
                  {{"path", options_.root.string()},
                   {"name", options_.name},
                   {"train", listing_.train.size()},
                   {"test", listing_.test.size()},
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

}  // namespace

void shuffle_for_shards(FolderListing& listing, uint64_t seed) {
  for (auto* split : {&listing.train, &listing.test}) {
    const std::string name = split == &listing.test ? "test" : "train";
    std::mt19937_64 rng(core::splitmix64(seed ^ core::fnv1a("shard order " + name)));
    for (size_t i = split->size(); i > 1; --i)
      std::swap((*split)[i - 1], (*split)[core::uniform_below(rng, i)]);
  }
}

IngestReport ingest_image_folder(const IngestOptions& options, storage::Store& store) {
  Ingest ingest(options, store);
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

}  // namespace ddpipe::shards
