// ddpipe::data — fetching the CIFAR-10 archive.
//
// download_file() fetches a URL with libcurl into `dest`, resuming a previous partial download
// (`dest`.part, HTTP Range), verifies the MD5 and only then renames it to `dest`. A checksum
// mismatch deletes the partial file and throws core::Error(kData) naming the URL, the expected
// and the actual digest. Network failures throw core::Error(kStorage).
#pragma once

#include <filesystem>
#include <string>

namespace ddpipe::data {

void download_file(const std::string& url, const std::string& md5_hex,
                   const std::filesystem::path& dest);

// Extracts a .tar.gz (libarchive) into a temporary folder beside `dest_dir` and renames it to
// `dest_dir` once complete, so a half-extracted tree is never used. Rejects absolute paths and
// "..". Throws core::Error(kData) for a corrupt archive.
void extract_archive(const std::filesystem::path& archive, const std::filesystem::path& dest_dir);

// Makes sure `dir` holds the CIFAR-10 binary batches: downloads `url` (checked against
// `md5_hex`) and extracts it when they are missing. Returns the folder with the .bin files.
std::filesystem::path ensure_cifar10(const std::filesystem::path& dir, const std::string& url,
                                     const std::string& md5_hex);

}  // namespace ddpipe::data
