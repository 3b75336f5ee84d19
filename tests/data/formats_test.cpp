#include "data/formats.h"

#include <gtest/gtest.h>
#include <png.h>

#include <chrono>
#include <filesystem>

#include "core/config.h"
#include "fixtures.h"
#include "test_util.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
namespace fs = std::filesystem;
using core::ErrorKind;

void expect_same_content(const Dataset& got, const Dataset& want) {
  EXPECT_EQ(got.channels, want.channels);
  EXPECT_EQ(got.height, want.height);
  EXPECT_EQ(got.width, want.width);
  EXPECT_EQ(got.train.labels, want.train.labels);
  EXPECT_EQ(got.test.labels, want.test.labels);
  EXPECT_TRUE(got.train.images == want.train.images);
  EXPECT_TRUE(got.test.images == want.test.images);
}

// ---- IDX ------------------------------------------------------------------------------------

TEST(IdxTest, LoadsPlainAndGzipped) {
  dt::TempDir tmp;
  const Dataset want = dt::pattern_dataset(30, 12, 1, 5, 7, 10, 1);
  dt::write_idx_dataset(tmp / "plain", want, false);
  dt::write_idx_dataset(tmp / "gz", want, true);

  const Dataset plain = load_idx(tmp / "plain", "mnist");
  expect_same_content(plain, want);
  EXPECT_EQ(plain.name, "mnist");
  EXPECT_EQ(plain.classes,
            (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  EXPECT_EQ(plain.mean.size(), 1u);
  EXPECT_EQ(plain.digest.size(), 64u);

  const Dataset gz = load_idx(tmp / "gz", "Fashion-Small");
  expect_same_content(gz, want);
  EXPECT_EQ(gz.classes.front(), "T-shirt/top");
  EXPECT_EQ(gz.classes.back(), "Ankle boot");
  Dataset renamed = gz;
  renamed.classes = plain.classes;
  EXPECT_EQ(content_digest(renamed), plain.digest);  // same content, whatever the compression
}

TEST(IdxTest, CorruptFilesAreDataErrorsNamingTheFile) {
  dt::TempDir tmp;
  const Dataset d = dt::pattern_dataset(10, 4, 1, 3, 3, 10, 2);
  const fs::path dir = tmp / "idx";
  auto reset = [&] {
    fs::remove_all(dir);
    dt::write_idx_dataset(dir, d, false);
  };
  const fs::path images = dir / "train-images-idx3-ubyte";
  const fs::path labels = dir / "t10k-labels-idx1-ubyte";
  auto load = [&] { load_idx(dir, "mnist"); };

  reset();  // labels file where the images belong: magic 0x801
  fs::copy_file(dir / "train-labels-idx1-ubyte", images, fs::copy_options::overwrite_existing);
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {images.string(), "magic"}));

  reset();
  fs::resize_file(images, fs::file_size(images) - 5);
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {images.string(), "truncated"}));

  reset();
  fs::resize_file(images, 10);
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {images.string(), "truncated"}));

  reset();
  std::vector<uint8_t> bad(d.test.labels.begin(), d.test.labels.end());
  bad[2] = 10;
  dt::write_bytes(labels, dt::idx_labels(bad));
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {labels.string(), "label 10", "range"}));

  reset();
  bad.pop_back();
  dt::write_bytes(labels, dt::idx_labels(bad));
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {labels.string(), "3 labels for 4 images"}));

  reset();
  fs::remove(images);
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {"train-images-idx3-ubyte", "missing"}));

  // A truncated gzip stream.
  fs::remove_all(dir);
  dt::write_idx_dataset(dir, d, true);
  const fs::path gz = dir / "train-images-idx3-ubyte.gz";
  fs::resize_file(gz, fs::file_size(gz) - 12);
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {gz.string()}));

  EXPECT_TRUE(dt::throws_error([&] { load_idx(tmp / "absent", "x"); }, ErrorKind::kData,
                               {(tmp / "absent").string(), "does not exist"}));
}

TEST(IdxTest, RealFashionMnist) {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz")) {
    FAIL() << "Fashion-MNIST not installed at " << dir
           << " (scripts/install-deps.sh installs dataset-fashion-mnist)";
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset d = load_idx(dir, "fashion-mnist");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("load_seconds", std::to_string(secs));
  std::printf("Fashion-MNIST load + finalize: %.2f s\n", secs);
  EXPECT_EQ(d.train.size(), 60000);
  EXPECT_EQ(d.test.size(), 10000);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, 28);
  EXPECT_EQ(d.width, 28);
  EXPECT_NEAR(d.mean[0], 0.2860, 0.001);
  EXPECT_NEAR(d.std[0], 0.3530, 0.001);
  EXPECT_EQ(d.classes[9], "Ankle boot");
  std::vector<int> counts(10, 0);
  for (int32_t l : d.train.labels) counts[static_cast<size_t>(l)]++;
  for (int c : counts) EXPECT_EQ(c, 6000);
}

