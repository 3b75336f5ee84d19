#include "data/shard_source.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/image.h"
#include "data/stream_order.h"
#include "shards/tar.h"

namespace ddpipe::data {

std::vector<float> sharded_mean(int64_t channels) {
  if (channels == 1) return {0.449f};
  return {0.485f, 0.456f, 0.406f};
}

std::vector<float> sharded_std(int64_t channels) {
  if (channels == 1) return {0.226f};
  return {0.229f, 0.224f, 0.225f};
}

namespace {

std::vector<int64_t> counts_of(const shards::SplitIndex& split) {
  std::vector<int64_t> counts;
  for (const auto& s : split.shards) counts.push_back(s.samples);
  return counts;
}

// One sample of a shard: the members that share a key, adjacent in the archive (WebDataset's
// grouping: the key is the name up to the first '.' of its last path part).
struct Grouped {
  std::string key;
  const shards::TarMember* image = nullptr;  // .jpg, .jpeg or .png
  const shards::TarMember* cls = nullptr;
};

// The samples of a shard in archive order: the k-th is the shard's k-th position (keys are
// names; an ingest that left a bad image out left a gap in their numbers).
std::vector<Grouped> group_samples(const std::vector<shards::TarMember>& members) {
  std::vector<Grouped> samples;
  for (const auto& m : members) {
    const size_t slash = m.name.rfind('/');
    const size_t dot = m.name.find('.', slash == std::string::npos ? 0 : slash + 1);
    const std::string key = m.name.substr(0, dot);
    const std::string ext = dot == std::string::npos ? "" : m.name.substr(dot + 1);
    if (samples.empty() || samples.back().key != key) samples.push_back({key});
    if (ext == "cls") samples.back().cls = &m;
    if (ext == "jpg" || ext == "jpeg" || ext == "png") samples.back().image = &m;
  }
  return samples;
}

int64_t parse_label(const std::string& text, const std::string& what) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) {
    core::fail_data(what + ": class '" + text.substr(0, 20) + "' is not a class index");
  }
  return std::stoll(t);
}

// The bytes of a shard fetched through the cache. Another process sharing the folder (or this
// one's prefetch) may evict the file between fetch() and open() when the cache holds fewer
// shards than the node's ranks need at once: it is fetched again, up to 5 times.
std::string read_fetched(shards::ShardCache& cache, const shards::ShardRef& ref) {
  for (int attempt = 1;; ++attempt) {
    const std::filesystem::path path = cache.fetch(ref);
    std::ifstream in(path, std::ios::binary);
    if (in) return std::string(std::istreambuf_iterator<char>(in), {});
    if (attempt == 5) {
      core::fail_storage("shard " + ref.key + " was evicted from " + cache.folder().string() +
                         " before it could be read, 5 times: data.cache_gb holds too few shards "
                         "for the ranks of this node (keep several per rank)");
    }
  }
}

}  // namespace

ShardSource::ShardSource(shards::ShardCache& cache, const shards::SplitIndex& split,
                         const std::vector<int64_t>& plan, const std::vector<int64_t>& batch_sizes,
                         ShardSourceOptions options)
    : cache_(cache),
      split_(split),
      options_(std::move(options)),
      skipped_(options_.skipped ? options_.skipped : std::make_shared<SkippedImages>()) {
  const std::vector<int64_t> counts = counts_of(split);
  starts_ = shard_starts(counts);
  for (int64_t p : plan) {
    if (p < 0 || p >= starts_.back()) {
      core::fail_usage("shard source: position " + std::to_string(p) + " is outside the " +
                       options_.split_name + " split (" + std::to_string(starts_.back()) +
                       " samples)");
    }
    ++uses_left_[p];
  }
  const ShardSchedule schedule = shard_schedule(plan, batch_sizes, 0, counts);
  rank_in_order_.assign(counts.size(), -1);
  for (const auto& use : schedule.shards) {
    rank_in_order_[static_cast<size_t>(use.shard)] = static_cast<int64_t>(order_.size());
    order_.push_back(use.shard);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!order_.empty()) prefetch_after(order_.front());
}

