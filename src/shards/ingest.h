// ddpipe::shards — streaming ingest of an image folder of any size into the sharded form.
//
// The folder is listed (shards/listing.h: the rules of the in-memory image-folder reader), each
// split is put in a seeded random order (shuffle_for_shards: a shard holds a random mix of its
// split, whatever the folder's order — ImageNet's is by class) and cut, in that order, into
// shards of about shard_mb MiB of tar (at least one sample each; the cut depends on the file
// sizes only). A shard is a WebDataset tar
// (shards/tar.h) whose samples are two adjacent members: "<key>.jpg" or "<key>.png" — the
// file's bytes as they are, whatever the image size, the extension from its magic bytes — and
// "<key>.cls", the class index as decimal text. Keys are "<split>-<position in the split, 10
// digits>" (the position after shuffle_for_shards), so they are unique, and sorted in sample
// order within and across shards.
//
// `workers` threads build shards and put them into the pool (datasets/<name>/shards/<sha256>
// .tar, not put again when present); memory stays about workers × shard_mb. The progress
// object datasets/<name>/ingest/<plan digest>.json records the finished shards (plan digest:
// SHA-256 of the listing — path, size, mtime, label, split of every file —, shard_mb and the
// bad-image policy).
// A rerun of the same plan after a crash builds only the shards not recorded or not in the
// store. The index (shards/index.h) is written last, then datasets/<name>/latest. The same
// folder gives the same shards and the same digest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "shards/index.h"
#include "shards/listing.h"
#include "storage/store.h"

namespace ddpipe::shards {

struct IngestOptions {
  std::filesystem::path root;  // the image folder
  std::string name;            // the dataset's name in the store
  int64_t channels = 3;        // recorded in the index: how training decodes the images
  double test_fraction = 0.2;  // without train/ and test/
  uint64_t seed = 0;           // of the seeded split
  int64_t shard_mb = 128;      // target shard size in MiB (1 to 65536)
  int workers = 0;             // threads building shards; 0: the cores, at most 8
  // A file that is neither JPEG nor PNG by its magic bytes: an error (kFail) or left out with a
  // warning (kSkip; its key is then unused).
  enum class BadImage { kFail, kSkip } bad_image = BadImage::kFail;
  // The progress object is put at most this often (and when the run ends, even by an error):
  // a kill loses the record of the shards of the last interval, which a rerun builds again but
  // does not put again (they are in the pool). 0: after every shard. A put rewrites the whole
  // object, so a short interval costs O(shards²) bytes on a huge ingest.
  double progress_interval_s = 10;
  // core::ProgressBar on a terminal; elsewhere a log line every 30 s (shards done, MB/s).
  bool show_progress = true;
  // Test hook: called on a worker after each shard is recorded in the progress object. A throw
  // stops the ingest as a crash would (the exception is rethrown by ingest_image_folder).
  std::function<void(const ShardRef&)> after_shard;
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
  int64_t skipped_files = 0;   // BadImage::kSkip
};

// The order the ingest writes each split in: a Fisher–Yates shuffle of the listing's order with
// mt19937_64 seeded by splitmix64(seed ^ fnv1a("shard order train")) (or "… test"). Sample
// position p of a split (its key "<split>-<p>") is listing.<split>[p] after this.
void shuffle_for_shards(FolderListing& listing, uint64_t seed);

// Throws core::Error: kUsage for bad options, kData naming the file for an unreadable or
// non-image file (kFail) or one that changed since it was listed, kStorage from the store.
// Thread-safe with respect to other ingests of other plans; two runs of the same plan at once
// are safe (puts are atomic, shards content-addressed) but do the work twice.
IngestReport ingest_image_folder(const IngestOptions& options, storage::Store& store);

}  // namespace ddpipe::shards