// ---- CIFAR-10 -------------------------------------------------------------------------------

Dataset cifar_like(uint32_t seed) {
  Dataset d = dt::pattern_dataset(25, 7, 3, 32, 32, 10, seed);
  d.classes = {"plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return d;
}

TEST(CifarTest, LoadsFolderParentFolderAndArchive) {
  dt::TempDir tmp;
  const Dataset want = cifar_like(3);
  dt::write_cifar_dir(tmp / "flat", want, true);
  dt::write_tar_gz(tmp / "cifar-10-binary.tar.gz", dt::cifar_archive_entries(want));
  dt::write_cifar_dir(tmp / "parent" / "cifar-10-batches-bin", want, true);

  const Dataset flat = load_cifar10(tmp / "flat", "cifar10");
  expect_same_content(flat, want);
  EXPECT_EQ(flat.classes, want.classes);  // from batches.meta.txt
  EXPECT_EQ(flat.mean.size(), 3u);
  const Dataset parent = load_cifar10(tmp / "parent", "cifar10");
  EXPECT_EQ(parent.digest, flat.digest);
  const Dataset archive = load_cifar10(tmp / "cifar-10-binary.tar.gz", "cifar10");
  EXPECT_EQ(archive.digest, flat.digest);
  // The archive was extracted into a private temporary folder, not beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 3);
}

TEST(CifarTest, DefaultClassNamesWithoutMeta) {
  dt::TempDir tmp;
  dt::write_cifar_dir(tmp.path(), cifar_like(4), false);
  const Dataset d = load_cifar10(tmp.path(), "cifar10");
  EXPECT_EQ(d.classes.front(), "airplane");
  EXPECT_EQ(d.classes.back(), "truck");
  EXPECT_EQ(d.train.size(), 25);
  EXPECT_EQ(d.test.size(), 7);
}

TEST(CifarTest, CorruptBatchesAreDataErrorsNamingTheFile) {
  dt::TempDir tmp;
  const Dataset d = cifar_like(5);
  auto load = [&] { load_cifar10(tmp.path(), "cifar10"); };
  const fs::path batch = tmp / "data_batch_3.bin";

  dt::write_cifar_dir(tmp.path(), d, true);
  fs::resize_file(batch, fs::file_size(batch) - 1);
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {batch.string(), "3073"}));

  dt::write_cifar_dir(tmp.path(), d, true);
  std::string bytes = dt::cifar_records(d.train, 10, 15);
  bytes[3073 * 2] = 10;
  dt::write_bytes(batch, bytes);
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {batch.string(), "record 2", "label 10"}));

  dt::write_cifar_dir(tmp.path(), d, true);
  fs::remove(tmp / "test_batch.bin");
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {"test_batch.bin"}));

  dt::write_cifar_dir(tmp.path(), d, true);
  dt::write_bytes(tmp / "batches.meta.txt", "a\nb\n");
  EXPECT_TRUE(dt::throws_error(load, ErrorKind::kData, {"batches.meta.txt", "10 class names"}));

  EXPECT_TRUE(dt::throws_error([&] { load_cifar10(tmp / "nothing", "c"); }, ErrorKind::kData,
                               {"nothing", "data.download"}));
}

TEST(CifarTest, HostileOrCorruptArchivesAreRejected) {
  dt::TempDir tmp;
  const fs::path evil = tmp / "evil.tar.gz";
  dt::write_tar_gz(evil, {{"cifar-10-batches-bin/../../escaped.bin", "x"}});
  EXPECT_TRUE(dt::throws_error([&] { load_cifar10(evil, "c"); }, ErrorKind::kData, {"'..'"}));
  EXPECT_FALSE(fs::exists(fs::temp_directory_path() / "escaped.bin"));

  dt::write_tar_gz(evil, {{"/tmp/ddpipe-absolute-entry", "x"}});
  EXPECT_TRUE(dt::throws_error([&] { load_cifar10(evil, "c"); }, ErrorKind::kData, {"absolute"}));
  EXPECT_FALSE(fs::exists("/tmp/ddpipe-absolute-entry"));

  const fs::path junk = tmp / "junk.tar.gz";
  dt::write_bytes(junk, dt::gzip(std::string(5000, 'z')));
  EXPECT_TRUE(
      dt::throws_error([&] { load_cifar10(junk, "c"); }, ErrorKind::kData, {junk.string()}));

  dt::write_bytes(junk, std::string("\x1f\x8b garbage"));
  EXPECT_TRUE(
      dt::throws_error([&] { load_cifar10(junk, "c"); }, ErrorKind::kData, {junk.string()}));

  // An archive without the batches.
  dt::write_tar_gz(junk, {{"readme.txt", "hello"}});
  EXPECT_TRUE(
      dt::throws_error([&] { load_cifar10(junk, "c"); }, ErrorKind::kData, {"data_batch_1.bin"}));
}

