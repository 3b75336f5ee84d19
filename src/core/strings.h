// ddpipe::core — ASCII case folding for protocol text (HTTP header names, media types, file
// extensions, hex digests, YAML words). Bytes outside A–Z are kept as they are, whatever the
// locale: these are wire formats, not human language.
#pragma once

#include <string>
#include <string_view>

namespace ddpipe::core {

// `s` with A–Z replaced by a–z.
std::string to_lower(std::string_view s);

// Whether `a` and `b` are equal when A–Z and a–z are taken as the same letters.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace ddpipe::core
