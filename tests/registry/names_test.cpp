// The registry against hostile names and alias files on a local store (the S3 twin is in
// tests/integration/registry_s3_test.cpp), and nothing read or written beside the store.
#include <gtest/gtest.h>

#include "core/fs.h"
#include "hostile_keys.h"
#include "hostile_registry_cases.h"
#include "storage/local_store.h"
#include "test_util.h"

namespace ddpipe::registry {
namespace {

TEST(RegistryNames, HostileNamesAndAliasFilesAreRefusedOnALocalStore) {
  testing::TempDir dir;
  core::write_file_atomic(dir / "etc" / "passwd", "SECRET");
  storage::LocalStore store(dir / "a" / "b" / "store");
  testing::check_registry_refuses_hostile_names(store);
  for (const std::string& path : testing::tree(dir.path())) {
    EXPECT_TRUE(path == "etc" || path == "etc/passwd" || path == "a" || path == "a/b" ||
                path.rfind("a/b/store", 0) == 0)
        << "written beside the store: " << path;
  }
  EXPECT_EQ(core::read_file(dir / "etc" / "passwd"), "SECRET");
}

}  // namespace
}  // namespace ddpipe::registry
