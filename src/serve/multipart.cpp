#include "serve/multipart.h"

#include <algorithm>
#include <functional>

#include "core/error.h"
#include "core/strings.h"

namespace ddpipe::serve {
namespace {

constexpr size_t kMaxPartHeaderBytes = 8192;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Finds parameter `key` in a header value "type; a=b; key=\"quoted \\\" value\"" (names are
// case-insensitive). Returns false when absent; throws for an unterminated quoted string.
bool header_param(std::string_view v, std::string_view key, std::string& out) {
  size_t i = v.find(';');
  while (i < v.size()) {
    ++i;  // past ';'
    const size_t eq = v.find_first_of("=;", i);
    if (eq == std::string_view::npos || v[eq] == ';') {
      i = eq;
      continue;
    }
    const std::string_view name = trim(v.substr(i, eq - i));
    i = eq + 1;
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    std::string value;
    if (i < v.size() && v[i] == '"') {
      for (++i; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        value.push_back(v[i]);
      }
      if (i >= v.size()) core::fail_usage("multipart: unterminated quoted string in a header");
      i = v.find(';', i);
    } else {
      const size_t end = v.find(';', i);
      value = std::string(trim(v.substr(i, end == std::string_view::npos ? end : end - i)));
      i = end;
    }
    if (core::iequals(name, key)) {
      out = std::move(value);
      return true;
    }
  }
  return false;
}

// Reads the header block of one part ("Name: value" lines separated by CRLF).
void parse_part_headers(std::string_view block, FormPart& part) {
  bool has_name = false;
  while (!block.empty()) {
    const size_t eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      core::fail_usage("multipart: malformed part header (expected 'Name: value')");
    }
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (core::iequals(name, "content-disposition")) {
      const std::string_view type = trim(value.substr(0, value.find(';')));
      if (!core::iequals(type, "form-data")) {
        core::fail_usage("multipart: part is '" + std::string(type) + "', expected form-data");
      }
      has_name = header_param(value, "name", part.name);
      header_param(value, "filename", part.filename);
    } else if (core::iequals(name, "content-type")) {
      part.content_type = std::string(value);
    }
  }
  if (!has_name) core::fail_usage("multipart: a part has no Content-Disposition name");
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
  std::string boundary;
  if (!header_param(content_type, "boundary", boundary)) {
    core::fail_usage("multipart/form-data without a boundary parameter in Content-Type");
  }
  if (boundary.empty() || boundary.size() > 70) {
    core::fail_usage("multipart boundary must be 1-70 characters, got " +
                     std::to_string(boundary.size()));
  }
  return boundary;
}

std::vector<FormPart> parse_multipart(std::string_view body, std::string_view boundary,
                                      size_t max_parts) {
  const std::string delimiter = "--" + std::string(boundary);
  const std::string separator = "\r\n" + delimiter;  // what ends every part's data
  const std::boyer_moore_horspool_searcher find_separator(separator.begin(), separator.end());
  auto search = [&](size_t from) -> size_t {
    const char* at = std::search(body.data() + from, body.data() + body.size(), find_separator);
    return at == body.data() + body.size() ? std::string_view::npos : at - body.data();
  };

  size_t pos = 0;
  if (body.substr(0, delimiter.size()) == delimiter) {
    pos = delimiter.size();
  } else {  // a preamble, ignored
    pos = search(0);
    if (pos == std::string_view::npos) {
      core::fail_usage("multipart: the body does not contain the boundary given in Content-Type");
    }
    pos += separator.size();
  }
  std::vector<FormPart> parts;
  while (true) {
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter; epilogue ignored
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") {
      core::fail_usage("multipart: a boundary line is not followed by CRLF");
    }
    pos += 2;
    if (parts.size() == max_parts) {
      core::fail_usage("multipart: more than " + std::to_string(max_parts) + " parts");
    }
    FormPart part;
    size_t data_start;
    if (body.substr(pos, 2) == "\r\n") {  // no headers at all
      data_start = pos + 2;
    } else {
      const size_t end = body.substr(pos, kMaxPartHeaderBytes + 4).find("\r\n\r\n");
      if (end == std::string_view::npos) {
        core::fail_usage("multipart: part headers do not end (or exceed " +
                         std::to_string(kMaxPartHeaderBytes) + " bytes)");
      }
      parse_part_headers(body.substr(pos, end), part);
      data_start = pos + end + 4;
    }
    const size_t data_end = search(data_start);
    if (data_end == std::string_view::npos) {
      core::fail_usage("multipart: the body ends without the closing boundary");
    }
    part.data = body.substr(data_start, data_end - data_start);
    parts.push_back(std::move(part));
    pos = data_end + separator.size();
  }
}

}  // namespace ddpipe::serve
