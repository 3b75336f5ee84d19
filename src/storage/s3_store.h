// ddpipe::storage — S3Store: the artifact store in an S3 bucket, `s3://bucket/prefix` (MinIO,
// Ceph RGW, AWS S3). Store keys live under `prefix/`.
//
// Atomic as the Store contract requires: a single PUT replaces an object at once, and a
// multipart upload becomes visible only at CompleteMultipartUpload; an upload that fails is
// aborted so that no parts are left behind. Objects larger than part_size are written in parts,
// parallel_parts at a time, and read back with as many parallel ranged GETs. Every read is
// checked: byte counts against the object's size, and a single-part object's content against
// its ETag (its MD5); uploads carry Content-MD5, checked by the server. The bucket is created on
// the first write. Thread-safe.
#pragma once

#include <functional>
#include <string>

#include "storage/s3_client.h"
#include "storage/store.h"

namespace ddpipe::storage {

class S3Store : public Store {
 public:
  S3Store(const StoreUrl& url, S3Settings settings);
  // `url` is s3://bucket[/prefix]; throws core::Error(kUsage) for a malformed URL.
  S3Store(const std::string& url, S3Settings settings);

  std::string url() const override;
  void put(const std::string& key, std::string_view bytes) override;
  void put_file(const std::string& key, const std::filesystem::path& source) override;
  std::string get(const std::string& key) override;
  void get_file(const std::string& key, const std::filesystem::path& dest) override;
  bool exists(const std::string& key) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  // Server-side: CopyObject, or UploadPartCopy in parallel above max_single_copy.
  void copy(const std::string& from, const std::string& to) override;

  S3Client& client() { return client_; }
  const std::string& bucket() const { return bucket_; }
  // The S3 key of a store key: prefix/key.
  std::string object_key(const std::string& key) const;

 private:
  // Returns bytes [offset, offset + n) of the source; `scratch` may back the view.
  using PartReader =
      std::function<std::string_view(uint64_t offset, size_t n, std::string& scratch)>;
  using ChunkWriter = std::function<void(uint64_t offset, const char* data, size_t n)>;

  void upload(const std::string& key, uint64_t size, const PartReader& read);
  // HEADs the object (kNotFound when absent), calls start(size), then streams it to write()
  // and verifies it. An object replaced between the HEAD and the GET (a concurrent writer: the
  // GET's If-Match fails with 412) is read again from the start, start() included; one read in
  // a single range is then a plain GET, which returns one whole version however often the
  // object is replaced.
  void download(const std::string& key, const std::function<void(uint64_t size)>& start,
                const ChunkWriter& write);
  void download_once(const std::string& key, const std::function<void(uint64_t size)>& start,
                     const ChunkWriter& write, bool replaced);
  // Runs a write; creates the bucket and runs it again when the bucket does not exist.
  void with_bucket(const std::function<void()>& write);
  // Creates the bucket; another writer creating it at the same moment is not an error.
  void create_bucket_racing();
  // Aborts a multipart upload; a failure is logged (the parts then stay until aborted).
  void abort_upload(const std::string& object, const std::string& upload_id);

  S3Client client_;
  std::string bucket_;
  std::string prefix_;  // "" or "a/b/"
};

}  // namespace ddpipe::storage
