#include "cli.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace ddpipe::app {
namespace {

// Flags that are shorthands for one config key each.
const std::map<std::string, std::string> kFlagKeys = {
    {"--store", "store"},
    {"--name", "name"},
    {"--seed", "seed"},
    {"--epochs", "train.epochs"},
    {"--batch-size", "train.batch_size"},
    {"--lr", "train.lr"},
    {"--nproc-per-node", "dist.nproc"},
    {"--master-addr", "dist.master_addr"},
    {"--master-port", "dist.master_port"},
    {"--data-path", "data.path"},
    {"--data-format", "data.format"},
    {"--dataset", "data.name"},
    {"--arch", "model.arch"},
    {"--cache-dir", "cache_dir"},
    {"--nnodes", "dist.nnodes"},
    {"--node-rank", "dist.node_rank"},
    {"--max-restarts", "dist.max_restarts"},
    {"--run-id", "train.run_id"},
    {"--host", "serve.host"},
    {"--port", "serve.port"},
};
// Boolean flags that set a config key to true.
const std::map<std::string, std::string> kSwitchKeys = {
    {"--resume", "train.resume"},
    {"--deterministic", "deterministic"},
    {"--download", "data.download"},
};
// Subcommand options that are not config (what to act on).
const std::vector<std::string> kOptions = {
    "--model",   "--version", "--alias",    "--top-k",           "--split",
    "--workers", "--image",   "--job-name", "--from-pytorchjob", "--pod-network"};

}  // namespace

Args parse_args(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string& flag) -> std::string {
      size_t eq = arg.find('=');
      if (arg.rfind("--", 0) == 0 && eq != std::string::npos) return arg.substr(eq + 1);
      if (i + 1 >= argc) core::fail_usage(flag + ": expects a value (see --help)");
      return argv[++i];
    };
    std::string flag = arg.substr(0, arg.find('='));
    if (arg == "-h" || arg == "--help") {
      a.help = true;
    } else if (flag == "--config" || flag == "-c") {
      a.config_path = value(flag);
    } else if (flag == "--set") {
      a.overrides.push_back(value(flag));
    } else if (kFlagKeys.count(flag)) {
      a.overrides.push_back(kFlagKeys.at(flag) + "=" + value(flag));
    } else if (kSwitchKeys.count(flag) && flag == arg) {
      a.overrides.push_back(kSwitchKeys.at(flag) + "=true");
    } else if (std::find(kOptions.begin(), kOptions.end(), flag) != kOptions.end()) {
      a.options[flag.substr(2)] = value(flag);
    } else if (arg.rfind("-", 0) == 0 && arg.size() > 1) {
      core::fail_usage("unknown option '" + arg + "' (see `ddpipe " +
                       (a.command.empty() ? "" : a.command + " ") + "--help`)");
    } else {
      a.positional.push_back(arg);
    }
  }
  return a;
}

core::Config load(const Args& args) { return core::load_config(args.config_path, args.overrides); }

std::vector<std::string> rank_argv(const Args& args, const std::vector<std::string>& extra_sets) {
  std::vector<std::string> argv{std::filesystem::read_symlink("/proc/self/exe").string(), "train"};
  if (!args.config_path.empty()) {
    argv.push_back("--config");
    argv.push_back(std::filesystem::absolute(args.config_path).string());
  }
  for (auto& o : args.overrides) {
    argv.push_back("--set");
    argv.push_back(o);
  }
  for (auto& o : extra_sets) {
    argv.push_back("--set");
    argv.push_back(o);
  }
  return argv;
}