// Queues the shards up to prefetch_shards past `shard` in first-use order (mu_ held).
void ShardSource::prefetch_after(int64_t shard) {
  const int64_t place = rank_in_order_[static_cast<size_t>(shard)];
  const int64_t until =
      std::min<int64_t>(static_cast<int64_t>(order_.size()), place + 1 + options_.prefetch_shards);
  std::vector<shards::ShardRef> queue;
  for (; prefetched_until_ < until; ++prefetched_until_) {
    const int64_t s = order_[static_cast<size_t>(prefetched_until_)];
    if (s != shard && read_.count(s) == 0) queue.push_back(split_.shards[static_cast<size_t>(s)]);
  }
  if (!queue.empty()) cache_.prefetch(queue);
}

// Fetches shard `shard` (mu_ not held), scans it once and keeps the planned samples' bytes.
void ShardSource::read_shard(int64_t shard) {
  const shards::ShardRef& ref = split_.shards[static_cast<size_t>(shard)];
  std::set<int64_t> wanted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t p = starts_[static_cast<size_t>(shard)];
         p < starts_[static_cast<size_t>(shard) + 1]; ++p) {
      if (uses_left_.count(p)) wanted.insert(p);
    }
    prefetch_after(shard);
  }
  const std::string tar = read_fetched(cache_, ref);
  const auto members = shards::scan_tar(tar, ref.key);
  const std::vector<Grouped> samples = group_samples(members);
  if (static_cast<int64_t>(samples.size()) != ref.samples ||
      (!samples.empty() && samples.front().key != ref.first_key)) {
    core::fail_data("shard " + ref.key + " holds " + std::to_string(samples.size()) +
                    " samples from '" + (samples.empty() ? "" : samples.front().key) +
                    "', the index says " + std::to_string(ref.samples) + " from '" + ref.first_key +
                    "': ingest the dataset again");
  }
  std::map<int64_t, Sample> got;
  for (int64_t p : wanted) {
    const Grouped& g = samples[static_cast<size_t>(p - starts_[static_cast<size_t>(shard)])];
    if (!g.image || !g.cls) {
      core::fail_data("shard " + ref.key + " lacks the " + (g.image ? "class" : "image") +
                      " of sample " + g.key +
                      " (the index says it holds it): ingest the dataset "
                      "again");
    }
    got[p] = {tar.substr(g.image->offset, g.image->size),
              parse_label(tar.substr(g.cls->offset, g.cls->size),
                          "shard " + ref.key + ", member " + g.cls->name),
              g.key};
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [p, sample] : got) {
    held_bytes_ += sample.bytes.size();
    held_[p] = std::move(sample);
  }
  peak_held_bytes_ = std::max(peak_held_bytes_, held_bytes_);
}

ShardSource::Sample ShardSource::take(int64_t index) {
  std::unique_lock<std::mutex> lock(mu_);
  auto uses = uses_left_.find(index);
  if (uses == uses_left_.end() || uses->second <= 0) {
    core::fail_usage("shard source: position " + std::to_string(index) + " of the " +
                     options_.split_name + " split is not (or no more) in the plan");
  }
  const int64_t shard = shard_of(starts_, index);
  while (read_.count(shard) == 0) {
    if (reading_.count(shard)) {
      read_cv_.wait(lock);
      continue;
    }
    reading_.insert(shard);
    lock.unlock();
    try {
      read_shard(shard);
    } catch (...) {
      lock.lock();
      reading_.erase(shard);
      read_cv_.notify_all();
      throw;
    }
    lock.lock();
    reading_.erase(shard);
    read_.insert(shard);
    read_cv_.notify_all();
  }
  auto it = held_.find(index);
  if (it == held_.end()) {
    core::fail_usage("shard source: position " + std::to_string(index) + " lost");
  }
  Sample t;
  t.label = it->second.label;
  t.key = it->second.key;
  if (--uses->second > 0) {
    t.bytes = it->second.bytes;
    return t;
  }
  t.bytes = std::move(it->second.bytes);
  held_bytes_ -= t.bytes.size();
  held_.erase(it);
  uses_left_.erase(uses);
  return t;
}

