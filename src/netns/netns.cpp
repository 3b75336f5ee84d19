#include "netns/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "core/error.h"

namespace ddpipe::netns {
namespace {

int status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  return line;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

std::string Subnet::address(int host) const {
  return "10.233." + std::to_string(n) + "." + std::to_string(host);
}
std::string Subnet::cidr(int host) const { return address(host) + "/24"; }
std::string Subnet::network() const { return cidr(0); }

Subnet first_free_subnet(const std::vector<std::string>& addresses) {
  std::set<int> used;
  for (const auto& text : addresses) {
    in_addr a{};
    if (::inet_pton(AF_INET, text.c_str(), &a) != 1) continue;
    const uint32_t host = ntohl(a.s_addr);
    if ((host >> 16) == ((10u << 8) | 233u)) used.insert(static_cast<int>((host >> 8) & 0xff));
  }
  for (int n = 0; n < 256; ++n) {
    if (!used.count(n)) return Subnet{n};
  }
  core::fail_usage("netns: every 10.233.N.0/24 is in use on this machine");
}

std::vector<std::string> local_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* sa = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &sa->sin_addr, text, sizeof text)) out.emplace_back(text);
  }
  ::freeifaddrs(list);
  return out;
}

Subnet free_subnet() { return first_free_subnet(local_addresses()); }

int run(const std::vector<std::string>& argv) noexcept {
  std::vector<char*> args;
  try {
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  } catch (...) {
    return 127;
  }
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status_to_code(status);
}

void run_or_fail(const std::vector<std::string>& argv) {
  const int code = run(argv);
  if (code == 0) return;
  const std::string line = "`" + command_line(argv) + "`";
  if (code < 0) core::fail_system("netns: running " + line);
  throw core::Error(core::ErrorKind::kSystem,
                    "netns: " + line + " failed with exit code " + std::to_string(code) +
                        (code == 127 ? " (is iproute2 installed?)" : " (are you root?)"));
}

Bridge::Bridge(std::string name, const std::string& cidr) : name_(std::move(name)) {
  run_or_fail({"ip", "link", "add", name_, "type", "bridge"});
  created_ = true;
  run_or_fail({"ip", "addr", "add", cidr, "dev", name_});
  run_or_fail({"ip", "link", "set", name_, "up"});
}

Bridge::~Bridge() {
  if (created_) run({"ip", "link", "del", name_});
}

ChildLink::ChildLink() {
  if (::pipe2(ready_, O_CLOEXEC) != 0 || ::pipe2(go_, O_CLOEXEC) != 0) {
    const int error = errno;
    close_fd(ready_[0]);
    close_fd(ready_[1]);
    errno = error;
    core::fail_system("netns: pipe");
  }
}

ChildLink::~ChildLink() {
  for (int* fd : {&ready_[0], &ready_[1], &go_[0], &go_[1]}) close_fd(*fd);
}

std::string ChildLink::in_child(const std::string& cidr, const std::string& gateway) noexcept {
  char byte = 1;
  if (::write(ready_[1], &byte, 1) != 1 || ::read(go_[0], &byte, 1) != 1) {
    return "waiting for the pod network";
  }
  try {
    for (const auto& cmd :
         std::vector<std::vector<std::string>>{{"ip", "link", "set", "lo", "up"},
                                               {"ip", "addr", "add", cidr, "dev", "eth0"},
                                               {"ip", "link", "set", "eth0", "up"},
                                               {"ip", "route", "add", "default", "via", gateway}}) {
      if (run(cmd) != 0) return "configuring eth0 (" + cmd[1] + " " + cmd[2] + ")";
    }
  } catch (...) {
    return "configuring eth0";
  }
  return "";
}

void ChildLink::in_parent(pid_t child, const std::string& host_end, const Bridge& bridge) {
  close_fd(ready_[1]);
  close_fd(go_[0]);
  char byte = 0;
  const bool unshared = ::read(ready_[0], &byte, 1) == 1;
  close_fd(ready_[0]);
  if (unshared) {
    run_or_fail({"ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns",
                 std::to_string(child)});
    run_or_fail({"ip", "link", "set", host_end, "master", bridge.name(), "up"});
    (void)!::write(go_[1], &byte, 1);
  }
  close_fd(go_[1]);
}

}  // namespace ddpipe::netns
