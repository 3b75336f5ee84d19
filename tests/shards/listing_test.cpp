// shards/listing.h lists an image folder as data::load_image_folder reads it: same classes,
// same files in the same splits and order.
#include "shards/listing.h"

#include <gtest/gtest.h>

#include "data/formats.h"
#include "fixtures.h"
#include "test_util.h"

namespace ddpipe::shards {
namespace {

namespace fs = std::filesystem;
using core::ErrorKind;
using ddpipe::testing::throws_error;

// A 4x4 grey PNG of one value: the value tells which file a decoded image came from.
std::string solid_png(uint8_t value) {
  return ddpipe::testing::encode_png(4, 4, 0 /* grey */, 8, std::vector<uint8_t>(16, value));
}

// The value of every listed file, in listing order.
std::vector<int> values_of(const std::vector<FolderEntry>& entries) {
  std::vector<int> out;
  for (const auto& e : entries) out.push_back(std::stoi(e.path.stem().string()));
  return out;
}

std::vector<int> values_of(const data::Split& split) {
  std::vector<int> out;
  for (int64_t i = 0; i < split.size(); ++i)
    out.push_back(split.images[static_cast<size_t>(i * 16)]);
  return out;
}

TEST(Listing, SameSplitsAndOrderAsTheInMemoryReader) {
  ddpipe::testing::TempDir dir;
  int value = 1;
  for (const std::string cls : {"zebra", "ant", "moth"}) {
    for (int i = 0; i < 9; ++i, ++value) {
      ddpipe::testing::write_bytes(dir / "f" / cls / (std::to_string(value) + ".png"),
                                   solid_png(static_cast<uint8_t>(value)));
    }
  }
  ddpipe::testing::write_bytes(dir / "f" / "ant" / ".hidden.png", solid_png(200));
  ddpipe::testing::write_bytes(dir / "f" / "ant" / "notes.txt", "not an image");
  const FolderListing l = list_image_folder(dir / "f", 0.3, 42);
  const data::Dataset d = data::load_image_folder(dir / "f", "t", 1, 4, 4, 0.3, 42);
  EXPECT_EQ(l.classes, d.classes);
  EXPECT_FALSE(l.presplit);
  EXPECT_EQ(values_of(l.train), values_of(d.train));
  EXPECT_EQ(values_of(l.test), values_of(d.test));
  EXPECT_EQ(l.test.size(), 9u);
  for (const auto& e : l.train) EXPECT_EQ(e.size, fs::file_size(e.path));
}

// An uncompressed tar of the folder, with its top folder (`tar cf f.tar f`) or without
// (`tar cf g.tar -C f .`), lists the same images in the same splits and order, and the
// in-memory reader decodes them from the archive.
TEST(Listing, ATarOfTheFolderListsTheSameImages) {
  ddpipe::testing::TempDir dir;
  int value = 1;
  for (const std::string cls : {"zebra", "ant", "moth"}) {
    for (int i = 0; i < 6; ++i, ++value) {
      ddpipe::testing::write_bytes(dir / "f" / cls / (std::to_string(value) + ".png"),
                                   solid_png(static_cast<uint8_t>(value)));
    }
  }
  ddpipe::testing::write_bytes(dir / "f" / "ant" / ".hidden.png", solid_png(200));
  const std::string d = dir.path().string();
  const auto r = ddpipe::testing::run_command("tar cf " + d + "/f.tar -C " + d + " f && tar cf " +
                                              d + "/g.tar -C " + d + "/f .");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const FolderListing folder = list_image_folder(dir / "f", 0.3, 42);
  const data::Dataset decoded = data::load_image_folder(dir / "f", "t", 1, 4, 4, 0.3, 42);
  for (const char* tar : {"f.tar", "g.tar"}) {
    const FolderListing l = list_image_folder(dir / tar, 0.3, 42);
    EXPECT_EQ(l.archive, dir / tar);
    EXPECT_EQ(l.classes, folder.classes) << tar;
    EXPECT_EQ(values_of(l.train), values_of(folder.train)) << tar;
    EXPECT_EQ(values_of(l.test), values_of(folder.test)) << tar;
    for (const auto& e : l.train) EXPECT_EQ(read_entry(l, e), solid_png(std::stoi(e.path.stem())));
    const data::Dataset from_tar = data::load_image_folder(dir / tar, "t", 1, 4, 4, 0.3, 42);
    EXPECT_EQ(from_tar.train.images, decoded.train.images) << tar;
    EXPECT_EQ(from_tar.test.labels, decoded.test.labels) << tar;
  }
}

TEST(Listing, TrainAndTestFoldersAreTheSplits) {
  ddpipe::testing::TempDir dir;
  for (const std::string cls : {"a", "b"}) {
    ddpipe::testing::write_bytes(dir / "train" / cls / "1.png", solid_png(1));
    ddpipe::testing::write_bytes(dir / "train" / cls / "2.png", solid_png(2));
    ddpipe::testing::write_bytes(dir / "test" / cls / "3.png", solid_png(3));
  }
  const FolderListing l = list_image_folder(dir.path(), 0.5, 1);
  EXPECT_TRUE(l.presplit);
  EXPECT_EQ(l.train.size(), 4u);
  ASSERT_EQ(l.test.size(), 2u);
  EXPECT_EQ(l.test[1].label, 1);
  ddpipe::testing::write_bytes(dir / "test" / "c" / "3.png", solid_png(3));
  EXPECT_TRUE(throws_error([&] { list_image_folder(dir.path(), 0.5, 1); }, ErrorKind::kData,
                           {"class 'c' has no folder"}));
}

TEST(Listing, ErrorsNameTheFolder) {
  ddpipe::testing::TempDir dir;
  EXPECT_TRUE(throws_error([&] { list_image_folder(dir / "none", 0.2, 1); }, ErrorKind::kData,
                           {(dir / "none").string(), "does not exist"}));
  fs::create_directories(dir / "f" / "empty");
  EXPECT_TRUE(throws_error([&] { list_image_folder(dir / "f", 0.2, 1); }, ErrorKind::kData,
                           {(dir / "f" / "empty").string(), "no .png/.jpg images"}));
  EXPECT_TRUE(throws_error([&] { list_image_folder(dir / "f", 1.0, 1); }, ErrorKind::kUsage,
                           {"data.test_fraction"}));
}

}  // namespace
}  // namespace ddpipe::shards