int64_t ShardSource::produce(int64_t /*position*/, int64_t index, float* out) {
  Sample t = take(index);
  const std::string what = "shard " +
                           split_.shards[static_cast<size_t>(shard_of(starts_, index))].key +
                           ", sample " + t.key;
  Image image;
  try {
    image = decode_image(t.bytes, what);
  } catch (const core::Error& e) {
    std::string msg = e.what();
    if (msg.find(what) == std::string::npos) msg = what + ": " + msg;
    if (options_.bad_images == shards::BadImagePolicy::kFail) {
      core::fail_data(msg + " (set data.bad_images=skip to leave such images out)");
    }
    skipped_->left_out(what, msg);
    return kLeftOut;
  }
  const std::vector<uint8_t> chw = to_chw(image, options_.channels, image.height, image.width);
  const ImageView view{chw.data(), options_.channels, image.height, image.width};
  if (options_.train) {
    random_resized_crop(view, options_.crop, options_.seed, options_.epoch, index, out);
  } else {
    resize_center_crop(view, options_.crop, out);
  }
  return t.label;
}

void SkippedImages::left_out(const std::string& what, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  ++count_;
  if (!warned_.insert(what).second) return;
  core::log::warn("data", "leaving out an image that does not decode (data.bad_images=skip)",
                  {{"sample", what}, {"error", error}});
}

int64_t SkippedImages::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

uint64_t ShardSource::held_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_bytes_;
}

uint64_t ShardSource::peak_held_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_held_bytes_;
}

int64_t ShardSource::shards_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(read_.size());
}

namespace {

Dataset header_of(const shards::DatasetIndex& index, int64_t image_size) {
  Dataset d;
  d.name = index.name;
  d.digest = index.digest;
  d.classes = index.classes;
  d.channels = index.channels;
  d.height = d.width = image_size;
  for (float m : sharded_mean(index.channels)) d.mean.push_back(m);
  for (float s : sharded_std(index.channels)) d.std.push_back(s);
  return d;
}

}  // namespace

ShardedDataset::ShardedDataset(storage::Store& store, const std::string& name,
                               const std::string& digest, Options options)
    : index_(shards::read_index(store, name, digest)),
      options_(std::move(options)),
      header_(header_of(index_, options_.image_size)),
      cache_(store, options_.cache_dir, options_.cache_bytes) {}

std::vector<int64_t> ShardedDataset::shard_samples(bool train) const {
  return counts_of(split(train));
}

std::unique_ptr<ShardSource> ShardedDataset::source(bool train, const std::vector<int64_t>& plan,
                                                    const std::vector<int64_t>& batch_sizes,
                                                    uint64_t seed, int64_t epoch) {
  return make_source(train, train, plan, batch_sizes, seed, epoch);
}

std::unique_ptr<ShardSource> ShardedDataset::evaluation_source(
    bool train, const std::vector<int64_t>& plan, const std::vector<int64_t>& batch_sizes) {
  return make_source(train, false, plan, batch_sizes, 0, 0);
}

std::unique_ptr<ShardSource> ShardedDataset::make_source(bool train_split, bool augment,
                                                         const std::vector<int64_t>& plan,
                                                         const std::vector<int64_t>& batch_sizes,
                                                         uint64_t seed, int64_t epoch) {
  ShardSourceOptions o;
  o.split_name = train_split ? "train" : "test";
  o.channels = index_.channels;
  o.crop.size = options_.image_size;
  o.crop.normalize = options_.normalize;
  o.crop.horizontal_flip = options_.horizontal_flip;
  o.crop.scale_min = options_.crop_scale_min;
  o.crop.mean = sharded_mean(index_.channels);
  o.crop.std = sharded_std(index_.channels);
  o.train = augment;
  o.seed = seed;
  o.epoch = epoch;
  o.bad_images = options_.bad_images;
  o.skipped = skipped_;
  return std::make_unique<ShardSource>(cache_, split(train_split), plan, batch_sizes, o);
}

ShardedDataset::Options sharded_options(const core::Config& config) {
  ShardedDataset::Options o;
  o.cache_dir = core::expand_user(config.cache_dir);
  o.cache_bytes = static_cast<uint64_t>(config.data.cache_gb * 1024.0 * 1024.0 * 1024.0);
  o.image_size = config.features.image_size;
  o.normalize = config.features.normalize;
  o.horizontal_flip = config.features.horizontal_flip;
  o.crop_scale_min = config.features.crop_scale_min;
  o.bad_images = shards::parse_bad_image_policy(config.data.bad_images);
  return o;
}

}  // namespace ddpipe::data
