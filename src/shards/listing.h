// ddpipe::shards — the listing of an image folder: which files, which class, which split.
//
// The rules of data::load_image_folder (src/data/formats.cpp), ported unchanged so that both
// forms of a folder hold the same samples in the same splits: root/<class>/*.png|jpg|jpeg, or
// root/train/<class>/… and root/test/<class>/… when both train/ and test/ exist, or train/ and
// val/ (ImageNet's layout: val/ is the test split). Classes are the sorted sub-folder names (of
// train/ when split); hidden entries are skipped; file extensions are compared
// case-insensitively (ImageNet's .JPEG); files are in sorted path order. Without a split, a
// seeded test_fraction of each class becomes the test split (the same seeded choice as
// load_image_folder: splitmix64(seed ^ fnv1a(class)) into mt19937_64, a Fisher–Yates shuffle,
// round(n × fraction) capped at n − 1).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ddpipe::shards {

struct FolderEntry {
  std::filesystem::path path;  // in an archive: <archive>/<member name>, for messages
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // last write time, in the file clock's nanoseconds
  int32_t label = 0;
  int64_t archive_offset = -1;  // in an archive: where its bytes start; -1 for a file
};

struct FolderListing {
  std::vector<std::string> classes;
  bool presplit = false;           // train/ and test/ (or val/) given
  std::vector<FolderEntry> train;  // in sample order
  std::vector<FolderEntry> test;
  std::filesystem::path archive;  // the tar archive holding the images, or empty
};

// Lists `root`: a folder, or an uncompressed tar archive of one (shards/archive.h) laid out the
// same way, at its top or in its one top folder (`tar cf images.tar images/`). Throws
// core::Error(kUsage) for a test_fraction outside [0, 1) and kData naming the folder for a missing
// root, no class folders, a class without images, a test class without a train folder and a
// root with train/ and both test/ and val/.
FolderListing list_image_folder(const std::filesystem::path& root, double test_fraction,
                                uint64_t seed);

// The bytes of `e`, a file or an archive member of `listing`. Throws core::Error(kData).
std::string read_entry(const FolderListing& listing, const FolderEntry& e);

}  // namespace ddpipe::shards
