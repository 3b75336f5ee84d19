#include "k8s/local_pods.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "k8s/render.h"

namespace ddpipe::k8s {
namespace {

namespace fs = std::filesystem;

constexpr const char* kImagePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string base64_decode(const std::string& in, const std::string& what) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) core::fail_usage(what + ": not valid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// The keys of a Secret (data is base64, stringData plain) or a ConfigMap (data).
std::map<std::string, std::string> keys_of(const std::vector<Object>& objects,
                                           const std::string& kind, const std::string& name,
                                           const std::string& origin, bool optional) {
  for (const auto& o : objects) {
    if (o.value("kind", "") != kind ||
        o.value("metadata", Object::object()).value("name", "") != name) {
      continue;
    }
    std::map<std::string, std::string> out;
    const std::string where = kind + " " + name;
    const Object data = o.value("data", Object::object());
    for (auto it = data.begin(); it != data.end(); ++it) {
      const std::string text = it->is_string() ? it->get<std::string>() : it->dump();
      out[it.key()] = kind == "Secret" ? base64_decode(text, where + " key " + it.key()) : text;
    }
    const Object string_data = o.value("stringData", Object::object());
    for (auto it = string_data.begin(); it != string_data.end(); ++it) {
      out[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
    }
    return out;
  }
  if (optional) return {};
  core::fail_usage(origin + ": the job references " + kind + " '" + name +
                   "', which is not in the file (render it into the same stream)");
}

std::string key_of(const std::vector<Object>& objects, const std::string& kind, const Object& ref,
                   const std::string& origin) {
  const std::string name = ref.value("name", "");
  const std::string key = ref.value("key", "");
  auto keys = keys_of(objects, kind, name, origin, false);
  auto it = keys.find(key);
  if (it == keys.end()) {
    core::fail_usage(origin + ": " + kind + " '" + name + "' has no key '" + key + "'");
  }
  return it->second;
}

// Kubernetes' $(VAR) expansion: defined names are replaced, "$$" is "$", the rest stays.
std::string expand(const std::string& s, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '(') {
      const size_t close = s.find(')', i + 2);
      auto it = close == std::string::npos ? vars.end() : vars.find(s.substr(i + 2, close - i - 2));
      if (it == vars.end()) {
        out += s[i];
      } else {
        out += it->second;
        i = close;
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

// Rewrites a path in the pod's filesystem to the pod's folder.
class PathMap {
 public:
  void add(const std::string& pod_path, const fs::path& local) { map_[pod_path] = local; }
  std::string operator()(const std::string& s) const {
    const std::pair<const std::string, fs::path>* best = nullptr;
    for (const auto& entry : map_) {
      const std::string& p = entry.first;
      if ((s == p || (s.rfind(p + "/", 0) == 0)) && (!best || p.size() > best->first.size())) {
        best = &entry;
      }
    }
    return best ? best->second.string() + s.substr(best->first.size()) : s;
  }

 private:
  std::map<std::string, fs::path> map_;
};

void set_env(EnvList& env, const std::string& name, const std::string& value) {
  for (auto& [k, v] : env) {
    if (k == name) {
      v = value;
      return;
    }
  }
  env.emplace_back(name, value);
}

std::map<std::string, std::string> as_map(const EnvList& env) { return {env.begin(), env.end()}; }

std::string field_ref(const std::string& path, const LocalPod& pod, const JobPlan& plan,
                      const Object& pod_spec, const std::string& origin) {
  if (path == "metadata.name") return pod.name;
  if (path == "metadata.namespace")
    return plan.namespace_name.empty() ? "default" : plan.namespace_name;
  if (path == "status.podIP" || path == "status.podIPs") return pod.ip;
  if (path == "spec.serviceAccountName") return pod_spec.value("serviceAccountName", "default");
  core::fail_usage(origin + ": fieldRef " + path +
                   " cannot be resolved locally (supported: "
                   "metadata.name, metadata.namespace, status.podIP, spec.serviceAccountName)");
}

void add_volume(const Object& volume, const Object& mount, const fs::path& local,
                const std::vector<Object>& objects, const std::string& origin, LocalPod& pod) {
  const std::string name = volume.value("name", "");
  const std::string sub = mount.value("subPath", "");
  auto write_keys = [&](const std::map<std::string, std::string>& keys, const Object& source) {
    std::map<std::string, std::string> files;
    if (source.contains("items")) {
      for (const auto& item : source["items"]) {
        auto it = keys.find(item.value("key", ""));
        if (it == keys.end())
          core::fail_usage(origin + ": volume " + name + ": no key " + item.dump());
        files[item.value("path", it->first)] = it->second;
      }
    } else {
      files = keys;
    }
    if (!sub.empty()) {
      auto it = files.find(sub);
      if (it == files.end()) core::fail_usage(origin + ": volume " + name + ": no key " + sub);
      pod.files.emplace_back(local, it->second);
      return;
    }
    pod.dirs.push_back(local);
    for (const auto& [path, text] : files) pod.files.emplace_back(local / path, text);
  };
  if (volume.contains("configMap")) {
    const Object& s = volume["configMap"];
    write_keys(
        keys_of(objects, "ConfigMap", s.value("name", ""), origin, s.value("optional", false)), s);
  } else if (volume.contains("secret")) {
    const Object& s = volume["secret"];
    write_keys(
        keys_of(objects, "Secret", s.value("secretName", ""), origin, s.value("optional", false)),
        s);
  } else if (volume.contains("emptyDir")) {
    pod.dirs.push_back(local);
  } else {
    core::fail_usage(origin + ": volume " + name +
                     " cannot be provided locally (supported: "
                     "configMap, secret, emptyDir)");
  }
}

}  // namespace

std::vector<LocalPod> local_pods(const std::vector<Object>& objects, const std::string& origin,
                                 const fs::path& root, const std::vector<std::string>& pod_ips,
                                 const std::string& ddpipe_binary) {
  const JobPlan plan = plan_pytorchjob(find_pytorchjob(objects, origin));
  if (pod_ips.size() != plan.pods.size()) {
    core::fail_usage("local_pods: " + std::to_string(plan.pods.size()) + " pods but " +
                     std::to_string(pod_ips.size()) + " addresses");
  }
  std::vector<LocalPod> out;
  for (size_t i = 0; i < plan.pods.size(); ++i) {
    const ReplicaPod& replica = plan.pods[i];
    LocalPod pod;
    pod.name = replica.name;
    pod.rank = replica.rank;
    pod.ip = pod_ips[i];
    pod.root = root / replica.name;
    const std::string where = origin + " (pod " + pod.name + ")";
    Object container;
    for (const auto& c : replica.pod_spec["containers"]) {
      if (c.value("name", "") == "pytorch") container = c;
    }

    PathMap paths;
    auto local_of = [&](const std::string& pod_path) {
      return pod.root / fs::path(pod_path).relative_path();
    };
    paths.add(kImageHome, local_of(kImageHome));
    pod.dirs.push_back(local_of(kImageHome));
    const Object volumes = replica.pod_spec.value("volumes", Object::array());
    for (const auto& m : container.value("volumeMounts", Object::array())) {
      const std::string path = m.value("mountPath", "");
      const Object* volume = nullptr;
      for (const auto& v : volumes) {
        if (v.value("name", "") == m.value("name", "")) volume = &v;
      }
      if (!volume) core::fail_usage(where + ": volumeMount " + m.dump() + " names no volume");
      add_volume(*volume, m, local_of(path), objects, where, pod);
      paths.add(path, local_of(path));
    }

    // Env: image, Kubernetes, the container's, the operator's.
    set_env(pod.env, "PATH", kImagePath);
    set_env(pod.env, "HOSTNAME", pod.name);
    set_env(pod.env, "HOME", kImageHome);
    for (const auto& from : container.value("envFrom", Object::array())) {
      const std::string prefix = from.value("prefix", "");
      const bool secret = from.contains("secretRef");
      const Object& ref = secret ? from["secretRef"] : from.value("configMapRef", Object::object());
      for (const auto& [k, v] :
           keys_of(objects, secret ? "Secret" : "ConfigMap", ref.value("name", ""), where,
                   ref.value("optional", false))) {
        set_env(pod.env, prefix + k, v);
      }
    }
    for (const auto& e : container.value("env", Object::array())) {
      const std::string name = e.value("name", "");
      if (e.contains("valueFrom")) {
        const Object& from = e["valueFrom"];
        if (from.contains("secretKeyRef")) {
          set_env(pod.env, name, key_of(objects, "Secret", from["secretKeyRef"], where));
        } else if (from.contains("configMapKeyRef")) {
          set_env(pod.env, name, key_of(objects, "ConfigMap", from["configMapKeyRef"], where));
        } else if (from.contains("fieldRef")) {
          set_env(pod.env, name,
                  field_ref(from["fieldRef"].value("fieldPath", ""), pod, plan, replica.pod_spec,
                            where));
        } else {
          core::fail_usage(where + ": env " + name + ": " + from.dump() +
                           " cannot be resolved locally");
        }
      } else {
        set_env(pod.env, name, expand(e.value("value", ""), as_map(pod.env)));
      }
    }
    for (const auto& [k, v] : replica.operator_env) set_env(pod.env, k, v);
    for (auto& [k, v] : pod.env) v = paths(v);

    // Command: the image's entrypoint when none is given.
    const auto vars = as_map(pod.env);
    Object command = container.value("command", Object::array());
    if (command.empty()) command.push_back(kImageBinary);
    for (const auto& part : {command, container.value("args", Object::array())}) {
      for (const auto& a : part) {
        pod.argv.push_back(paths(expand(a.is_string() ? a.get<std::string>() : a.dump(), vars)));
      }
    }
    const std::string& exe = pod.argv[0];
    if (exe == kImageBinary || exe == "ddpipe") pod.argv[0] = ddpipe_binary;
    pod.workdir = local_of(container.value("workingDir", std::string(kImageHome)));
    out.push_back(std::move(pod));
  }
  return out;
}

namespace {

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

int status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Runs a command and returns its exit code (127 when it cannot be executed).
int run(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status_to_code(status);
}

void run_or_fail(const std::vector<std::string>& argv) {
  if (run(argv) == 0) return;
  std::string line;
  for (auto& a : argv) line += (line.empty() ? "" : " ") + a;
  core::fail_usage("launch: `" + line + "` failed (is iproute2 installed, are you root?)");
}

// The first 10.233.N.0/24 that no local address is in.
int free_subnet() {
  std::set<int> used;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      uint32_t a = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
      if ((a >> 16) == ((10u << 8) | 233u)) used.insert(static_cast<int>((a >> 8) & 0xff));
    }
    freeifaddrs(list);
  }
  for (int n = 0; n < 256; ++n) {
    if (!used.count(n)) return n;
  }
  core::fail_usage("launch: every 10.233.N.0/24 is in use on this machine");
}

// The bridge of kBridge, deleted with this object.
class Bridge {
 public:
  Bridge(std::string name, std::string cidr) : name_(std::move(name)) {
    run_or_fail({"ip", "link", "add", name_, "type", "bridge"});
    created_ = true;
    run_or_fail({"ip", "addr", "add", cidr, "dev", name_});
    run_or_fail({"ip", "link", "set", name_, "up"});
  }
  ~Bridge() {
    if (created_) run({"ip", "link", "del", name_});
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool created_ = false;
};

// Started pods; any still running when this goes away are killed and reaped.
class PodGroup {
 public:
  ~PodGroup() {
    for (auto& [pid, name] : pods_) ::kill(pid, SIGKILL);
    for (auto& [pid, name] : pods_) ::waitpid(pid, nullptr, 0);
  }
  void add(pid_t pid, const std::string& name) { pods_[pid] = name; }
  std::map<pid_t, std::string>& pods() { return pods_; }

 private:
  std::map<pid_t, std::string> pods_;
};

[[noreturn]] void child_fail(const std::string& pod, const std::string& what) {
  const std::string m = "launch: pod " + pod + ": " + what + ": " + std::strerror(errno) + "\n";
  (void)!::write(2, m.data(), m.size());
  ::_exit(126);
}

bool write_proc(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

struct ChildSetup {
  const LocalPod* pod;
  fs::path hosts;
  bool bridge = false;
  std::string cidr;     // the pod's address/24
  std::string gateway;  // the bridge's address
  int ready_fd = -1;    // child → parent: namespaces exist
  int go_fd = -1;       // parent → child: eth0 is in place
};

// In the forked child: namespaces, network, hosts file, hostname, then exec. Never returns.
[[noreturn]] void become_pod(const ChildSetup& s, const std::vector<char*>& argv,
                             const std::vector<char*>& envp) {
  const std::string& name = s.pod->name;
  int flags = CLONE_NEWNS | CLONE_NEWUTS | (s.bridge ? CLONE_NEWNET : 0);
  if (::geteuid() != 0) {
    const std::string uid = std::to_string(::geteuid()), gid = std::to_string(::getegid());
    if (::unshare(CLONE_NEWUSER) != 0) {
      child_fail(name, "a user namespace is needed to run pods without root (unshare)");
    }
    if (!write_proc("/proc/self/setgroups", "deny") ||
        !write_proc("/proc/self/uid_map", uid + " " + uid + " 1") ||
        !write_proc("/proc/self/gid_map", gid + " " + gid + " 1")) {
      child_fail(name, "mapping the user namespace");
    }
  }
  if (::unshare(flags) != 0) child_fail(name, "creating the pod's namespaces (unshare)");
  if (s.bridge) {
    char byte = 1;
    if (::write(s.ready_fd, &byte, 1) != 1 || ::read(s.go_fd, &byte, 1) != 1) {
      child_fail(name, "waiting for the pod network");
    }
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"ip", "link", "set", "lo", "up"},
             {"ip", "addr", "add", s.cidr, "dev", "eth0"},
             {"ip", "link", "set", "eth0", "up"},
             {"ip", "route", "add", "default", "via", s.gateway}}) {
      if (run(cmd) != 0) child_fail(name, "configuring eth0 (" + cmd[1] + " " + cmd[2] + ")");
    }
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    child_fail(name, "making the mount namespace private");
  }
  if (::mount(s.hosts.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
    child_fail(name, "bind-mounting the pod's hosts file on /etc/hosts");
  }
  if (::sethostname(name.data(), name.size()) != 0) child_fail(name, "sethostname");
  if (::chdir(s.pod->workdir.c_str()) != 0) child_fail(name, "chdir " + s.pod->workdir.string());
  if (argv[0][0] == '/') {
    ::execve(argv[0], argv.data(), envp.data());
  } else {
    ::execvpe(argv[0], argv.data(), envp.data());
  }
  child_fail(name, std::string("cannot execute ") + argv[0]);
}

}  // namespace

int run_pytorchjob_locally(const std::string& manifest_file, const LocalJobOptions& o) {
  if (!fs::is_regular_file(manifest_file)) {
    core::fail_usage("--from-pytorchjob " + manifest_file +
                     ": no such file (render one with "
                     "`ddpipe k8s render`)");
  }
  const std::vector<Object> objects =
      parse_manifests(core::read_file(manifest_file), manifest_file);
  const JobPlan plan = plan_pytorchjob(find_pytorchjob(objects, manifest_file));
  const bool bridge = o.network == PodNetwork::kBridge;
  if (bridge && ::geteuid() != 0) {
    core::fail_usage("launch --pod-network bridge: needs root (network namespaces, veth, bridge)");
  }
  if (bridge && plan.pods.size() > 250) core::fail_usage("launch: at most 250 pods on a bridge");

  const int subnet = bridge ? free_subnet() : 0;
  const std::string prefix = "10.233." + std::to_string(subnet) + ".";
  std::vector<std::string> ips;
  for (size_t i = 0; i < plan.pods.size(); ++i) {
    ips.push_back(bridge ? prefix + std::to_string(i + 2) : "127.0.0.1");
  }
  const fs::path root = core::make_temp_dir("ddpipe-pods");
  struct RemoveRoot {
    fs::path path;
    ~RemoveRoot() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } remove_root{root};
  const std::vector<LocalPod> pods = local_pods(objects, manifest_file, root, ips, o.ddpipe_binary);

  // /etc/hosts of every pod: the machine's entries and the job's pods (their Services' names).
  std::string hosts = core::read_file("/etc/hosts");
  hosts += "\n# ddpipe launch --from-pytorchjob: the pods of " + plan.name + "\n";
  const std::string ns = plan.namespace_name.empty() ? "default" : plan.namespace_name;
  auto names = [&](const std::string& name) {
    return name + " " + name + "." + ns + " " + name + "." + ns + ".svc " + name + "." + ns +
           ".svc.cluster.local\n";
  };
  for (const auto& p : pods) hosts += p.ip + "\t" + names(p.name);
  // The file's other Services (MinIO, ...) are this machine: run or port-forward them here.
  const std::string host_ip = bridge ? prefix + "1" : "127.0.0.1";
  for (const auto& svc : of_kind(objects, "Service")) {
    hosts += host_ip + "\t" + names(svc["metadata"].value("name", ""));
  }
  for (const auto& p : pods) {
    for (const auto& d : p.dirs) fs::create_directories(d);
    for (const auto& [path, text] : p.files) {
      fs::create_directories(path.parent_path());
      core::write_file_atomic(path, text);
    }
    core::write_file_atomic(p.root / "etc-hosts", hosts);
  }

  std::unique_ptr<Bridge> br;
  if (bridge) {
    br =
        std::make_unique<Bridge>("ddpbr" + std::to_string(::getpid() % 100000000), prefix + "1/24");
  }
  core::log::info("launch", "starting the pods of PyTorchJob " + plan.name,
                  {{"pods", pods.size()},
                   {"world_size", plan.world_size},
                   {"master", plan.master_addr + ":" + std::to_string(plan.master_port)},
                   {"network", bridge ? "bridge " + br->name() + " " + prefix + "0/24" : "host"}});

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  struct RestoreSignals {
    struct sigaction i, t;
    ~RestoreSignals() {
      sigaction(SIGINT, &i, nullptr);
      sigaction(SIGTERM, &t, nullptr);
      g_signal = 0;
    }
  } restore{old_int, old_term};

  PodGroup group;
  for (size_t i = 0; i < pods.size(); ++i) {
    const LocalPod& p = pods[i];
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : p.env) env_strings.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    for (const auto& a : p.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    int ready[2] = {-1, -1}, go[2] = {-1, -1};
    if (bridge && (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0)) {
      core::fail_storage(std::string("pipe: ") + std::strerror(errno));
    }
    ChildSetup setup{&p, p.root / "etc-hosts", bridge, p.ip + "/24", prefix + "1", ready[1], go[0]};
    pid_t pid = ::fork();
    if (pid < 0) core::fail_storage(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) become_pod(setup, argv, envp);
    group.add(pid, p.name);
    if (bridge) {
      ::close(ready[1]);
      ::close(go[0]);
      char byte = 0;
      const bool unshared = ::read(ready[0], &byte, 1) == 1;
      ::close(ready[0]);
      if (unshared) {
        const std::string veth =
            "ddpv" + std::to_string(::getpid() % 1000000) + "-" + std::to_string(i);
        run_or_fail({"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns",
                     std::to_string(pid)});
        run_or_fail({"ip", "link", "set", veth, "master", br->name(), "up"});
        (void)!::write(go[1], &byte, 1);
      }
      ::close(go[1]);
    }
    core::log::info("launch", "pod started",
                    {{"pod", p.name}, {"rank", p.rank}, {"ip", p.ip}, {"pid", pid}});
  }

  // Wait; the first failure stops the others.
  int code = 0;
  std::string failed;
  bool stopping = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  auto stop_all = [&](int sig) {
    for (auto& [pid, name] : group.pods()) ::kill(pid, sig);
    if (!stopping) {
      stopping = true;
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds * 1000));
    }
  };
  while (!group.pods().empty()) {
    if (g_signal && !stopping) {
      core::log::warn("launch", "signal received; stopping every pod");
      code = 128 + g_signal;
      stop_all(g_signal);
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      auto it = group.pods().find(pid);
      if (it == group.pods().end()) continue;
      const std::string name = it->second;
      group.pods().erase(it);
      const int c = status_to_code(status);
      core::log::info("launch", "pod exited", {{"pod", name}, {"exit_code", c}});
      if (c != 0 && !stopping) {
        code = c;
        failed = name;
        core::log::error("launch", "pod " + name + " failed with exit code " + std::to_string(c) +
                                       "; stopping the other pods");
        stop_all(SIGTERM);
      }
      continue;
    }
    if (stopping && std::chrono::steady_clock::now() > deadline) {
      stop_all(SIGKILL);
      deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (code == 0) {
    core::log::info("launch", "every pod of " + plan.name + " succeeded");
  } else {
    core::log::error("launch", "PyTorchJob " + plan.name + " failed",
                     {{"exit_code", code}, {"failed_pod", failed}});
  }
  return code;
}

}  // namespace ddpipe::k8s
