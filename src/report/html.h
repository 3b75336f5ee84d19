// ddpipe::report — text helpers of the page (internal to the component): escaping, number
// formats that do not depend on the locale, the version palette, reading metrics from JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ddpipe::report {

// `s` with & < > " ' replaced by entities: safe in element text and in quoted attributes.
std::string escape(std::string_view s);

// `v` with exactly `decimals` digits after the point ("0.125" for (0.125, 3)); "-0" prints
// as "0"; NaN and infinities as "–".
std::string fixed(double v, int decimals);
// `v` in [0, 1] as a percentage with `decimals` digits: "91.25%".
std::string percent(double v, int decimals = 2);
// An integer with thousands separators: "10,000".
std::string count(int64_t n);
// A duration: "42.1 s", "3 min 12 s", "1 h 02 min".
std::string duration(double seconds);
// `s`, or its first `n` bytes or fewer (never half a UTF-8 character) and "…" when longer.
std::string shorten(const std::string& s, std::size_t n);

// The colour of the i-th version: the Okabe–Ito palette (colour-blind safe), repeated.
std::string version_color(std::size_t i);

// obj[key] when it is a finite number.
std::optional<double> number(const nlohmann::json& obj, const std::string& key);
// The value of a JSON scalar as text ("" for null, strings without quotes).
std::string scalar_text(const nlohmann::json& v);

}  // namespace ddpipe::report