// ---- image folders --------------------------------------------------------------------------

// A w×h RGB PNG filled with one colour.
std::string solid_png(uint32_t w, uint32_t h, uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> rows;
  for (uint32_t i = 0; i < w * h; ++i) rows.insert(rows.end(), {r, g, b});
  return dt::encode_png(w, h, PNG_COLOR_TYPE_RGB, 8, rows);
}

std::string solid_jpeg(int w, int h, uint8_t grey) {
  return dt::encode_jpeg(w, h, 1, std::vector<uint8_t>(static_cast<size_t>(w * h), grey));
}

// root/<class>/ with `per_class` images whose colour encodes (class, index).
void write_class_folders(const fs::path& root, const std::vector<std::string>& classes,
                         int per_class) {
  for (size_t c = 0; c < classes.size(); ++c) {
    for (int i = 0; i < per_class; ++i) {
      const auto v = static_cast<uint8_t>(40 * c + i);
      const fs::path dir = root / classes[c];
      if (i % 3 == 2) {
        dt::write_bytes(dir / ("img" + std::to_string(i) + ".JPG"), solid_jpeg(6 + i, 5, v));
      } else {
        dt::write_bytes(dir / ("img" + std::to_string(i) + ".png"), solid_png(8, 4 + i, v, v, v));
      }
    }
  }
}

TEST(ImageFolderTest, SeededSplitOfClassFolders) {
  dt::TempDir tmp;
  write_class_folders(tmp / "root", {"zebra", "ant", "moose"}, 8);
  dt::write_bytes(tmp / "root" / "ant" / "notes.txt", "ignored");
  dt::write_bytes(tmp / "root" / ".hidden" / "x.png", "ignored");

  const Dataset d = load_image_folder(tmp / "root", "animals", 3, 4, 5, 0.25, 7);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"ant", "moose", "zebra"}));
  EXPECT_EQ(d.train.size(), 18);
  EXPECT_EQ(d.test.size(), 6);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 4);
  EXPECT_EQ(d.width, 5);
  for (int32_t c = 0; c < 3; ++c) {
    EXPECT_EQ(std::count(d.test.labels.begin(), d.test.labels.end(), c), 2);
  }
  // Solid images stay solid through resizing; grey → RGB replicates.
  for (int64_t i = 0; i < d.train.size(); ++i) {
    const uint8_t* img = d.train.images.data() + i * 60;
    for (int k = 1; k < 60; ++k) ASSERT_NEAR(img[k], img[0], 1) << "image " << i;
  }

  const Dataset again = load_image_folder(tmp / "root", "animals", 3, 4, 5, 0.25, 7);
  EXPECT_EQ(again.digest, d.digest);
  bool differs = false;
  for (uint64_t seed = 8; seed < 12 && !differs; ++seed) {
    differs = load_image_folder(tmp / "root", "animals", 3, 4, 5, 0.25, seed).digest != d.digest;
  }
  EXPECT_TRUE(differs) << "the split does not depend on the seed";

  const Dataset grey = load_image_folder(tmp / "root", "animals", 1, 2, 2, 0.0, 7);
  EXPECT_EQ(grey.train.size(), 24);
  EXPECT_EQ(grey.test.size(), 0);
  EXPECT_EQ(grey.train.images.size(), 24u * 4);
}

TEST(ImageFolderTest, TrainAndTestSubfolders) {
  dt::TempDir tmp;
  write_class_folders(tmp / "root" / "train", {"cat", "dog"}, 5);
  write_class_folders(tmp / "root" / "test", {"dog"}, 2);
  const Dataset d = load_image_folder(tmp / "root", "pets", 1, 3, 3, 0.5, 1);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d.train.size(), 10);
  EXPECT_EQ(d.test.size(), 2);
  EXPECT_EQ(d.test.labels, (std::vector<int32_t>{1, 1}));
  // Files in sorted order: img0.png (value 0) then img1.png (value 1).
  EXPECT_EQ(d.test.images[0], 0);
  EXPECT_EQ(d.test.images[9], 1);

  write_class_folders(tmp / "root" / "test", {"bird"}, 1);
  EXPECT_TRUE(dt::throws_error([&] { load_image_folder(tmp / "root", "pets", 1, 3, 3, 0.5, 1); },
                               ErrorKind::kData, {"bird"}));
}

