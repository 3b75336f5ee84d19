#include "core/json_document.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace ddpipe::core::json_document {
namespace {

using nlohmann::json;

struct Doc {
  std::string name;
  int64_t size = 0;
  std::vector<std::string> tags;
};

template <class D, class Visit>
void for_each_field(D& d, Visit&& visit) {
  visit("/name", d.name, Need::kRequired);
  visit("/shape/size", d.size, Need::kOptional);
  visit("/tags", d.tags, Need::kOptional);
}

const auto fields = [](auto& d, auto&& visit) { for_each_field(d, visit); };

TEST(JsonDocument, ReadKeepsUnknownKeysAndDropsGroupsItEmptied) {
  const json doc = json::parse(
      R"({"schema_version": 1, "name": "a", "shape": {"size": 3}, "tags": ["x"],
          "later": {"k": 1}, "kept_empty": {}})");
  Doc d;
  const json extra = read(doc, "doc.json", d, fields);
  EXPECT_EQ(d.name, "a");
  EXPECT_EQ(d.size, 3);
  EXPECT_EQ(d.tags, std::vector<std::string>{"x"});
  EXPECT_EQ(extra, json::parse(R"({"later": {"k": 1}, "kept_empty": {}})"));
  EXPECT_EQ(write(d, extra, 2, fields),
            json::parse(R"({"schema_version": 2, "name": "a", "shape": {"size": 3},
                            "tags": ["x"], "later": {"k": 1}, "kept_empty": {}})"));
}

TEST(JsonDocument, ErrorsNameTheDocumentAndTheField) {
  Doc d;
  auto message = [&](const char* text) {
    return testing::error_of(ErrorKind::kData,
                             [&] { read(json::parse(text), "doc.json", d, fields); });
  };
  EXPECT_EQ(message(R"({"shape": {}})"), "doc.json is incomplete: field name is missing");
  EXPECT_NE(message(R"({"name": "a", "shape": "big"})").find("field shape must be an object"),
            std::string::npos);
  EXPECT_NE(message(R"({"name": "a", "shape": {"size": "3"}})")
                .find("field shape.size has the "
                      "wrong type"),
            std::string::npos);
}

TEST(JsonDocument, AnIntegerFieldTakesOnlyAWholeNumberItsTypeHolds) {
  Doc d;
  auto size_of = [&](const char* size) {
    read(json::parse(std::string(R"({"name": "a", "shape": {"size": )") + size + "}}"), "doc.json",
         d, fields);
    return d.size;
  };
  EXPECT_EQ(size_of("-7"), -7);
  EXPECT_EQ(size_of("12.0"), 12);  // a writer that keeps numbers as floats
  auto message = [&](const char* size) {
    return testing::error_of(ErrorKind::kData, [&] { size_of(size); });
  };
  // A fuzzer's run record: 8.96602e+42 as an epoch was undefined behaviour when cast to int64.
  EXPECT_EQ(message("8.96602e+42"),
            "doc.json: field shape.size is 8.96602e+42, outside [-9223372036854775808, "
            "9223372036854775807]");
  EXPECT_EQ(message("18446744073709551615"),
            "doc.json: field shape.size is 18446744073709551615, outside "
            "[-9223372036854775808, 9223372036854775807]");
  EXPECT_EQ(message("1.5"), "doc.json: field shape.size must be a whole number, got 1.5");
}

TEST(JsonDocument, SchemaVersions) {
  EXPECT_EQ(read_schema_version(json::object(), "d", 2), 1);
  EXPECT_EQ(read_schema_version({{"schema_version", 2}}, "d", 2), 2);
  EXPECT_NE(testing::error_of(ErrorKind::kData,
                              [] {
                                read_schema_version({{"schema_version", 3}}, "d", 2);
                              })
                .find("this build reads versions 1 to 2 (a newer ddpipe wrote it)"),
            std::string::npos);
  EXPECT_NE(testing::error_of(ErrorKind::kData,
                              [] {
                                read_schema_version({{"schema_version", 2}}, "d", 1);
                              })
                .find("this build reads version 1 "),
            std::string::npos);
  EXPECT_NE(testing::error_of(ErrorKind::kData,
                              [] {
                                read_schema_version({{"schema_version", "1"}}, "d", 1);
                              })
                .find("must be a positive integer"),
            std::string::npos);
}

}  // namespace
}  // namespace ddpipe::core::json_document
