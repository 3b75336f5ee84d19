#include "core/json_document.h"

#include <algorithm>
#include <cmath>

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

namespace {

// `v` as a whole number in [lo, hi] (long double holds every int64 and uint64 exactly).
long double whole_number(const json& v, long double lo, long double hi, const std::string& field,
                         const std::string& where) {
  long double n = 0;
  if (v.is_number_unsigned()) {
    n = static_cast<long double>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    n = static_cast<long double>(v.get<int64_t>());
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
             std::trunc(v.get<double>()) == v.get<double>()) {
    n = v.get<double>();
  } else if (v.is_number()) {
    fail_data(where + ": field " + field + " must be a whole number, got " + v.dump());
  } else {
    fail_data(where + ": field " + field + " has the wrong type (" + v.type_name() +
              "): expected a whole number");
  }
  if (n < lo || n > hi) {
    const std::string low = lo < 0 ? std::to_string(static_cast<int64_t>(lo)) : "0";
    fail_data(where + ": field " + field + " is " + v.dump() + ", outside [" + low + ", " +
              std::to_string(static_cast<uint64_t>(hi)) + "]");
  }
  return n;
}

}  // namespace

int64_t read_signed(const json& v, int64_t lo, int64_t hi, const std::string& field,
                    const std::string& where) {
  return static_cast<int64_t>(whole_number(v, lo, hi, field, where));
}

uint64_t read_unsigned(const json& v, uint64_t hi, const std::string& field,
                       const std::string& where) {
  return static_cast<uint64_t>(whole_number(v, 0, hi, field, where));
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
