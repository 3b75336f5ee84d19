// ddpipe::core — base64 (RFC 4648): images inside JSON requests (KServe V1 "b64", V2 BYTES),
// Kubernetes Secret data, S3's Content-MD5.
#pragma once

#include <string>
#include <string_view>

namespace ddpipe::core {

// Standard alphabet, with padding.
std::string base64_encode(std::string_view bytes);

// Decodes standard or URL-safe base64; padding is optional, whitespace (space, tab, CR, LF) is
// skipped. Throws core::Error(kUsage) naming the offset of the first invalid character, for
// more than two '=' or anything but whitespace after one, and for input that ends in the middle
// of a byte. The messages start with "base64: ".
std::string base64_decode(std::string_view text);

}  // namespace ddpipe::core
