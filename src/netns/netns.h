// ddpipe::netns — making local processes look like hosts of their own network: a bridge with an
// address on this machine, and for each child process a veth pair whose one end is moved into
// the child's network namespace, where it becomes `eth0` with an address on the bridge's /24
// and a default route through the bridge. Addresses come from the first 10.233.N.0/24 that no
// local address is in.
//
// The links are made with iproute2's `ip` and need root (CAP_NET_ADMIN). Failures throw
// core::Error(kSystem) naming the command, except where stated. A child's namespace and its
// eth0 go when the child exits (the host end of the veth with them); the bridge goes with its
// Bridge object. Nothing here is thread-safe; no libtorch.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ddpipe::netns {

// 10.233.n.0/24.
struct Subnet {
  int n = 0;
  std::string address(int host) const;  // "10.233.n.<host>"
  std::string cidr(int host) const;     // "10.233.n.<host>/24"
  std::string network() const;          // "10.233.n.0/24"
};

// The first 10.233.N.0/24 (N = 0…255) that none of `addresses` (dotted IPv4; anything else is
// ignored) is in. Throws core::Error(kUsage) when every one is taken.
Subnet first_free_subnet(const std::vector<std::string>& addresses);
// The IPv4 addresses of this machine's interfaces (getifaddrs), dotted; empty when they cannot
// be listed.
std::vector<std::string> local_addresses();
// first_free_subnet(local_addresses()).
Subnet free_subnet();

// Runs `argv` (argv[0] looked up on the PATH) and waits for it. Returns its exit code, 128 + N
// when it was killed by signal N, 127 when it could not be executed, -1 when fork failed (errno
// says why). Never throws: also usable in a forked child.
int run(const std::vector<std::string>& argv) noexcept;
// run(), throwing core::Error(kSystem) naming the command unless it exits 0.
void run_or_fail(const std::vector<std::string>& argv);

// A Linux bridge named `name` (at most 15 characters), up, with address `cidr`; deleted with
// this object (errors then are ignored).
class Bridge {
 public:
  Bridge(std::string name, const std::string& cidr);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool created_ = false;
};

// eth0 for one forked child, in two halves that meet through two pipes: the child must have
// its own network namespace before the parent can move the veth's end into it, and must wait for
// that before configuring it. Create before fork(); then the child calls in_child() after
// unshare(CLONE_NEWNET) and the parent calls in_parent() with the child's pid. The pipes are
// close-on-exec.
class ChildLink {
 public:
  ChildLink();  // throws core::Error(kSystem) when the pipes cannot be made
  ~ChildLink();
  ChildLink(const ChildLink&) = delete;
  ChildLink& operator=(const ChildLink&) = delete;

  // Child side: tells the parent the namespace exists, waits for eth0, then brings lo and eth0
  // up with `cidr` and a default route via `gateway`. Returns "" or what failed (errno set);
  // never throws.
  std::string in_child(const std::string& cidr, const std::string& gateway) noexcept;
  // Parent side: waits for the child's namespace, creates the veth pair `host_end` ↔ eth0 in
  // the namespace of `child`, attaches `host_end` to `bridge` and lets the child go on. When the
  // child ends before its namespace exists, does nothing (the caller sees it exit).
  void in_parent(pid_t child, const std::string& host_end, const Bridge& bridge);

 private:
  int ready_[2] = {-1, -1};  // child → parent: the namespace exists
  int go_[2] = {-1, -1};     // parent → child: eth0 is in place
};

}  // namespace ddpipe::netns
