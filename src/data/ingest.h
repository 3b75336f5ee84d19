// ddpipe::data — storing datasets in the artifact store, once, by content, in either form.
//
// The in-memory form (ingest, load_ingested): datasets/<name>/<digest>/{train.images,
// train.labels,test.images,test.labels,manifest.json}; manifest.json is written last and marks
// the dataset complete. The pointer datasets/<name>/latest holds the digest of the newest
// ingest. Ingesting the same content again writes nothing.
// The sharded form (ingest_sharded): WebDataset shards and an index (shards/ingest.h).
#pragma once

#include <filesystem>
#include <string>

#include "core/config.h"
#include "data/dataset.h"
#include "shards/ingest.h"
#include "storage/store.h"

namespace ddpipe::data {

struct IngestResult {
  std::string name;
  std::string digest;
  std::string prefix;            // "datasets/<name>/<digest>/"
  bool already_present = false;  // true when nothing was written
};

IngestResult ingest(const Dataset& dataset, storage::Store& store);

// data.form=sharded: stores the dataset `config` describes as WebDataset shards through
// shards::ingest_samples (its pool, index, progress and resume). An image folder's files are
// stored as they are (the index's channels: data.channels). Any other format is read whole
// (load_source with `seed`: these fit in memory) and each image re-encoded as a PNG
// (encode_png: lossless, so it decodes to the in-memory form's bytes) with the same classes,
// splits and sample order as data.form=memory; the index's channels are the dataset's; its
// "source" names the format and the in-memory form's content digest; shards are cut by the
// decoded size C×H×W, so they come out below data.shard_mb by what PNG compresses. Every
// image's header is checked (image_member_extension) and a bad one fails the ingest naming it,
// or is left out by data.bad_images=skip (IngestReport::skipped_files). Throws what
// load_source and shards::ingest_samples throw.
shards::IngestReport ingest_sharded(const core::DataConfig& config, uint64_t seed,
                                    storage::Store& store, bool show_progress = true);

// The digest that datasets/<name>/latest points at; throws core::Error(kNotFound) with the
// command to run when the dataset was never ingested.
std::string latest_digest(storage::Store& store, const std::string& name);

// Loads an ingested dataset through the local cache (cache_dir/datasets/<digest>/), downloading
// from the store when missing and verifying the digest either way. Throws kData on mismatch.
Dataset load_ingested(storage::Store& store, const std::string& name, const std::string& digest,
                      const std::filesystem::path& cache_dir);

}  // namespace ddpipe::data
