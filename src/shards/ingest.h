// ddpipe::shards — streaming ingest into the sharded form: of an image folder of any size, or of
// any other source of encoded samples (data::ingest_sharded re-encodes the in-memory formats).
//
// The samples of each split are cut, in sample order, into shards of about shard_mb MiB of tar
// (at least one sample each; the cut depends on the samples' size hints only). An image
// folder's sample order is a seeded random order of its listing (shards/listing.h: the rules of
// the in-memory image-folder reader; shuffle_for_shards: a shard holds a random mix of its
// split, whatever the folder's order — ImageNet's is by class). A shard is a
// WebDataset tar (shards/tar.h) whose samples are two adjacent members: "<key>.jpg" or
// "<key>.png" — the encoded bytes as they are, whatever the image size, the extension from
// their magic bytes — and "<key>.cls", the class index as decimal text. Keys are
// "<split>-<position in the source's split, 10 digits>", so they are unique, and sorted in
// sample order within and across shards. Before a sample is stored, IngestOptions::check_image
// looks at it; a sample it refuses fails the ingest naming it, or is left out by the bad-image
// policy, leaving its key's number unused (readers take a shard's k-th key group as its k-th
// sample, as WebDataset does).
//
// `workers` threads build shards and put them into the pool (datasets/<name>/shards/<sha256>
// .tar, not put again when present); memory stays about workers × shard_mb. The progress
// object datasets/<name>/ingest/<plan digest>.json records the finished shards (plan digest:
// SHA-256 of what the source's shards depend on — for a folder the listing: path, size, mtime,
// label, split of every file —, shard_mb and the bad-image policy).
// A rerun of the same plan after a crash builds only the shards not recorded or not in the
// store. The index (shards/index.h) is written last, then datasets/<name>/latest. The same
// samples give the same shards and the same digest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash.h"
#include "shards/index.h"
#include "shards/listing.h"
#include "storage/store.h"

namespace ddpipe::shards {

// What becomes of a bad image (data.bad_images): kFail stops the ingest (or the training run)
// with an error naming it; kSkip leaves the sample out with a warning naming it, and counts it.
enum class BadImagePolicy { kFail, kSkip };
// "fail" → kFail, "skip" → kSkip; core::Error(kUsage) naming data.bad_images otherwise.
BadImagePolicy parse_bad_image_policy(const std::string& value);

// Looks at a sample's encoded bytes before they are stored: returns the member's extension
// ("jpg" or "png"), or throws core::Error(kData) naming `what` for bytes that are not an image
// it accepts. data::image_member_extension (data/image.h: the magic bytes and a header that
// parses) is the one the commands use.
using ImageCheck = std::function<std::string(std::string_view bytes, const std::string& what)>;

struct IngestOptions {
  std::filesystem::path root;  // ingest_image_folder: the image folder
  std::string name;            // the dataset's name in the store
  int64_t channels = 3;        // recorded in the index: how training decodes the images
  double test_fraction = 0.2;  // ingest_image_folder, without train/ and test/
  uint64_t seed = 0;           // ingest_image_folder: of the seeded split
  int64_t shard_mb = 128;      // target shard size in MiB (1 to 65536)
  int workers = 0;             // threads building shards; 0: the cores, at most 8
  // A sample check_image refuses: an error (kFail) or left out with a warning (kSkip; its key is
  // then unused).
  BadImagePolicy bad_image = BadImagePolicy::kFail;
  // Empty: the magic bytes only (a JPEG's FF D8 FF, a PNG's signature).
  ImageCheck check_image;
  // The progress object is put at most this often (and when the run ends, even by an error):
  // a kill loses the record of the shards of the last interval, which a rerun builds again but
  // does not put again (they are in the pool). 0: after every shard. A put rewrites the whole
  // object, so a short interval costs O(shards²) bytes on a huge ingest.
  double progress_interval_s = 10;
  // core::ProgressBar on a terminal; elsewhere a log line every 30 s (shards done, MB/s).
  bool show_progress = true;
  // Test hook: called on a worker after each shard is recorded in the progress object. A throw
  // stops the ingest as a crash would (the exception is rethrown by the ingest function).
  std::function<void(const ShardRef&)> after_shard;
};

// The samples of an ingest, in sample order: an image folder's files (ingest_image_folder) or a
// dataset in memory re-encoded (data::ingest_sharded). Called from the ingest's worker threads
// concurrently: implementations must be thread-safe.
class IngestSource {
 public:
  virtual ~IngestSource() = default;
  // What names the whole input in messages and in the progress object ("image folder DIR").
  virtual std::string origin() const = 0;
  virtual const std::vector<std::string>& classes() const = 0;
  virtual size_t size(bool test) const = 0;
  // Sample i of a split: what names it in messages (a path or a position), its class index and
  // a deterministic estimate of its encoded size, by which the shards are cut before anything
  // is read.
  virtual std::string what(bool test, size_t i) const = 0;
  virtual int32_t label(bool test, size_t i) const = 0;
  virtual uint64_t size_hint(bool test, size_t i) const = 0;
  // Its encoded bytes. Throws core::Error(kData) naming it when they cannot be had.
  virtual std::string read(bool test, size_t i) const = 0;
  // Adds to the plan digest everything the shards depend on besides the options (a listing
  // with sizes and times, or a content digest): a changed input is another plan.
  virtual void hash_plan(core::Hasher& hasher) const = 0;
  // The index's "source": how the samples were chosen, from content, never paths.
  virtual nlohmann::json description() const = 0;
};

struct IngestReport {
  std::string name;
  std::string digest;
  std::string index_key;
  bool already_present = false;  // the index was already in the store
  int64_t train_samples = 0;
  int64_t test_samples = 0;
  int64_t shards = 0;          // in the index
  int64_t shards_built = 0;    // built by this run
  int64_t shards_resumed = 0;  // recorded by an earlier run and present: not built again
  int64_t skipped_files = 0;   // left out by BadImagePolicy::kSkip
};

// The order the ingest writes an image folder's splits in: a Fisher–Yates shuffle of the
// listing's order with mt19937_64 seeded by splitmix64(seed ^ fnv1a("shard order train")) (or
// "… test"). Sample position p of a split (its key "<split>-<p>") is listing.<split>[p] after
// this.
void shuffle_for_shards(FolderListing& listing, uint64_t seed);

// Shards `source` (options.root, test_fraction and seed are not used). Throws core::Error:
// kUsage for bad options, kData naming the sample for one check_image refuses (kFail) and
// from the source, kData when no train sample is left, kStorage from the store.
// Thread-safe with respect to other ingests of other plans; two runs of the same plan at once
// are safe (puts are atomic, shards content-addressed) but do the work twice.
IngestReport ingest_samples(const IngestSource& source, const IngestOptions& options,
                            storage::Store& store);

// The folder (or archive) options.root, listed by shards/listing.h and put in the order of
// shuffle_for_shards; a sample's bytes are its file's. As
// ingest_samples, and kData naming the file for an unreadable one or one that changed since it
// was listed.
IngestReport ingest_image_folder(const IngestOptions& options, storage::Store& store);

}  // namespace ddpipe::shards
