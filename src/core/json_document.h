// ddpipe::core — typed JSON documents that outlive the build that wrote them (model manifests,
// run records): each field is declared once as (JSON pointer, member, required or not) by a
// `for_each_field(object, visit)` function; reading names the document and the field in every
// error (core::Error kData) and keeps the keys this build does not know.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "core/error.h"

namespace ddpipe::core::json_document {

// kOmittedWhenDefault (numbers and booleans): optional, and written only when it is not 0 or false,
// so that documents which never used a later-added field are written back as they were.
enum class Need { kRequired, kOptional, kOmittedWhenDefault };

// "/dataset/height" → "dataset.height", as errors name fields.
std::string dotted(const std::string& pointer);

// The value at `pointer`, or nullptr when absent or null. kData naming `where` when a parent
// is not an object (a "dataset" string cannot hold dataset.height).
const nlohmann::json* find(const nlohmann::json& doc, const nlohmann::json::json_pointer& pointer,
                           const std::string& where);

// The document's schema_version: 1 when absent (written before the field existed); kData for
// one that is not a positive integer or is newer than `newest` (a newer ddpipe wrote it).
int64_t read_schema_version(const nlohmann::json& doc, const std::string& where, int64_t newest);

// The whole number in `v` (a JSON integer, or a number with no fraction) when it lies in
// [lo, hi]; kData naming `where` and `field` otherwise (1e42 is not an epoch, 1.5 not a count).
int64_t read_signed(const nlohmann::json& v, int64_t lo, int64_t hi, const std::string& field,
                    const std::string& where);
uint64_t read_unsigned(const nlohmann::json& v, uint64_t hi, const std::string& field,
                       const std::string& where);

// `v` into `value`; kData naming `where` and `field` when the type is wrong or an integer field's
// value does not fit its type.
template <class T>
void read_value(const nlohmann::json& v, T& value, const std::string& field,
                const std::string& where) {
  using Limits = std::numeric_limits<T>;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> && Limits::is_signed) {
    value = static_cast<T>(read_signed(v, Limits::min(), Limits::max(), field, where));
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    value = static_cast<T>(read_unsigned(v, Limits::max(), field, where));
  } else {
    try {
      v.get_to(value);
    } catch (const nlohmann::json::exception& e) {
      fail_data(where + ": field " + field + " has the wrong type (" + v.type_name() +
                "): " + e.what());
    }
  }
}

// The document of `object`: `extra` (the unknown keys it was read with), schema_version, then
// every declared field.
template <class T, class ForEachField>
nlohmann::json write(const T& object, const nlohmann::json& extra, int64_t schema_version,
                     ForEachField&& for_each_field) {
  nlohmann::json doc = extra.is_object() ? extra : nlohmann::json::object();
  doc["schema_version"] = schema_version;
  for_each_field(object, [&doc](const char* pointer, const auto& value, Need need) {
    using Value = std::decay_t<decltype(value)>;
    if constexpr (std::is_arithmetic_v<Value>) {
      if (need == Need::kOmittedWhenDefault && value == Value{}) return;
    }
    doc[nlohmann::json::json_pointer(pointer)] = value;
  });
  return doc;
}

// Reads every declared field of `doc` into `object` (kData for a missing required one or a
// wrong type) and returns the rest of the document: the keys this build does not know, without
// schema_version and without objects the fields emptied.
template <class T, class ForEachField>
nlohmann::json read(const nlohmann::json& doc, const std::string& where, T& object,
                    ForEachField&& for_each_field) {
  nlohmann::json extra = doc;
  extra.erase("schema_version");
  for_each_field(object, [&](const char* text, auto& value, Need need) {
    const nlohmann::json::json_pointer pointer(text);
    const nlohmann::json* v = find(doc, pointer, where);
    if (v == nullptr) {
      if (need == Need::kRequired)
        fail_data(where + " is incomplete: field " + dotted(text) + " is missing");
    } else {
      read_value(*v, value, dotted(text), where);
    }
    if (extra.contains(pointer)) extra[pointer.parent_pointer()].erase(pointer.back());
  });
  for (auto it = extra.begin(); it != extra.end();) {
    it = it->is_object() && it->empty() && doc.at(it.key()).is_object() && !doc.at(it.key()).empty()
             ? extra.erase(it)
             : std::next(it);
  }
  return extra;
}

}  // namespace ddpipe::core::json_document
