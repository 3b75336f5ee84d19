#include "k8s/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/strings.h"

namespace ddpipe::k8s {
namespace {

const std::regex kInt("[-+]?[0-9]+");
const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");

// A plain (unquoted) scalar as YAML 1.2's core schema reads it.
Object plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (std::regex_match(s, kInt)) {
    try {
      return static_cast<int64_t>(std::stoll(s));
    } catch (const std::out_of_range&) {
      return std::stod(s);
    }
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  return s;
}

Object from_node(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Object o = Object::object();
      for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = from_node(it->second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      Object a = Object::array();
      for (const auto& item : n) a.push_back(from_node(item));
      return a;
    }
    case YAML::NodeType::Scalar:
      // "?" marks a plain scalar; quoted, block and explicitly tagged ones keep their text.
      return n.Tag() == "?" ? plain_scalar(n.Scalar()) : Object(n.Scalar());
    default:
      return nullptr;
  }
}

// Would a YAML 1.1 or 1.2 reader (Go's yaml.v2 in kubectl included) take `s` for a non-string?
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* kWords[] = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"};
  const std::string l = core::to_lower(s);
  for (const char* w : kWords) {
    if (l == w) return true;
  }
  const unsigned char c0 = static_cast<unsigned char>(s[0]);
  if (std::isdigit(c0) || ((s[0] == '-' || s[0] == '+' || s[0] == '.') && s.size() > 1)) {
    return s.find_first_not_of("0123456789abcdefABCDEFxXoO_.:+-") == std::string::npos ||
           std::regex_match(s, kFloat) || l == ".inf" || l == "-.inf" || l == ".nan";
  }
  return false;
}

// Kubernetes' keys ("app.kubernetes.io/name") are written as they are. Any other is written
// quoted and explicitly ("? "), as is one beyond YAML's 1024-character limit for an implicit key
// (escapes lengthen quoted ones). Found by tests/k8s/fuzz: such keys did not read back.
void emit_key(YAML::Emitter& out, const std::string& key) {
  const bool plain =
      !key.empty() && key[0] != '-' && std::all_of(key.begin(), key.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("._/-").find(c) != std::string_view::npos;
      });
  out << YAML::Key;
  if (plain && key.size() <= 1000) {
    out << key;
  } else {
    out << YAML::LongKey << YAML::DoubleQuoted << key;
  }
}

void emit(YAML::Emitter& out, const Object& v) {
  switch (v.type()) {
    case Object::value_t::object:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (auto it = v.begin(); it != v.end(); ++it) {
        emit_key(out, it.key());
        out << YAML::Value;
        emit(out, it.value());
      }
      out << YAML::EndMap;
      return;
    case Object::value_t::array:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      return;
    case Object::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      if (s.find('\n') != std::string::npos) {
        out << YAML::Literal << s;
      } else if (needs_quotes(s)) {
        out << YAML::DoubleQuoted << s;
      } else {
        out << s;
      }
      return;
    }
    case Object::value_t::boolean:
      out << v.get<bool>();
      return;
    case Object::value_t::number_integer:
      out << v.get<int64_t>();
      return;
    case Object::value_t::number_unsigned:
      out << v.get<uint64_t>();
      return;
    case Object::value_t::number_float:
      out << v.get<double>();
      return;
    default:
      out << YAML::Null;
  }
}

// True when `line` is the marker `m` ("---" or "..."), alone or followed by a blank.
bool is_marker(std::string_view line, std::string_view m) {
  return line.substr(0, 3) == m &&
         (line.size() == 3 || std::isspace(static_cast<unsigned char>(line[3])));
}

// The documents of a YAML stream, split at its "---" and "..." lines (YAML forbids them at
// column 0 inside a document), each with the index of its first line. yaml-cpp 0.7's LoadAll
// loops forever on some malformed streams (found by tests/k8s/fuzz; jbeder/yaml-cpp#1319, fixed
// in 0.8); its Load, one document at a time, does not.
std::vector<std::pair<std::string, int>> split_documents(const std::string& yaml) {
  std::vector<std::pair<std::string, int>> docs(1, {"", 0});
  int line = 0;
  for (size_t at = 0; at < yaml.size(); ++line) {
    const size_t nl = yaml.find('\n', at);
    const size_t end = nl == std::string::npos ? yaml.size() : nl + 1;
    const std::string_view text(yaml.data() + at, end - at);
    const bool end_marker = is_marker(text, "...");
    if (is_marker(text, "---") || end_marker) docs.emplace_back("", line);
    if (!end_marker) docs.back().first += text;
    at = end;
  }
  return docs;
}

}  // namespace

std::vector<Object> parse_manifests(const std::string& yaml, const std::string& origin) {
  std::vector<YAML::Node> docs;
  for (const auto& [text, first_line] : split_documents(yaml)) {
    try {
      docs.push_back(YAML::Load(text));
    } catch (const YAML::Exception& e) {
      core::fail_usage(origin + ": not valid YAML at line " +
                       std::to_string(first_line + e.mark.line + 1) + ": " + e.msg);
    }
  }
  std::vector<Object> out;
  for (const auto& d : docs) {
    if (d.IsNull()) continue;
    if (!d.IsMap()) core::fail_usage(origin + ": every document must be a mapping (an object)");
    out.push_back(from_node(d));
  }
  return out;
}

std::string to_yaml(const std::vector<Object>& objects, const std::string& header) {
  std::string text;
  size_t start = 0;
  while (start < header.size()) {
    size_t end = header.find('\n', start);
    if (end == std::string::npos) end = header.size();
    const std::string line = header.substr(start, end - start);
    text += line.empty() ? "#\n" : "# " + line + "\n";
    start = end + 1;
  }
  for (const auto& o : objects) {
    YAML::Emitter out;
    out.SetIndent(2);
    out.SetSeqFormat(YAML::Block);
    out.SetDoublePrecision(15);
    emit(out, o);
    std::string doc = out.c_str();
    if (doc.empty() || doc.back() != '\n') doc += '\n';
    text += "---\n" + doc;
  }
  return text;
}

std::vector<Object> of_kind(const std::vector<Object>& objects, const std::string& kind) {
  std::vector<Object> out;
  for (const auto& o : objects) {
    if (o.value("kind", "") == kind) out.push_back(o);
  }
  return out;
}

}  // namespace ddpipe::k8s
