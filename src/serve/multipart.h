// ddpipe::serve — a strict multipart/form-data parser (RFC 7578) over an in-memory body.
// Pure functions without allocation beyond the result: the fuzz target drives them directly.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ddpipe::serve {

struct FormPart {
  std::string name;          // Content-Disposition name
  std::string filename;      // Content-Disposition filename, "" when absent
  std::string content_type;  // the part's Content-Type, "" when absent
  std::string_view data;     // the part's bytes, a view into the parsed body
};

// The boundary parameter of a Content-Type header value ("multipart/form-data; boundary=x").
// Throws core::Error(kUsage) when it is missing or not 1–70 characters.
std::string multipart_boundary(std::string_view content_type);

// Splits `body` into its parts. Throws core::Error(kUsage) naming the problem when the body
// does not start with the boundary, a part has no header end or no Content-Disposition name,
// the closing boundary is missing, or there are more than `max_parts` parts.
std::vector<FormPart> parse_multipart(std::string_view body, std::string_view boundary,
                                      size_t max_parts = 64);

}  // namespace ddpipe::serve
