#include "core/path_pattern.h"

#include <vector>

namespace ddpipe::core {
namespace {

std::vector<std::string_view> segments(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t at = s.find('/');
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool match_segment(std::string_view pattern, std::string_view segment, PathParams& params) {
  if (pattern.empty() || pattern[0] != ':') return pattern == segment;
  size_t end = 1;
  while (end < pattern.size() && is_name_char(pattern[end])) ++end;
  const std::string_view suffix = pattern.substr(end);
  if (segment.size() <= suffix.size() || segment.substr(segment.size() - suffix.size()) != suffix) {
    return false;
  }
  params[std::string(pattern.substr(1, end - 1))] =
      std::string(segment.substr(0, segment.size() - suffix.size()));
  return true;
}

// A pattern without brackets.
bool match_plain(std::string_view pattern, std::string_view path, PathParams& params) {
  const std::vector<std::string_view> p = segments(pattern), s = segments(path);
  const bool rest = !p.empty() && !p.back().empty() && p.back()[0] == '*';
  if (rest ? s.size() < p.size() : p.size() != s.size()) return false;
  PathParams found;
  for (size_t i = 0; i + (rest ? 1 : 0) < p.size(); ++i) {
    if (!match_segment(p[i], s[i], found)) return false;
  }
  if (rest) {  // the segments from here on, joined as they were
    size_t at = 0;
    for (size_t i = 0; i + 1 < p.size(); ++i) at += s[i].size() + 1;
    found[std::string(p.back().substr(1))] = std::string(path.substr(at));
  }
  params = std::move(found);
  return true;
}

}  // namespace

bool match_path(std::string_view pattern, std::string_view path, PathParams& params) {
  const size_t open = pattern.find('['), close = pattern.find(']', open);
  if (open == std::string_view::npos || close == std::string_view::npos) {
    return match_plain(pattern, path, params);
  }
  const std::string with = std::string(pattern.substr(0, open)) +
                           std::string(pattern.substr(open + 1, close - open - 1)) +
                           std::string(pattern.substr(close + 1));
  return match_plain(with, path, params) || match_plain(pattern_label(pattern), path, params);
}

std::string pattern_label(std::string_view pattern) {
  const size_t open = pattern.find('['), close = pattern.find(']', open);
  if (open == std::string_view::npos || close == std::string_view::npos) {
    return std::string(pattern);
  }
  return std::string(pattern.substr(0, open)) + std::string(pattern.substr(close + 1));
}

}  // namespace ddpipe::core
