// ddpipe::shards — the index of a sharded dataset and the store keys of the sharded form.
//
// Keys (stated here once; data/ingest.h's in-memory form shares the first and the last two):
//   datasets/<name>/latest                    the digest of the newest ingest, then "\n"
//   datasets/<name>/<digest>/index.json       the index: written last, it marks the dataset
//                                             complete (the commit marker)
//   datasets/<name>/shards/<sha256>.tar       a shard, addressed by the SHA-256 of its bytes
//   datasets/<name>/ingest/<plan>.json        the progress of an ingest (shards/ingest.h)
// Shards live in a pool shared by every digest of the dataset, because a dataset's digest is
// the SHA-256 of its index, which lists the shards' digests: it is known only once every shard
// is written. Two ingests that share shards store them once.
//
// index.json:
//   {"format": "webdataset", "version": 1, "name": …, "digest": …, "classes": [...],
//    "channels": 1|3, "shard_mb": …, "source": {...},
//    "splits": {"train": {"samples": N, "shards": [{"key", "sha256", "bytes", "samples",
//                                                    "first_key"}, ...]},
//               "test": {...}}}
// digest = SHA-256 of the canonical JSON (keys sorted, no spaces) of the index without "digest".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "storage/store.h"

namespace ddpipe::shards {

inline constexpr int kIndexVersion = 1;

// Key helpers. Each throws core::Error(kUsage) for a name that is empty or holds a '/'.
std::string latest_key(const std::string& name);
std::string dataset_prefix(const std::string& name, const std::string& digest);  // ends in '/'
std::string index_key(const std::string& name, const std::string& digest);
std::string shard_key(const std::string& name, const std::string& sha256);
std::string progress_key(const std::string& name, const std::string& plan_digest);
// Throws kUsage for a dataset name that is empty, holds a '/' or makes an invalid key.
void check_name(const std::string& name);
bool is_sha256_hex(const std::string& s);

struct ShardRef {
  std::string key;  // shard_key(name, sha256)
  std::string sha256;
  uint64_t bytes = 0;
  int64_t samples = 0;
  std::string first_key;  // the WebDataset key of its first sample
};

struct SplitIndex {
  int64_t samples = 0;  // the sum of the shards' samples
  std::vector<ShardRef> shards;
};

struct DatasetIndex {
  std::string name;
  std::vector<std::string> classes;
  int64_t channels = 3;  // how images are decoded for training
  int64_t shard_mb = 128;
  nlohmann::json source = nlohmann::json::object();  // where it came from (content, not paths)
  SplitIndex train;
  SplitIndex test;
  std::string digest;  // filled by seal() and parse_index()
};

// The index as JSON, with "digest" when `with_digest`.
nlohmann::json to_json(const DatasetIndex& index, bool with_digest = true);
// Computes and stores index.digest (call after the last change).
void seal(DatasetIndex& index);
// Parses and validates index.json text; `origin` (its key or path) is named in every error:
// core::Error(kData) for invalid JSON, an unknown format or version, missing or mistyped
// fields, channels other than 1 and 3, no classes, an empty train split, a split whose
// "samples" is not the sum of its shards', a shard whose key is not shard_key(name, sha256),
// and a "digest" that is not the digest of the content.
DatasetIndex parse_index(const std::string& text, const std::string& origin);

// The digest datasets/<name>/latest points at (of either form); kNotFound with the command to
// run when the dataset was never ingested, kData when the pointer is not a digest.
std::string latest_digest(storage::Store& store, const std::string& name);
// Reads datasets/<name>/<digest>/index.json; kNotFound (with the command to run) when absent,
// kData when invalid or when its digest is not `digest`.
DatasetIndex read_index(storage::Store& store, const std::string& name, const std::string& digest);
// Writes index.json (sealing it first) and then moves datasets/<name>/latest to its digest.
// Every shard must already be in the store: throws kData naming the first one missing.
// Returns false, writing only the pointer if needed, when the index was already there.
bool write_index(storage::Store& store, DatasetIndex& index);

}  // namespace ddpipe::shards