TEST(ImageFolderTest, UndecodableImageNamesTheFile) {
  dt::TempDir tmp;
  write_class_folders(tmp / "root", {"a", "b"}, 4);
  const fs::path bad = tmp / "root" / "b" / "broken.png";
  std::string png = solid_png(8, 8, 1, 2, 3);
  dt::write_bytes(bad, png.substr(0, png.size() / 2));
  EXPECT_TRUE(dt::throws_error([&] { load_image_folder(tmp / "root", "x", 3, 8, 8, 0.25, 1); },
                               ErrorKind::kData, {bad.string()}));
  dt::write_bytes(bad, "GIF89a not really");
  EXPECT_TRUE(dt::throws_error([&] { load_image_folder(tmp / "root", "x", 3, 8, 8, 0.25, 1); },
                               ErrorKind::kData, {bad.string(), "not a PNG or JPEG"}));
  fs::remove(bad);
  fs::create_directories(tmp / "root" / "empty");
  EXPECT_TRUE(dt::throws_error([&] { load_image_folder(tmp / "root", "x", 3, 8, 8, 0.25, 1); },
                               ErrorKind::kData, {"empty", "no .png/.jpg"}));
  EXPECT_TRUE(dt::throws_error([&] { load_image_folder(tmp / "nope", "x", 3, 8, 8, 0.25, 1); },
                               ErrorKind::kData, {"nope"}));
  EXPECT_TRUE(dt::throws_error([&] { load_image_folder(tmp / "root", "x", 2, 8, 8, 0.25, 1); },
                               ErrorKind::kUsage, {"channels"}));
}

// ---- synthetic and dispatch -----------------------------------------------------------------

TEST(SyntheticTest, ReproducibleFromSeed) {
  const Dataset a = make_synthetic("syn", 50, 10, 3, 8, 8, 5, 42);
  const Dataset b = make_synthetic("syn", 50, 10, 3, 8, 8, 5, 42);
  const Dataset c = make_synthetic("syn", 50, 10, 3, 8, 8, 5, 43);
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_NE(a.digest, c.digest);
  EXPECT_EQ(a.train.images.size(), 50u * 192);
  EXPECT_EQ(a.classes.size(), 5u);
  EXPECT_NEAR(a.mean[0], 0.5, 0.05);
  for (int32_t l : a.train.labels) EXPECT_LT(l, 5);
  EXPECT_TRUE(
      dt::throws_error([] { make_synthetic("s", 0, 1, 1, 1, 1, 1, 0); }, ErrorKind::kUsage, {}));
}

TEST(LoadSourceTest, DispatchesOnFormat) {
  dt::TempDir tmp;
  core::DataConfig cfg;
  cfg.format = "idx";
  cfg.name = "digits";
  cfg.path = (tmp / "idx").string();
  dt::write_idx_dataset(tmp / "idx", dt::pattern_dataset(10, 5, 1, 4, 4, 10, 9), true);
  EXPECT_EQ(load_source(cfg, 0).train.size(), 10);

  cfg.format = "cifar10";
  cfg.path = (tmp / "cifar").string();
  dt::write_cifar_dir(tmp / "cifar" / "cifar-10-batches-bin", cifar_like(6), false);
  cfg.download = true;  // present already: nothing is fetched from the (unreachable) URL
  cfg.url = "http://127.0.0.1:1/cifar-10-binary.tar.gz";
  EXPECT_EQ(load_source(cfg, 0).test.size(), 7);

  cfg.format = "image-folder";
  cfg.path = (tmp / "images").string();
  write_class_folders(tmp / "images", {"x", "y"}, 5);
  cfg.channels = 1;
  cfg.height = cfg.width = 6;
  cfg.test_fraction = 0.2;
  const Dataset folder = load_source(cfg, 3);
  EXPECT_EQ(folder.train.size() + folder.test.size(), 10);

  cfg.format = "synthetic";
  cfg.train_size = 20;
  cfg.test_size = 4;
  cfg.classes = 3;
  EXPECT_EQ(load_source(cfg, 1).digest, make_synthetic(cfg.name, 20, 4, 1, 6, 6, 3, 1).digest);

  cfg.format = "parquet";
  EXPECT_TRUE(
      dt::throws_error([&] { load_source(cfg, 0); }, ErrorKind::kUsage, {"parquet", "idx"}));
}

}  // namespace
}  // namespace ddpipe::data
