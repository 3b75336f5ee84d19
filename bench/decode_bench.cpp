// ddpipe_decode_bench: images per second of ddpipe's training loader path on a sharded dataset,
// the C++ side of the "decode rate per core" figure of issue 19 (bench/shard_stream.py decode;
// BENCHMARKS.md, "Datasets bigger than memory"). Its Python peer is bench/decode_peer.py.
//
//   build/bench/ddpipe_decode_bench --store DIR --name NAME [--images N] [--size 224]
//       [--batch 64] [--workers 1] [--epoch 0] [--cache-dir DIR]
//
// What it runs is what a training rank runs for its train split, minus the model: a
// data::ShardedDataset over the dataset's latest digest (shard cache under --cache-dir, bound
// 100 GiB so nothing is evicted), a data::ShardSource over the first N train samples in stored
// order (random-resized-crop to --size, horizontal flip, ImageNet normalisation, seeded by
// --epoch), and a data::BatchLoader with --workers threads building batches of --batch. The
// shards are fetched into the cache by a warm-up pass over the same samples first (a file copy
// and a SHA-256 check), so the timed pass measures reading the tar, decoding and transforming.
// Prints one JSON line: images, seconds (wall), cpu_seconds (user + system of every thread of
// the process during the timed pass), images_per_second (wall), images_per_cpu_second, checksum
// (sum of the batches, so that nothing is optimised away).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/ingest.h"
#include "data/loader.h"
#include "data/shard_source.h"
#include "storage/store.h"

namespace {

struct Args {
  std::string store, name, cache_dir = "/tmp/ddpipe-decode-bench-cache";
  int64_t images = 2000, size = 224, batch = 64, workers = 1, epoch = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--store")
      a.store = v;
    else if (k == "--name")
      a.name = v;
    else if (k == "--cache-dir")
      a.cache_dir = v;
    else if (k == "--images")
      a.images = std::stoll(v);
    else if (k == "--size")
      a.size = std::stoll(v);
    else if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--workers")
      a.workers = std::stoll(v);
    else if (k == "--epoch")
      a.epoch = std::stoll(v);
    else {
      std::fprintf(stderr, "ddpipe_decode_bench: unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.store.empty() || a.name.empty()) {
    std::fprintf(stderr,
                 "usage: ddpipe_decode_bench --store DIR --name NAME [--images N] "
                 "[--size S] [--batch B] [--workers W] [--epoch E] [--cache-dir DIR]\n");
    std::exit(2);
  }
  return a;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// One pass of the loader over `plan`: seconds and the sum of every batch.
std::pair<double, double> pass(ddpipe::data::ShardedDataset& ds, const Args& a,
                               const std::vector<int64_t>& plan, int64_t epoch) {
  std::vector<int64_t> sizes;
  for (int64_t left = static_cast<int64_t>(plan.size()); left > 0; left -= a.batch) {
    sizes.push_back(std::min(left, a.batch));
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto source = ds.source(true, plan, sizes, 42, epoch);
  ddpipe::data::LoaderOptions lo;
  lo.batch_sizes = sizes;
  lo.workers = a.workers;
  ddpipe::data::BatchLoader loader(*source, plan, lo);
  double checksum = 0;
  while (auto batch = loader.next()) checksum += batch->images.sum().item<double>();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {s, checksum};
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    auto store = ddpipe::storage::open_store(a.store);
    const std::string digest = ddpipe::data::latest_digest(*store, a.name);
    ddpipe::data::ShardedDataset::Options o;
    o.cache_dir = a.cache_dir;
    o.cache_bytes = 100ull << 30;
    o.image_size = a.size;
    ddpipe::data::ShardedDataset ds(*store, a.name, digest, o);
    const int64_t n = std::min<int64_t>(a.images, ds.split(true).samples);
    std::vector<int64_t> plan(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) plan[static_cast<size_t>(i)] = i;
    pass(ds, a, plan, a.epoch + 1);  // warm-up: fetches the shards into the cache
    const double cpu0 = cpu_seconds();
    const auto [seconds, checksum] = pass(ds, a, plan, a.epoch);
    const double cpu = cpu_seconds() - cpu0;
    std::printf(
        "{\"images\": %lld, \"seconds\": %.4f, \"cpu_seconds\": %.4f, "
        "\"images_per_second\": %.2f, \"images_per_cpu_second\": %.2f, "
        "\"checksum\": %.6g}\n",
        static_cast<long long>(n), seconds, cpu, n / seconds, n / cpu, checksum);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddpipe_decode_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
