#include "report/html.h"

#include <array>
#include <charconv>
#include <cmath>
#include <system_error>

namespace ddpipe::report {

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "\u2013";
  char buf[64];
  // std::to_chars ignores the locale, so a report is the same bytes wherever it is rendered.
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (ec != std::errc()) return "\u2013";
  std::string out(buf, end);
  if (out[0] == '-' && out.find_first_not_of("-0.") == std::string::npos) out.erase(0, 1);
  return out;
}

std::string percent(double v, int decimals) { return fixed(v * 100.0, decimals) + "%"; }

std::string count(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "\u2013";
  if (seconds < 60) return fixed(seconds, 1) + " s";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total % 3600) / 60, s = total % 60;
  auto two = [](int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  if (h == 0) return std::to_string(m) + " min " + two(s) + " s";
  return std::to_string(h) + " h " + two(m) + " min";
}

std::string shorten(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  // Never cut inside a UTF-8 sequence: back off over continuation bytes (10xxxxxx).
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "\u2026";
}

std::string version_color(std::size_t i) {
  // Okabe & Ito (2008), ordered so that neighbours differ most on a white page; its yellow
  // (#F0E442) darkened to be seen on white.
  static const std::array<const char*, 8> kPalette = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                                      "#56B4E9", "#D55E00", "#000000", "#B8A000"};
  return kPalette[i % kPalette.size()];
}

std::optional<double> number(const nlohmann::json& obj, const std::string& key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace ddpipe::report
