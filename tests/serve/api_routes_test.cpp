// The route table (api.cpp) against the endpoint list in docs/serving.md: one fact, two views.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include "serve/api.h"

namespace ddpipe::serve {
namespace {

// "METHOD pattern" of the rows of the Endpoints table in docs/serving.md, with "<x>" written
// ":x" and the query part ("[?top_k=N]") dropped.
std::vector<std::string> documented_endpoints() {
  std::ifstream in(std::string(DDPIPE_SOURCE_DIR) + "/docs/serving.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t start = doc.find("## Endpoints");
  const size_t end = doc.find("\n## ", start + 1);
  std::istringstream section(doc.substr(start, end - start));
  const std::regex row(R"(^\| `(GET|POST|PUT|DELETE) ([^`]+)` \|)");
  std::vector<std::string> out;
  for (std::string line; std::getline(section, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    std::string path = m[2].str();
    path = path.substr(0, path.find("[?"));
    path = std::regex_replace(path, std::regex("<([a-z_]+)>"), ":$1");
    out.push_back(m[1].str() + " " + path);
  }
  return out;
}

TEST(ApiRoutes, TheDocsListEveryEndpointOnce) {
  std::vector<std::string> table = Api::endpoints();
  std::vector<std::string> docs = documented_endpoints();
  ASSERT_FALSE(docs.empty()) << "no Endpoints table in docs/serving.md";
  std::sort(table.begin(), table.end());
  std::sort(docs.begin(), docs.end());
  EXPECT_EQ(docs, table);
  EXPECT_EQ(std::adjacent_find(table.begin(), table.end()), table.end());
}

}  // namespace
}  // namespace ddpipe::serve
