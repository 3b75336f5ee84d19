// ddpipe::data — storing datasets in the artifact store, once, by content.
//
// Layout: datasets/<name>/<digest>/{train.images,train.labels,test.images,test.labels,
// manifest.json}; manifest.json is written last and marks the dataset complete. The pointer
// datasets/<name>/latest holds the digest of the newest ingest. Ingesting the same content
// again writes nothing.
#pragma once

#include <filesystem>
#include <string>

#include "data/dataset.h"
#include "storage/store.h"

namespace ddpipe::data {

struct IngestResult {
  std::string name;
  std::string digest;
  std::string prefix;            // "datasets/<name>/<digest>/"
  bool already_present = false;  // true when nothing was written
};

IngestResult ingest(const Dataset& dataset, storage::Store& store);

// The digest that datasets/<name>/latest points at; throws core::Error(kNotFound) with the
// command to run when the dataset was never ingested.
std::string latest_digest(storage::Store& store, const std::string& name);

// Loads an ingested dataset through the local cache (cache_dir/datasets/<digest>/), downloading
// from the store when missing and verifying the digest either way. Throws kData on mismatch.
Dataset load_ingested(storage::Store& store, const std::string& name, const std::string& digest,
                      const std::filesystem::path& cache_dir);

}  // namespace ddpipe::data
