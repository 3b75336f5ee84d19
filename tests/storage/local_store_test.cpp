#include "storage/local_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

namespace ddpipe::storage {
namespace {

TEST(LocalStore, PutGetListRemove) {
  testing::TempDir dir;
  auto store = open_store((dir / "store").string());
  store->put("models/a/x.json", "{}");
  store->put("models/b/y.bin", std::string(1000, 'y'));
  store->put("metrics/a/m.json", "[]");
  EXPECT_TRUE(store->exists("models/a/x.json"));
  EXPECT_EQ(store->get("models/b/y.bin").size(), 1000u);
  auto all = store->list("models/");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].key, "models/a/x.json");
  EXPECT_EQ(all[1].size, 1000u);
  EXPECT_EQ(store->list("models/a").size(), 1u);
  store->remove("models/a/x.json");
  EXPECT_FALSE(store->exists("models/a/x.json"));
  EXPECT_FALSE(store->try_get("models/a/x.json").has_value());
}

TEST(LocalStore, MissingKeyIsNotFound) {
  testing::TempDir dir;
  LocalStore store(dir.path());
  try {
    store.get("nope/x");
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("nope/x"), std::string::npos);
  }
}

TEST(LocalStore, RejectsBadKeysAndSchemes) {
  testing::TempDir dir;
  LocalStore store(dir.path());
  for (std::string key : {"", "/abs", "a/../b", "a//b", "a/.tmp-x"}) {
    EXPECT_THROW(store.put(key, "x"), core::Error) << key;
  }
  EXPECT_THROW(open_store("ftp://host/x"), core::Error);
  EXPECT_THROW(store.list("../"), core::Error);  // never walks outside the store
  EXPECT_THROW(store.list("/etc"), core::Error);
}

// A writer killed with SIGKILL in the middle of a large put leaves no visible partial object,
// and the previous version of the object stays intact.
TEST(LocalStore, KilledWriterLeavesNoPartialObject) {
  testing::TempDir dir;
  LocalStore store(dir / "s");
  store.put("models/m/model.pt", "old-complete-content");
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    // Tell the parent we are about to write, then write ~1 GiB slowly enough to be killed.
    (void)!write(pipefd[1], "x", 1);
    std::string big(256u << 20, 'z');
    for (int i = 0; i < 64; ++i) store.put("models/m/model.pt", big);
    _exit(0);
  }
  close(pipefd[1]);
  char c;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  // Wait until a temporary file exists, i.e. the write is in flight.
  bool in_flight = false;
  for (int i = 0; i < 2000 && !in_flight; ++i) {
    for (auto& e : std::filesystem::directory_iterator(dir / "s/models/m")) {
      if (e.path().filename().string().rfind(".tmp-", 0) == 0) in_flight = true;
    }
    if (!in_flight) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(in_flight) << "the child never started writing";
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  // Either the old object or a complete new one (if a put finished before the kill).
  std::string content = store.get("models/m/model.pt");
  if (content != "old-complete-content") {
    EXPECT_EQ(content.size(), 256u << 20) << "a partial object became visible";
    EXPECT_EQ(content.find_first_not_of('z'), std::string::npos);
  }
  auto listed = store.list("models/");
  ASSERT_EQ(listed.size(), 1u) << "temporary files must not be listed";
  EXPECT_EQ(listed[0].key, "models/m/model.pt");
  EXPECT_EQ(listed[0].size, content.size());
}

}  // namespace
}  // namespace ddpipe::storage
