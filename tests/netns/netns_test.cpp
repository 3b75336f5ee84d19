#include "netns/netns.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace ddpipe::netns {
namespace {

TEST(Subnet, NamesItsAddresses) {
  const Subnet s{7};
  EXPECT_EQ(s.address(1), "10.233.7.1");
  EXPECT_EQ(s.cidr(2), "10.233.7.2/24");
  EXPECT_EQ(s.network(), "10.233.7.0/24");
}

TEST(Subnet, FirstOneNoAddressIsIn) {
  EXPECT_EQ(first_free_subnet({}).n, 0);
  EXPECT_EQ(first_free_subnet({"127.0.0.1", "10.0.0.5", "192.168.1.2"}).n, 0);
  EXPECT_EQ(first_free_subnet({"10.233.0.1"}).n, 1);
  EXPECT_EQ(first_free_subnet({"10.233.0.1", "10.233.1.200", "10.233.3.4"}).n, 2);
  // Only 10.233.0.0/16 counts; what is not a dotted IPv4 address is ignored.
  EXPECT_EQ(first_free_subnet({"10.234.0.1", "11.233.0.1", "fe80::1", "10.233.0", "x"}).n, 0);
}

TEST(Subnet, EveryOneTakenIsAUsageError) {
  std::vector<std::string> all;
  for (int n = 0; n < 256; ++n) all.push_back("10.233." + std::to_string(n) + ".1");
  EXPECT_EQ(first_free_subnet({all.begin(), all.end() - 1}).n, 255);
  try {
    first_free_subnet(all);
    FAIL() << "no subnet is free";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("10.233.N.0/24"), std::string::npos) << e.what();
  }
}

TEST(Subnet, FreeOneIsNotThisMachines) {
  const std::vector<std::string> mine = local_addresses();
  const Subnet s = free_subnet();
  for (const auto& a : mine) {
    EXPECT_NE(a.rfind("10.233." + std::to_string(s.n) + ".", 0), 0u) << a;
  }
}

TEST(Run, ReturnsTheExitCode) {
  EXPECT_EQ(run({"true"}), 0);
  EXPECT_EQ(run({"sh", "-c", "exit 3"}), 3);
  EXPECT_EQ(run({"sh", "-c", "kill -TERM $$"}), 128 + 15);
  EXPECT_EQ(run({"/nonexistent/ddpipe-no-such-command"}), 127);
}

TEST(Run, FailureIsASystemErrorNamingTheCommand) {
  EXPECT_NO_THROW(run_or_fail({"true"}));
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"false"}, {"/nonexistent/ddpipe-no-such-command", "link"}}) {
    try {
      run_or_fail(argv);
      FAIL() << argv[0];
    } catch (const core::Error& e) {
      EXPECT_EQ(e.kind(), core::ErrorKind::kSystem);
      EXPECT_NE(std::string(e.what()).find("`" + argv[0]), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ddpipe::netns
