// ddpipe::ui — the dashboard's front-end files (src/ui/web/), embedded in the binary at build
// time: CMake runs embed_assets.cmake over every file of web/ (a file added there is picked up
// by the next build) and generates the table this header reads. Immutable: thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ddpipe::ui {

struct Asset {
  std::string_view path;          // relative to web/, '/'-separated: "index.html", "js/app.js"
  std::string_view content_type;  // from the extension ("text/html; charset=utf-8", …)
  std::string_view bytes;
};

class Assets {
 public:
  // The embedded file at `path` (relative to web/, no leading '/'), or nullptr.
  static const Asset* find(std::string_view path);
  // Every embedded file, sorted by path.
  static const std::vector<Asset>& all();
};

}  // namespace ddpipe::ui
