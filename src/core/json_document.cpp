#include "core/json_document.h"

#include <algorithm>

namespace ddpipe::core::json_document {

using nlohmann::json;

std::string dotted(const std::string& pointer) {
  std::string out = pointer.substr(1);
  std::replace(out.begin(), out.end(), '/', '.');
  return out;
}

const json* find(const json& doc, const json::json_pointer& pointer, const std::string& where) {
  if (pointer.empty()) return &doc;
  const json* parent = find(doc, pointer.parent_pointer(), where);
  if (parent == nullptr) return nullptr;
  if (!parent->is_object()) {
    fail_data(where + ": field " + dotted(pointer.parent_pointer().to_string()) +
              " must be an object, got " + parent->type_name());
  }
  auto it = parent->find(pointer.back());
  return it == parent->end() || it->is_null() ? nullptr : &*it;
}

int64_t read_schema_version(const json& doc, const std::string& where, int64_t newest) {
  auto it = doc.find("schema_version");
  if (it == doc.end()) return 1;  // written before the field existed
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    fail_data(where + ": schema_version must be a positive integer, got " + it->dump());
  }
  const int64_t version = it->get<int64_t>();
  if (version > newest) {
    fail_data(where + " has schema_version " + std::to_string(version) + "; this build reads " +
              (newest == 1 ? std::string("version 1") : "versions 1 to " + std::to_string(newest)) +
              " (a newer ddpipe wrote it)");
  }
  return version;
}

}  // namespace ddpipe::core::json_document