std::string usage(const std::string& command) {
  const std::string config_help =
      "Config:\n"
      "  -c, --config FILE     YAML config (default: the embedded default job; see configs/)\n"
      "  --set KEY=VALUE       override one config key (repeatable), e.g. --set train.epochs=3\n"
      "  Shorthands: --store URL (store), --name N (name), --seed N (seed), --epochs N\n"
      "  (train.epochs), --batch-size N (train.batch_size), --lr X (train.lr),\n"
      "  --nproc-per-node N (dist.nproc), --master-addr A (dist.master_addr), --master-port P\n"
      "  (dist.master_port), --data-path P (data.path), --data-format F (data.format),\n"
      "  --dataset N (data.name), --arch A (model.arch), --cache-dir D (cache_dir),\n"
      "  --nnodes M (dist.nnodes), --node-rank I (dist.node_rank), --max-restarts N\n"
      "  (dist.max_restarts), --run-id ID (train.run_id),\n"
      "  --host H (serve.host), --port P (serve.port),\n"
      "  --resume (train.resume=true), --deterministic (deterministic=true),\n"
      "  --download (data.download=true)\n";
  if (command == "ingest") {
    return "Usage: ddpipe ingest [config options]\n\n"
           "Reads the dataset described by data.* (IDX, CIFAR-10 binary, image folder or\n"
           "synthetic), verifies it, and stores it once under datasets/<name>/<digest>/ in the\n"
           "store. Ingesting the same content again writes nothing.\n\n" +
           config_help;
  }
  if (command == "train") {
    return "Usage: ddpipe train [config options]\n\n"
           "Runs ONE rank of a training job, configured from the environment like a Kubeflow\n"
           "PyTorchJob pod or a torchrun worker: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,\n"
           "LOCAL_RANK. Without WORLD_SIZE it trains alone (world size 1). The dataset must be\n"
           "ingested (data.digest, or the newest ingest of data.name).\n\n" +
           config_help;
  }
  if (command == "launch") {
    return "Usage: ddpipe launch [--nproc-per-node K] [--nnodes M --node-rank I --master-addr A\n"
           "                     --master-port P] [--max-restarts N] [config options]\n\n"
           "Starts K local ranks of `ddpipe train` like torchrun: RANK = I*K + local rank,\n"
           "WORLD_SIZE = M*K (single node: a free MASTER_PORT on dist.master_addr). When a rank\n"
           "fails the others are stopped; with --max-restarts the group is started again and\n"
           "resumes from the run's newest checkpoint (permanent exit codes 1-127 are not\n"
           "retried). Every restart of a job shares one run id (--run-id, else generated).\n"
           "In a pod of a PyTorchJob (v1) or Kubeflow Trainer v2 job (PET_NNODES set), the node\n"
           "comes from the environment: I = the pod's PET_NODE_RANK (= RANK), M = PET_NNODES,\n"
           "the master from MASTER_ADDR/MASTER_PORT, and K = PET_NPROC_PER_NODE when that is a\n"
           "number (a different --nproc-per-node is refused).\n\n"
           "       ddpipe launch --from-pytorchjob FILE [--pod-network host|bridge]\n\n"
           "Runs every replica of the PyTorchJob in FILE (e.g. from `ddpipe k8s render`) as a\n"
           "local process with the pod's command, args and env plus what the training operator\n"
           "adds (MASTER_ADDR=<job>-master-0, MASTER_PORT, WORLD_SIZE, RANK, PET_*). Each runs\n"
           "in its own mount and UTS namespace whose /etc/hosts resolves the pod names: to\n"
           "127.0.0.1 (host, the default; root or user namespaces), or with bridge (root) each\n"
           "pod in its own network namespace on a bridge, 10.233.N.<i+2>. ConfigMap, Secret and\n"
           "emptyDir volumes live in a temporary folder per pod (docs/kubernetes.md).\n\n" +
           config_help;
  }
  if (command == "run") {
    return "Usage: ddpipe run [config options]\n\n"
           "The whole pipeline: ingest the dataset if it is not in the store yet, launch\n"
           "dist.nproc local ranks, evaluate every epoch, publish a model version and point\n"
           "model_latest at it. Prints where the version is and how to use it.\n\n" +
           config_help;
  }
  if (command == "eval") {
    return "Usage: ddpipe eval --model NAME [--version REF] [--split test|train] [config "
           "options]\n\n"
           "Evaluates a stored model (REF: latest (default), an alias or model_v<stamp>) on the\n"
           "ingested dataset of data.name, prints loss and accuracy as JSON.\n\n" +
           config_help;
  }
  if (command == "predict") {
    return "Usage: ddpipe predict --model NAME [--version REF] [--top-k K] IMAGE...\n\n"
           "Classifies PNG/JPEG files with a stored model; prints one JSON line per file:\n"
           "{\"file\", \"prediction\", \"confidence\", \"class_index\"}. The store is "
           "`store`.\n\n" +
           config_help;
  }
  if (command == "models") {
    return "Usage: ddpipe models list\n"
           "       ddpipe models show NAME [REF]\n\n"
           "Lists models with their versions and aliases, or prints one version's manifest\n"
           "(REF: latest by default). The store is `store` (--store URL).\n\n" +
           config_help;
  }
  if (command == "serve") {
    return "Usage: ddpipe serve [--host H] [--port P] [--model NAME] [--version REF] [config "
           "options]\n\n"
           "Serves a stored model over HTTP (docs/serving.md): POST /predict with an image\n"
           "(multipart field `file` or a raw image/png / image/jpeg body), KServe V1, Open\n"
           "Inference Protocol V2 and /metrics. NAME defaults to `name`, REF to latest; an alias\n"
           "is watched every serve.poll_s seconds and new versions are swapped in without\n"
           "failing requests. Listens on 127.0.0.1:8080 unless --host/--port say otherwise.\n"
           "SIGTERM drains: no new connections, requests in flight finish, exit 0.\n"
           "--model and --version set serve.model and serve.version; every serve.* key is in\n"
           "docs/configuration.md, e.g. --set serve.max_batch=64 --set "
           "serve.auth_token_env=VAR.\n\n" +
           config_help;
  }
  if (command == "store") {
    return "Usage: ddpipe store ls [PREFIX]           keys and sizes under PREFIX of `store`\n"
           "       ddpipe store cp SRC DST           copy one object\n"
           "       ddpipe store rm KEY...            remove objects\n\n"
           "Works on the store of --store URL (a folder, or s3://bucket/prefix with the s3.*\n"
           "settings and AWS_* credentials). PREFIX and KEY are relative to that store, or a\n"
           "full s3://bucket/key URL. For cp, SRC and DST are each a local file path or an\n"
           "s3://bucket/key URL; a DST ending in '/' (or an existing folder) keeps SRC's name.\n"
           "Large objects move as parallel multipart uploads and ranged reads.\n"
           "Examples:\n"
           "  ddpipe store ls --store s3://ddpipe/artifacts models/\n"
           "  ddpipe store cp model.pt s3://ddpipe/tmp/model.pt\n"
           "  ddpipe store cp s3://ddpipe/artifacts/models/m/model_latest ./\n\n" +
           config_help;
  }
  if (command == "k8s") {
    return "Usage: ddpipe k8s render [--config FILE] [--workers N] [--image I] [--job-name J]\n"
           "                         [config options]\n\n"
           "Prints the Kubernetes manifests of the configured job as one YAML stream: namespace\n"
           "mlops-light, MinIO, a ConfigMap with the config, the init Job (bucket, ingest), a\n"
           "Kubeflow PyTorchJob with 1 Master + N Workers (default 1) running `ddpipe train`,\n"
           "and the `ddpipe serve` Deployment and Service. I is the ddpipe image (default\n"
           "ddpipe:local), J the job name (default: the config's name). A relative store becomes\n"
           "s3://ddpipe in the cluster's MinIO. Apply with `kubectl apply -f -`, or in phases\n"
           "(-l app.kubernetes.io/component=config|storage|init|train|serve); run it here with\n"
           "`ddpipe launch --from-pytorchjob FILE`. See docs/kubernetes.md.\n\n" +
           config_help;
  }
  if (command == "config") {
    return "Usage: ddpipe config show [config options]\n\n"
           "Prints the effective configuration (defaults < --config file < --set) as YAML.\n\n" +
           config_help;
  }
  return "ddpipe — distributed data-parallel training, from raw data to a served model.\n\n"
         "Usage: ddpipe <command> [options]    (ddpipe <command> --help for details)\n\n"
         "Commands:\n"
         "  run       the whole pipeline: ingest, train on N local ranks, evaluate, version\n"
         "  ingest    verify a dataset and store it once in the artifact store\n"
         "  train     one rank of a job, configured from MASTER_ADDR/WORLD_SIZE/RANK\n"
         "  launch    start N local ranks of `train` (like torchrun --nproc-per-node)\n"
         "  eval      evaluate a stored model on a dataset\n"
         "  predict   classify image files with a stored model\n"
         "  models    list models, show a version's manifest\n"
         "  store     list, copy and remove objects in a store (local or s3://)\n"
         "  config    show the effective configuration\n"
         "  serve     serve a stored model over HTTP (predict, KServe V1/V2, metrics)\n"
         "  k8s       render the Kubernetes manifests of a job (PyTorchJob, MinIO, serving)\n\n"
         "Exit codes: 0 ok, 1 internal error, 2 bad usage or config, 3 bad data, 4 not found,\n"
         "5 storage error, 128 retryable (lost peer, timeout).\n";
}

}  // namespace ddpipe::app
