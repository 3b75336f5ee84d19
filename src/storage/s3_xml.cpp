#include "storage/s3_xml.h"

#include <cctype>
#include <cstdlib>
#include <utility>

#include "core/error.h"

namespace ddpipe::storage::s3xml {
namespace {

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

constexpr size_t kLongestReference = 9;  // "#x10FFFF;"

std::string unescape(std::string_view s) {
  static const std::pair<std::string_view, char> kNamed[] = {
      {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    std::string_view rest = s.substr(i + 1);
    bool done = false;
    for (const auto& [name, c] : kNamed) {
      if (rest.substr(0, name.size()) == name) {
        out += c;
        i += name.size();
        done = true;
        break;
      }
    }
    // A character reference is at most "#x10FFFF;": looking further for its ';' made a body of
    // many '&' without one quadratic.
    size_t semi = rest.substr(0, kLongestReference).find(';');
    if (!done && rest.size() > 1 && rest[0] == '#' && semi != std::string_view::npos) {
      bool hex = rest[1] == 'x' || rest[1] == 'X';
      std::string digits(rest.substr(hex ? 2 : 1, semi - (hex ? 2 : 1)));
      char* end = nullptr;
      unsigned long cp = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
      const bool number = !digits.empty() && std::isxdigit(static_cast<unsigned char>(digits[0]));
      if (number && end && *end == '\0' && cp <= 0x10FFFF) {  // else not a character: kept
        append_utf8(out, cp);
        i += semi + 1;
        done = true;
      }
    }
    if (!done) out += '&';
  }
  return out;
}

std::vector<std::string_view> elements(std::string_view xml, const std::string& tag) {
  std::vector<std::string_view> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t start = pos + open.size();
    size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

std::string text(std::string_view xml, const std::string& tag) {
  auto e = elements(xml, tag);
  return e.empty() ? std::string() : unescape(e.front());
}

std::vector<S3ObjectInfo> list_objects(std::string_view body, const std::string& where) {
  std::vector<S3ObjectInfo> out;
  for (std::string_view e : elements(body, "Contents")) {
    S3ObjectInfo o{text(e, "Key"), 0, text(e, "ETag")};
    if (o.etag.size() >= 2 && o.etag.front() == '"' && o.etag.back() == '"') {
      o.etag = o.etag.substr(1, o.etag.size() - 2);
    }
    for (const char c : text(e, "Size")) {
      if (c < '0' || c > '9' || __builtin_mul_overflow(o.size, uint64_t{10}, &o.size) ||
          __builtin_add_overflow(o.size, uint64_t(c - '0'), &o.size)) {
        core::fail_storage(where + ": object '" + o.key + "' has Size '" + text(e, "Size") +
                           "', not a byte count");
      }
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace ddpipe::storage::s3xml
