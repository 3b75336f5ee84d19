// The keys and names no entry point of ddpipe may accept (docs/security.md), and the check that
// a store refuses each on every operation: run on a local folder (names_test.cpp) and on S3
// (s3_names_test.cpp), so that both backends are held to the same rule.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "storage/store.h"

namespace ddpipe::testing {

struct Hostile {
  std::string label;  // how a failure names the case
  std::string text;
};

// Invalid store keys: traversal ("../x", "a/../../b"), absolute ("/abs"), '.', empty segments,
// temp names, control characters and NUL, a key over 1024 bytes, a segment over 255.
std::vector<Hostile> hostile_keys();
// Invalid names (model, alias, version, run id): the keys above and what a key allows but a
// name does not: '/', a leading '.', 129 bytes, URL-encoded traversal ("..%2F..%2Fetc").
std::vector<Hostile> hostile_names();

// Every operation of `store` with each hostile key — put, put_file, get, get_file, exists,
// try_get, remove, copy from and to it, list with it as a prefix — throws core::Error(kUsage)
// whose message names the key ("invalid store key" / "invalid store prefix"). `scratch` is a
// local folder for put_file/get_file: get_file must create nothing in it. gtest failures name
// the case and the operation.
void expect_store_refuses_hostile_keys(storage::Store& store, const std::filesystem::path& scratch);

// Every file and folder under `root` (relative, sorted, symbolic links not followed).
std::vector<std::string> tree(const std::filesystem::path& root);

}  // namespace ddpipe::testing
