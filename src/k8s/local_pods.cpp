#include "k8s/local_pods.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "core/base64.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "k8s/render.h"
#include "netns/netns.h"
#include "supervisor/supervisor.h"

namespace ddpipe::k8s {
namespace {

namespace fs = std::filesystem;

constexpr const char* kImagePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// A Secret's value: core::base64_decode, its errors named after the Secret key.
std::string secret_value(const std::string& in, const std::string& what) {
  try {
    return core::base64_decode(in);
  } catch (const core::Error& e) {
    core::fail_usage(what + ": not valid base64 (" + e.what() + ")");
  }
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
      out[it.key()] = kind == "Secret" ? secret_value(text, where + " key " + it.key()) : text;
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
  if (path == "metadata.annotations['batch.kubernetes.io/job-completion-index']" &&
      !plan.subdomain.empty()) {
    return std::to_string(pod.rank);  // a TrainJob's node i is index i of its Indexed Job
  }
  core::fail_usage(origin + ": fieldRef " + path +
                   " cannot be resolved locally (supported: "
                   "metadata.name, metadata.namespace, status.podIP, spec.serviceAccountName, and "
                   "a TrainJob pod's job-completion-index annotation)");
}

// `path` (relative, or absolute inside the pod) below `dir`. Throws core::Error(kUsage) naming
// `what` when a ".." in it would leave `dir`: files are written there (Kubernetes refuses such
// paths too).
fs::path inside(const fs::path& dir, const std::string& path, const std::string& what) {
  const fs::path rel = fs::path(path).relative_path();
  for (const fs::path& part : rel) {
    if (part == "..") core::fail_usage(what + ": path '" + path + "' leaves the pod's folder (..)");
  }
  return dir / rel;
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
    for (const auto& [path, text] : files) {
      pod.files.emplace_back(inside(local, path, origin + ": volume " + name), text);
    }
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

// The pod's volumes, mounted where its container mounts them; each mount path maps to its
// folder in `paths`.
void mount_volumes(const ReplicaPod& replica, const Object& container,
                   const std::vector<Object>& objects, const std::string& where, LocalPod& pod,
                   PathMap& paths) {
  auto local_of = [&](const std::string& pod_path) {
    return inside(pod.root, pod_path, where + ": volumeMounts");
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
}

// Env: image, Kubernetes, the container's, the operator's; paths rewritten to the pod's folder.
void set_pod_env(const ReplicaPod& replica, const Object& container, const JobPlan& plan,
                 const std::vector<Object>& objects, const std::string& where, const PathMap& paths,
                 LocalPod& pod) {
  set_env(pod.env, "PATH", kImagePath);
  set_env(pod.env, "HOSTNAME", pod.name);
  set_env(pod.env, "HOME", kImageHome);
  for (const auto& from : container.value("envFrom", Object::array())) {
    const std::string prefix = from.value("prefix", "");
    const bool secret = from.contains("secretRef");
    const Object& ref = secret ? from["secretRef"] : from.value("configMapRef", Object::object());
    for (const auto& [k, v] : keys_of(objects, secret ? "Secret" : "ConfigMap",
                                      ref.value("name", ""), where, ref.value("optional", false))) {
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
        set_env(
            pod.env, name,
            field_ref(from["fieldRef"].value("fieldPath", ""), pod, plan, replica.pod_spec, where));
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
}

// Command and working directory: the image's entrypoint when no command is given.
void set_command(const Object& container, const PathMap& paths, const std::string& ddpipe_binary,
                 LocalPod& pod) {
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
  const std::string workdir = container.value("workingDir", std::string(kImageHome));
  pod.workdir = inside(pod.root, workdir, "workingDir");
}

// local_pods, whose json errors it turns into usage errors.
std::vector<LocalPod> prepare_pods(const std::vector<Object>& objects, const std::string& origin,
                                   const fs::path& root, const std::vector<std::string>& pod_ips,
                                   const std::string& ddpipe_binary, JobKind kind) {
  const JobPlan plan = plan_job(objects, origin, kind);
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
      if (c.value("name", "") == plan.container) container = c;
    }
    PathMap paths;
    mount_volumes(replica, container, objects, where, pod, paths);
    set_pod_env(replica, container, plan, objects, where, paths, pod);
    set_command(container, paths, ddpipe_binary, pod);
    out.push_back(std::move(pod));
  }
  return out;
}

}  // namespace

std::vector<LocalPod> local_pods(const std::vector<Object>& objects, const std::string& origin,
                                 const fs::path& root, const std::vector<std::string>& pod_ips,
                                 const std::string& ddpipe_binary, JobKind kind) {
  try {
    return prepare_pods(objects, origin, root, pod_ips, ddpipe_binary, kind);
  } catch (const nlohmann::json::exception& e) {
    core::fail_usage(origin + ": a field of the job has the wrong type (" + e.what() + ")");
  }
}

namespace {

// What a kubelet gives the pods to stop after SIGTERM: the longest terminationGracePeriodSeconds
// of the job's pods (Kubernetes' default, 30 s, where a pod spec has none).
double termination_grace_seconds(const JobPlan& plan) {
  constexpr double kKubernetesDefault = 30.0;
  double longest = 0.0;
  for (const ReplicaPod& pod : plan.pods) {
    longest =
        std::max(longest, pod.pod_spec.value("terminationGracePeriodSeconds", kKubernetesDefault));
  }
  return longest;
}

// A pod that cannot be set up exits with the system error code (6), saying why on stderr.
[[noreturn]] void child_fail(const std::string& pod, const std::string& what) {
  const std::string m = "launch: pod " + pod + ": " + what + ": " + std::strerror(errno) + "\n";
  (void)!::write(2, m.data(), m.size());
  ::_exit(core::exit_code(core::ErrorKind::kSystem));
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
  netns::ChildLink* link = nullptr;  // kBridge: eth0 comes through it
  std::string cidr;                  // the pod's address/24
  std::string gateway;               // the bridge's address
};

// Without root: a user namespace that maps the caller's own uid and gid.
void enter_user_namespace(const std::string& name) {
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

// In the forked child, before the supervisor executes the pod's command: namespaces, network,
// hosts file, hostname, working directory. Exits (child_fail) when one cannot be made.
void become_pod(const ChildSetup& s) {
  const std::string& name = s.pod->name;
  int flags = CLONE_NEWNS | CLONE_NEWUTS | (s.link ? CLONE_NEWNET : 0);
  if (::geteuid() != 0) enter_user_namespace(name);
  if (::unshare(flags) != 0) child_fail(name, "creating the pod's namespaces (unshare)");
  if (s.link) {
    const std::string failed = s.link->in_child(s.cidr, s.gateway);
    if (!failed.empty()) child_fail(name, failed);
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    child_fail(name, "making the mount namespace private");
  }
  if (::mount(s.hosts.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
    child_fail(name, "bind-mounting the pod's hosts file on /etc/hosts");
  }
  if (::sethostname(name.data(), name.size()) != 0) child_fail(name, "sethostname");
  if (::chdir(s.pod->workdir.c_str()) != 0) child_fail(name, "chdir " + s.pod->workdir.string());
}

// The job of a manifest file, checked against what can run here.
JobPlan load_job(const std::string& manifest_file, const std::vector<Object>& objects, bool bridge,
                 JobKind kind) {
  const JobPlan plan = plan_job(objects, manifest_file, kind);
  if (bridge && ::geteuid() != 0) {
    core::fail_usage("launch --pod-network bridge: needs root (network namespaces, veth, bridge)");
  }
  if (bridge && plan.pods.size() > 250) core::fail_usage("launch: at most 250 pods on a bridge");
  return plan;
}

// /etc/hosts of every pod: the machine's entries and the job's pods (their Services' names, or
// their names in the subdomain); the file's other Services (MinIO, ...) are this machine, at
// `host_ip`: run or port-forward them here.
std::string hosts_file(const JobPlan& plan, const std::vector<LocalPod>& pods,
                       const std::vector<Object>& objects, const std::string& host_ip) {
  std::string hosts = core::read_file("/etc/hosts");
  hosts += "\n# ddpipe launch: the pods of " + plan.kind + " " + plan.name + "\n";
  const std::string ns = plan.namespace_name.empty() ? "default" : plan.namespace_name;
  auto names = [&](const std::string& name) {
    return name + " " + name + "." + ns + " " + name + "." + ns + ".svc " + name + "." + ns +
           ".svc.cluster.local\n";
  };
  for (const auto& p : pods) {
    hosts += p.ip + "\t" + (plan.subdomain.empty() ? "" : p.name + " ") +
             names(plan.subdomain.empty() ? p.name : p.name + "." + plan.subdomain);
  }
  for (const auto& svc : of_kind(objects, "Service")) {
    hosts += host_ip + "\t" + names(svc.value("metadata", Object::object()).value("name", ""));
  }
  return hosts;
}

// Every pod's folders, volume files and hosts file.
void write_pod_files(const std::vector<LocalPod>& pods, const std::string& hosts) {
  for (const auto& p : pods) {
    for (const auto& d : p.dirs) fs::create_directories(d);
    for (const auto& [path, text] : p.files) {
      fs::create_directories(path.parent_path());
      core::write_file_atomic(path, text);
    }
    core::write_file_atomic(p.root / "etc-hosts", hosts);
  }
}

// Starts pod `index` of the job in `group` (its command executed on the pod's PATH); with a
// bridge, gives it eth0 on it. Returns its pid.
pid_t start_pod(supervisor::Group& group, const LocalPod& p, size_t index,
                const netns::Bridge* bridge, const netns::Subnet& subnet) {
  std::unique_ptr<netns::ChildLink> link;
  if (bridge) link = std::make_unique<netns::ChildLink>();
  const ChildSetup setup{&p, p.root / "etc-hosts", link.get(), p.ip + "/24", subnet.address(1)};
  supervisor::ChildSpec spec;
  spec.name = "pod " + p.name;
  spec.argv = p.argv;
  spec.env = p.env;
  spec.inherit_env = false;
  spec.in_child = [&setup] { become_pod(setup); };
  const pid_t pid = group.start(spec);
  if (link) {
    const std::string veth =
        "ddpv" + std::to_string(::getpid() % 1000000) + "-" + std::to_string(index);
    link->in_parent(pid, veth, *bridge);
  }
  return pid;
}

}  // namespace

int run_job_locally(const std::string& manifest_file, const LocalJobOptions& o) {
  if (!fs::is_regular_file(manifest_file)) {
    core::fail_usage(
        std::string(o.kind == JobKind::kTrainJob ? "--from-trainjob " : "--from-pytorchjob ") +
        manifest_file + ": no such file (render one with `ddpipe k8s render`)");
  }
  const std::vector<Object> objects =
      parse_manifests(core::read_file(manifest_file), manifest_file);
  const bool bridge = o.network == PodNetwork::kBridge;
  const JobPlan plan = load_job(manifest_file, objects, bridge, o.kind);

  const netns::Subnet subnet = bridge ? netns::free_subnet() : netns::Subnet{};
  std::vector<std::string> ips;
  for (size_t i = 0; i < plan.pods.size(); ++i) {
    ips.push_back(bridge ? subnet.address(static_cast<int>(i) + 2) : "127.0.0.1");
  }
  const core::TempDir pods_dir("ddpipe-pods");
  const fs::path& root = pods_dir.path();
  const std::vector<LocalPod> pods =
      local_pods(objects, manifest_file, root, ips, o.ddpipe_binary, o.kind);
  write_pod_files(pods, hosts_file(plan, pods, objects, bridge ? subnet.address(1) : "127.0.0.1"));

  std::unique_ptr<netns::Bridge> br;
  if (bridge) {
    br = std::make_unique<netns::Bridge>("ddpbr" + std::to_string(::getpid() % 100000000),
                                         subnet.cidr(1));
  }
  core::log::info("launch", "starting the pods of " + plan.kind + " " + plan.name,
                  {{"pods", pods.size()},
                   {"world_size", plan.world_size},
                   {"master", plan.master_addr + ":" + std::to_string(plan.master_port)},
                   {"network", bridge ? "bridge " + br->name() + " " + subnet.network() : "host"}});

  supervisor::Interrupts interrupts;  // SIGINT/SIGTERM from here on go to the pods
  supervisor::Group group(interrupts, "launch");
  for (size_t i = 0; i < pods.size(); ++i) {
    const LocalPod& p = pods[i];
    const pid_t pid = start_pod(group, p, i, br.get(), subnet);
    core::log::info("launch", "pod started",
                    {{"pod", p.name}, {"rank", p.rank}, {"ip", p.ip}, {"pid", pid}});
  }
  const supervisor::Outcome out = group.wait(
      {o.grace_seconds, termination_grace_seconds(plan)},
      [&pods](size_t i, const supervisor::ChildEnd& e) {
        core::log::info("launch", "pod exited", {{"pod", pods[i].name}, {"exit_code", e.code}});
      });
  const int code = out.code;
  const std::string failed = out.first_failed >= 0 ? pods[out.first_failed].name : "";
  if (code == 0) {
    core::log::info("launch", "every pod of " + plan.name + " succeeded");
  } else if (out.signal && failed.empty()) {
    core::log::warn("launch",
                    plan.kind + " " + plan.name + " stopped: the launcher was interrupted",
                    {{"exit_code", code}, {"signal", out.signal}});
  } else {
    core::log::error("launch", plan.kind + " " + plan.name + " failed",
                     {{"exit_code", code}, {"failed_pod", failed}});
  }
  return code;
}

}  // namespace ddpipe::k8s
