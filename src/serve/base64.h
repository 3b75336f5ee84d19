// ddpipe::serve — base64 for images inside JSON requests (KServe V1 "b64", V2 BYTES).
#pragma once

#include <string>
#include <string_view>

namespace ddpipe::serve {

// Decodes standard or URL-safe base64; padding is optional, whitespace is skipped.
// Throws core::Error(kUsage) naming the offset of the first invalid character.
std::string base64_decode(std::string_view text);

}  // namespace ddpipe::serve
