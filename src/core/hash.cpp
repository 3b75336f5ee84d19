#include "core/hash.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "core/error.h"

namespace ddpipe::core {

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Hasher::Hasher(Algo algo) : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  const EVP_MD* md = algo == Algo::kSha256 ? EVP_sha256() : EVP_md5();
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, md, nullptr) != 1) {
    throw Error(ErrorKind::kInternal, "OpenSSL digest initialisation failed");
  }
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(const void* data, size_t n) { EVP_DigestUpdate(impl_->ctx, data, n); }

std::string Hasher::hex_digest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out, &len);
  static const char* kHex = "0123456789abcdef";
  std::string s(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    s[2 * i] = kHex[out[i] >> 4];
    s[2 * i + 1] = kHex[out[i] & 15];
  }
  return s;
}

std::string sha256_hex(std::string_view data) {
  Hasher h;
  h.update(data);
  return h.hex_digest();
}

std::string file_digest_hex(const std::filesystem::path& path, Hasher::Algo algo) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_storage("cannot open " + path.string() + " to compute its digest");
  Hasher h(algo);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.hex_digest();
}

}  // namespace ddpipe::core
