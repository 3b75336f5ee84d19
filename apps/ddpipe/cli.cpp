#include "cli.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "model/model.h"

namespace ddpipe::app {
namespace {

// Where `--config NAME` finds the shipped configs: the source tree's configs/ for the binary of
// the build tree, <prefix>/share/ddpipe/configs for an installed one (never both, so that a
// broken install cannot pass for a working one).
std::vector<std::filesystem::path> shipped_config_dirs() {
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe");
  const std::filesystem::path rel = exe.lexically_relative(DDPIPE_BUILD_TREE);
  if (!rel.empty() && *rel.begin() != "..") return {DDPIPE_SOURCE_CONFIGS};
  return {exe.parent_path() / DDPIPE_CONFIGS_FROM_BIN};
}

// A flag that is a shorthand for one config key: `--epochs N` means `--set train.epochs=N`.
struct Shorthand {
  const char* flag;
  const char* key;
  const char* value_name;  // nullptr: a switch, which sets the key to true
};

const std::vector<Shorthand> kShorthands = {
    {"--store", "store", "URL"},
    {"--name", "name", "NAME"},
    {"--seed", "seed", "N"},
    {"--epochs", "train.epochs", "N"},
    {"--batch-size", "train.batch_size", "N"},
    {"--lr", "train.lr", "X"},
    {"--nproc-per-node", "dist.nproc", "N"},
    {"--master-addr", "dist.master_addr", "ADDR"},
    {"--master-port", "dist.master_port", "PORT"},
    {"--data-path", "data.path", "PATH"},
    {"--data-format", "data.format", "FORMAT"},
    {"--dataset", "data.name", "NAME"},
    {"--arch", "model.arch", "ARCH"},
    {"--cache-dir", "cache_dir", "DIR"},
    {"--nnodes", "dist.nnodes", "M"},
    {"--node-rank", "dist.node_rank", "I"},
    {"--max-restarts", "dist.max_restarts", "N"},
    {"--min-nproc", "dist.min_nproc", "N"},
    {"--run-id", "train.run_id", "ID"},
    {"--host", "serve.host", "HOST"},
    {"--port", "serve.port", "PORT"},
    {"--resume", "train.resume", nullptr},
    {"--deterministic", "deterministic", nullptr},
    {"--download", "data.download", nullptr},
};
// `ddpipe serve` and `ddpipe ui` only: which model to serve.
const std::vector<Shorthand> kServeShorthands = {
    {"--model", "serve.model", "NAME"},
    {"--version", "serve.version", "REF"},
};

// A subcommand option that is not configuration (what to act on): Args::options[name]. A
// switch (value_name nullptr) reads as "true" when given.
struct OptionSpec {
  const char* flag;
  const char* value_name;
  const char* help;
};

// A positional argument; `many`: one or more (or zero or more when not required).
struct PositionalSpec {
  const char* name;
  const char* help;
  bool required = true;
  bool many = false;
};

// A subcommand: the one place its name, usage, help and arguments are declared.
struct CommandSpec {
  std::string name;
  std::string summary;      // one line, for `ddpipe --help`
  std::string synopsis;     // the usage line(s), after "Usage: "
  std::string description;  // what it does
  std::vector<OptionSpec> options = {};
  std::vector<PositionalSpec> positionals = {};
  std::vector<CommandSpec> subcommands = {};  // `models list`, `store cp`, …
  int (*run)(const Args&) = nullptr;          // top-level commands only
  bool config = true;                         // takes --config, --set and the shorthands
};

const OptionSpec kModelOption{"--model", "NAME", "registry name of the model (default: `name`)"};
const OptionSpec kVersionOption{"--version", "REF", "latest (default), an alias or model_v<stamp>"};

// --- The registry's subcommands (`ddpipe models …`, docs/registry.md) ----------------------
const OptionSpec kAliasOption{"--alias", "ALIAS", "the alias to move or show"};
const OptionSpec kJsonOption{"--json", nullptr, "print JSON instead of a table"};

std::vector<CommandSpec> model_subcommands() {
  return {
      {"list", "models, their versions, aliases and test accuracy", "ddpipe models list",
       "Lists every model of the store with its versions, aliases and test accuracy."},
      {"show",
       "one version's manifest",
       "ddpipe models show NAME [REF]",
       "Prints the manifest of a version (REF: latest (default), an alias or model_v<stamp>).",
       {},
       {{"NAME", "model name"}, {"REF", "version or alias", false}}},
      {"promote",
       "point an alias at a version, optionally only if it is better",
       "ddpipe models promote NAME REF --alias ALIAS [--reason TEXT]\n"
       "                             [--if-better-than ALIAS --metric M [--min-delta D]]",
       "Moves ALIAS to the version REF names and records the move in the alias's history (time, "
       "from, to, reason, actor = $DDPIPE_ACTOR or user@host, the gate's verdict). With "
       "--if-better-than, the move happens only if REF beats that alias's current version on "
       "the final metric M (default test_acc) by at least D (default 0: strictly better), both "
       "evaluated on the same dataset digest; the comparison is printed either way and a refusal "
       "exits 10. An alias that does not exist yet is always promoted. Of two promotions racing "
       "on one alias one wins; the other exits 128 (retryable) and records nothing.",
       {kAliasOption,
        {"--reason", "TEXT", "why (kept in the history)"},
        {"--if-better-than", "ALIAS", "gate: promote only if better than this alias's version"},
        {"--metric", "M", "the gate's final metric (default test_acc)"},
        {"--min-delta", "D", "the gate's minimum improvement (default 0)"},
        kJsonOption},
       {{"NAME", "model name"}, {"REF", "version or alias"}}},
      {"rollback",
       "move an alias back to its previous version",
       "ddpipe models rollback NAME --alias ALIAS [--reason TEXT]",
       "Moves ALIAS back to the version it pointed at before its last move (recorded in the "
       "history like any move). Exit 4 when the alias has no previous version.",
       {kAliasOption, {"--reason", "TEXT", "why (kept in the history)"}, kJsonOption},
       {{"NAME", "model name"}}},
      {"history",
       "every move of an alias (or of all of them)",
       "ddpipe models history NAME [--alias ALIAS] [--json]",
       "Prints the moves of ALIAS (default: every alias and model_latest), oldest first.",
       {kAliasOption, kJsonOption},
       {{"NAME", "model name"}}},
      {"diff",
       "two versions side by side: config, dataset, metrics",
       "ddpipe models diff NAME REF1 REF2 [--json]",
       "Compares two versions: the config keys that differ (from the manifests' config YAML), "
       "the dataset digests, the final and per-epoch metrics with their deltas (REF2 - REF1).",
       {kJsonOption},
       {{"NAME", "model name"}, {"REF1", "version or alias"}, {"REF2", "version or alias"}}},
      {"rm",
       "remove a version that no alias points at",
       "ddpipe models rm NAME REF",
       "Deletes a version (manifest first, so it disappears at once) and its metrics. Refused "
       "(exit 2, naming them) while model_latest or an alias points at it.",
       {},
       {{"NAME", "model name"}, {"REF", "model_v<stamp>"}}},
      {"gc",
       "delete old versions and checkpoints, keeping what is in use",
       "ddpipe models gc NAME [--keep-versions N] [--keep-checkpoints K] [--dry-run]",
       "Deletes all but the newest N versions (default 5) and K checkpoints (default 2), never "
       "an aliased version, model_latest's target or the newest checkpoint of a run that has not "
       "published (a restart resumes from it). --dry-run lists what would go.",
       {{"--keep-versions", "N", "newest versions to keep (default 5)"},
        {"--keep-checkpoints", "K", "newest checkpoints to keep (default 2)"},
        {"--dry-run", nullptr, "list what would be deleted, delete nothing"}},
       {{"NAME", "model name"}}},
      {"export",
       "a version's weights as a PyTorch state dict (.pth) or safetensors",
       "ddpipe models export NAME [REF] --format pth|safetensors --out FILE",
       "Writes the weights of a version (REF: latest (default), an alias or model_v<stamp>) "
       "from its model.pt as a state dict: `pth` opens with Python's torch.load (a dict of "
       "tensors for load_state_dict), `safetensors` with the safetensors library. Versions "
       "published by this build and later also hold model.pth and model.safetensors themselves.",
       {{"--format", "FORMAT", "pth or safetensors (required)"},
        {"--out", "FILE", "the file to write (required)"}},
       {{"NAME", "model name"}, {"REF", "version or alias", false}}},
  };
}

// The commands, in the order `ddpipe --help` lists them: training first.
std::vector<CommandSpec> training_commands() {
  return {
      {"run",
       "the whole pipeline: ingest, train on N local ranks, evaluate, version",
       "ddpipe run [config options]",
       "The whole pipeline: ingest the dataset if it is not in the store yet, launch dist.nproc "
       "local ranks, evaluate every epoch, publish a model version and point model_latest at it. "
       "Prints where the version is and how to use it.",
       {},
       {},
       {},
       cmd_run},
      {"ingest",
       "verify a dataset and store it once in the artifact store",
       "ddpipe ingest [config options]",
       "Reads the dataset described by data.* (IDX, CIFAR-10 binary, image folder or synthetic), "
       "verifies it, and stores it once under datasets/<name>/<digest>/ in the store. Ingesting "
       "the same content again writes nothing.",
       {},
       {},
       {},
       cmd_ingest},
      {"train",
       "one rank of a job, configured from MASTER_ADDR/WORLD_SIZE/RANK",
       "ddpipe train [config options]",
       "Runs ONE rank of a training job, configured from the environment like a Kubeflow "
       "PyTorchJob pod or a torchrun worker: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, "
       "LOCAL_RANK. Without WORLD_SIZE it trains alone (world size 1). The dataset must be "
       "ingested (data.digest, or the newest ingest of data.name).",
       {},
       {},
       {},
       cmd_train},
      {"launch",
       "start N local ranks of `train` (like torchrun --nproc-per-node)",
       "ddpipe launch [--nproc-per-node K] [--nnodes M --node-rank I --master-addr A\n"
       "                     --master-port P] [--max-restarts N [--min-nproc L]] [config "
       "options]\n"
       "       ddpipe launch --from-pytorchjob FILE [--pod-network host|bridge]\n"
       "       ddpipe launch --from-trainjob FILE [--pod-network host|bridge]",
       "Starts K local ranks of `ddpipe train` like torchrun: RANK = I*K + local rank, WORLD_SIZE "
       "= M*K (single node: a free MASTER_PORT on dist.master_addr). When a rank fails the others "
       "are stopped (SIGTERM, SIGKILL 10 s later); with --max-restarts the group is started again "
       "and resumes from the run's newest checkpoint (permanent exit codes 1-127 are not "
       "retried). With --min-nproc L (single node), when the same rank fails first in two "
       "attempts in a row the next attempt runs one local rank fewer, down to L (torchrun's "
       "elastic --nproc range). SIGINT/SIGTERM to the launcher (preemption) go to every rank, "
       "which gets checkpoint.preempt_grace_s + 15 s to checkpoint and exit before SIGKILL; no "
       "restart follows and the launcher exits with the ranks' code (143: preempted, retry). "
       "Every restart of a job shares one run id (--run-id, else generated). In a pod of a "
       "PyTorchJob (v1) or Kubeflow "
       "Trainer v2 job (PET_NNODES set), the node comes from the environment: I = the pod's "
       "PET_NODE_RANK (= RANK), M = PET_NNODES, the master from MASTER_ADDR/MASTER_PORT (or "
       "PET_MASTER_ADDR/PORT), and K = PET_NPROC_PER_NODE when that is a number (a different "
       "--nproc-per-node is refused); for `auto`, K = a given --nproc-per-node, else under v1 "
       "dist.nproc and under Trainer v2 the CPUs this pod may use.\n\n"
       "With --from-pytorchjob, runs every replica of the PyTorchJob in FILE (e.g. from `ddpipe "
       "k8s render`) as a local process with the pod's command, args and env plus what the "
       "training operator adds (MASTER_ADDR=<job>-master-0, MASTER_PORT, WORLD_SIZE, RANK, "
       "PET_*). Each runs in its own mount and UTS namespace whose /etc/hosts resolves the pod "
       "names: to 127.0.0.1 (host, the default; root or user namespaces), or with bridge (root) "
       "each pod in its own network namespace on a bridge, 10.233.N.<i+2>. ConfigMap, Secret "
       "and emptyDir volumes live in a temporary folder per pod (docs/kubernetes.md).\n\n"
       "With --from-trainjob, the same for the nodes of the Kubeflow Trainer v2 TrainJob in FILE "
       "(e.g. from `ddpipe k8s render --operator trainer-v2`): pods <job>-node-0-<i>, the "
       "runtime's container `node` (from its TrainingRuntime in FILE, or the stock "
       "torch-distributed) with spec.trainer applied, and the torch plugin's PET_NNODES, "
       "PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR=<job>-node-0-0.<job> and "
       "PET_MASTER_PORT=29500.",
       {{"--from-pytorchjob", "FILE", "run the replicas of this PyTorchJob manifest here"},
        {"--from-trainjob", "FILE", "run the nodes of this TrainJob (Trainer v2) manifest here"},
        {"--pod-network", "MODE", "host (default) or bridge (root): the pods' network"}},
       {},
       {},
       cmd_launch},
  };
}

std::vector<CommandSpec> model_commands() {
  return {
      {"eval",
       "evaluate a stored model on a dataset",
       "ddpipe eval --model NAME [--version REF] [--split test|train] [config options]",
       "Evaluates a stored model (REF: latest (default), an alias or model_v<stamp>) on the "
       "ingested dataset of data.name, prints loss and accuracy as JSON.",
       {kModelOption, kVersionOption, {"--split", "SPLIT", "test (default) or train"}},
       {},
       {},
       cmd_eval},
      {"predict",
       "classify image files with a stored model",
       "ddpipe predict --model NAME [--version REF] [--top-k K] IMAGE...",
       "Classifies PNG/JPEG files with a stored model; prints one JSON line per file: {\"file\", "
       "\"prediction\", \"confidence\", \"class_index\"}. The store is `store`.",
       {kModelOption, kVersionOption, {"--top-k", "K", "also list the K most probable classes"}},
       {{"IMAGE", "PNG or JPEG files", true, true}},
       {},
       cmd_predict},
      {"models",
       "list, compare, promote, roll back and clean up model versions",
       "ddpipe models list | show NAME [REF] | diff NAME REF1 REF2\n"
       "       ddpipe models promote NAME REF --alias ALIAS [--if-better-than ALIAS] ...\n"
       "       ddpipe models rollback NAME --alias ALIAS | history NAME [--alias ALIAS]\n"
       "       ddpipe models rm NAME REF | gc NAME [--keep-versions N] [--dry-run]",
       "The model registry in the store (docs/registry.md): versions, aliases with their history, "
       "promotion behind a metric gate, rollback, comparison and retention. The store is `store` "
       "(--store URL). REF is latest, an alias or model_v<stamp>.",
       {},
       {},
       model_subcommands(),
       cmd_models},
  };
}

// --- Seeing runs: records, metrics, reports (docs/telemetry.md) ----------------------------
std::vector<CommandSpec> observe_commands() {
  return {
      {"runs",
       "training jobs: running, succeeded, failed, restarting or lost",
       "ddpipe runs list [NAME] [--json] | show NAME RUN_ID",
       "Every training job's record in the store (runs/<name>/<run_id>.json): status (running, "
       "succeeded, failed, restarting; lost when its heartbeat is older than runs.lost_after_s), "
       "attempt, world size, hosts, progress and ETA, latest metrics, the error of a failure and "
       "the version it published. The store is `store` (--store URL).",
       {},
       {},
       {{"list",
         "the runs of one model or of all, newest first",
         "ddpipe runs list [NAME] [--json]",
         "A table of the runs (JSON with --json).",
         {kJsonOption},
         {{"NAME", "model name (default: every model)", false}}},
        {"show",
         "one run's record as JSON",
         "ddpipe runs show NAME RUN_ID",
         "Prints the record with its shown status and heartbeat age.",
         {},
         {{"NAME", "model name"}, {"RUN_ID", "the run id (`ddpipe runs list`)"}}}},
       cmd_runs},
      {"metrics",
       "a version's metrics per epoch or per step, as CSV or JSON",
       "ddpipe metrics NAME [REF] [--steps] [--format csv|json]",
       "Prints the per-epoch metrics of a version (REF: latest (default), an alias or "
       "model_v<stamp>), or with --steps its step history (one row per progress event), as CSV "
       "(nested fields as dotted columns) or JSON, for spreadsheets and pandas.",
       {{"--steps", nullptr, "the step history instead of the epochs"},
        {"--format", "FORMAT", "csv (default) or json"}},
       {{"NAME", "model name"}, {"REF", "version or alias", false}},
       {},
       cmd_metrics},
      {"report",
       "one self-contained HTML page: curves, confusion matrix, lineage",
       "ddpipe report NAME [REF...] [--out FILE]",
       "Writes an HTML report (inline SVG and CSS, nothing fetched from the network) of one or "
       "more versions overlaid (default: latest): loss and accuracy per epoch, step-level loss, "
       "images/s, the confusion matrix and per-class precision/recall, the lineage and the alias "
       "history. Prints the file's path.",
       {{"--out", "FILE", "the file to write (default report-<NAME>.html)"}},
       {{"NAME", "model name"}, {"REF", "versions or aliases to overlay", false, true}},
       {},
       cmd_report},
  };
}

std::vector<CommandSpec> tool_commands() {
  return {
      {"store",
       "list, copy and remove objects in a store (local or s3://)",
       "ddpipe store ls [PREFIX]           keys and sizes under PREFIX of `store`\n"
       "       ddpipe store cp SRC DST           copy one object\n"
       "       ddpipe store rm KEY...            remove objects",
       "Works on the store of --store URL (a folder, or s3://bucket/prefix with the s3.* settings "
       "and AWS_* credentials). PREFIX and KEY are relative to that store, or a full "
       "s3://bucket/key URL. For cp, SRC and DST are each a local file path or an s3://bucket/key "
       "URL; a DST ending in '/' (or an existing folder) keeps SRC's name. Large objects move as "
       "parallel multipart uploads and ranged reads.\n"
       "Examples:\n"
       "  ddpipe store ls --store s3://ddpipe/artifacts models/\n"
       "  ddpipe store cp model.pt s3://ddpipe/tmp/model.pt\n"
       "  ddpipe store cp s3://ddpipe/artifacts/models/m/model_latest ./",
       {},
       {},
       {{"ls",
         "keys and sizes under a prefix",
         "ddpipe store ls [PREFIX]",
         "Lists keys and sizes under PREFIX (default: everything).",
         {},
         {{"PREFIX", "key prefix or s3://bucket/prefix", false}}},
        {"cp",
         "copy one object",
         "ddpipe store cp SRC DST",
         "Copies one object; SRC and DST are local files or s3://bucket/key URLs.",
         {},
         {{"SRC", "source"}, {"DST", "destination"}}},
        {"rm",
         "remove objects",
         "ddpipe store rm KEY...",
         "Removes objects.",
         {},
         {{"KEY", "keys or s3://bucket/key URLs", true, true}}}},
       cmd_store},
      {"config",
       "show the effective configuration, or its reference",
       "ddpipe config show [config options]\n       ddpipe config docs",
       "`show` prints the effective configuration (defaults < --config file < --set) as YAML; "
       "`docs` prints the reference of every key (docs/configuration.md is its output).",
       {},
       {},
       {{"show", "the effective configuration as YAML", "ddpipe config show [config options]",
         "Prints the effective configuration (defaults < --config file < --set) as YAML."},
        {"docs", "the reference of every key, as Markdown", "ddpipe config docs",
         "Prints docs/configuration.md: every key with its type, default, allowed values, flag "
         "and meaning, generated from the schema."}},
       cmd_config},
  };
}

std::vector<CommandSpec> deploy_commands() {
  return {
      {"serve",
       "serve a stored model over HTTP (predict, KServe V1/V2, metrics)",
       "ddpipe serve [--host H] [--port P] [--model NAME] [--version REF] [config options]",
       "Serves a stored model over HTTP (docs/serving.md): POST /predict with an image "
       "(multipart field `file` or a raw image/png / image/jpeg body), KServe V1, Open Inference "
       "Protocol V2 and /metrics, and the web dashboard under /ui/ (docs/ui.md). NAME defaults to "
       "`name`, REF to latest; an alias is watched "
       "every serve.poll_s seconds and new versions are swapped in without failing requests. "
       "Listens on 127.0.0.1:8080 unless --host/--port say otherwise. SIGTERM drains: no new "
       "connections, requests in flight finish, exit 0. Every serve.* key is in "
       "docs/configuration.md, e.g. --set serve.max_batch=64 --set serve.auth_token_env=VAR.",
       {},
       {},
       {},
       cmd_serve},
      {"ui",
       "the web dashboard of runs, models and predictions",
       "ddpipe ui [--store URL] [--host H] [--port P] [--model NAME] [config options]",
       "Serves the web dashboard (docs/ui.md) at http://HOST:PORT/ui/ (127.0.0.1:8080 unless "
       "--host/--port say otherwise; --port 0 picks a free port) and prints its URL: the runs "
       "of the store with their progress, curves and step history, the models with their "
       "versions, files, aliases and history, comparing versions, promoting and rolling back "
       "aliases, and trying the served model. It is `ddpipe serve` (which serves the dashboard "
       "too) with the URL printed: it also serves NAME's model (POST /predict, V1, V2) and "
       "starts even when the store has no model yet (readiness and /predict then answer 503, the "
       "dashboard works). "
       "With serve.auth_token_env set, the dashboard asks for the token.",
       {},
       {},
       {},
       cmd_ui},
      {"k8s",
       "render the Kubernetes manifests of a job (PyTorchJob or TrainJob, MinIO, serving)",
       "ddpipe k8s render [--config FILE] [--operator pytorchjob|trainer-v2] [--workers N]\n"
       "                         [--image I] [--job-name J] [config options]",
       "Prints the Kubernetes manifests of the configured job as one YAML stream: namespace "
       "mlops-light, MinIO, a ConfigMap with the config, the init Job (bucket, ingest), a Kubeflow "
       "PyTorchJob with 1 Master + N Workers (default 1) running `ddpipe train`, and the `ddpipe "
       "serve` Deployment and Service. A relative store becomes s3://ddpipe in the cluster's "
       "MinIO. Apply with `kubectl apply -f -`, or in phases (-l "
       "app.kubernetes.io/component=config|storage|init|train|serve); run it here with `ddpipe "
       "launch --from-pytorchjob FILE`. With --operator trainer-v2 the training is a Kubeflow "
       "Trainer v2 TrainJob of N+1 nodes on a TrainingRuntime of its own that maps ddpipe's exit "
       "codes (1-127 fail the job; 128+ restart every node, a preemption (143) without using up "
       "the restart budget); run it here with `ddpipe launch "
       "--from-trainjob FILE`. Training pods get terminationGracePeriodSeconds = "
       "checkpoint.preempt_grace_s + a margin. See docs/kubernetes.md.",
       {},
       {},
       {{"render",
         "the job's manifests as one YAML stream",
         "ddpipe k8s render [--operator O] [--workers N] [--image I] [--job-name J] "
         "[--metrics-port P] [config options]",
         "Prints the manifests of the configured job.",
         {{"--operator", "O",
           "pytorchjob (Kubeflow training operator v1.8, default) or trainer-v2 (Kubeflow "
           "Trainer v2.3: TrainJob + TrainingRuntime)"},
          {"--workers", "N",
           "Worker replicas of the PyTorchJob (default 1); trainer-v2: numNodes = N + 1"},
          {"--image", "IMAGE", "the ddpipe image (default ddpipe:local)"},
          {"--job-name", "NAME", "the job's name (default: the config's name)"},
          {"--metrics-port", "PORT",
           "training pods serve Prometheus /metrics here, declared and annotated for scraping "
           "(default 9400; 0 = off)"}}}},
       cmd_k8s},
  };
}

// Help text: CLI11's layout, with each command's own usage lines and one-line summaries.
class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() { column_width(34); }
  void set_synopsis(const CLI::App* app, std::string synopsis) { synopsis_[app] = synopsis; }
  void set_summary(const CLI::App* app, std::string summary) { summary_[app] = summary; }

  std::string make_usage(const CLI::App* app, std::string name) const override {
    auto it = synopsis_.find(app);
    if (it == synopsis_.end()) return CLI::Formatter::make_usage(app, name);
    return "Usage: " + it->second + "\n";
  }
  // The description, its paragraphs wrapped at 98 columns (indented lines are kept as they are).
  std::string make_description(const CLI::App* app) const override {
    std::istringstream in(app->get_description());
    std::string out, line, para;
    auto flush = [&] {
      std::istringstream words(para);
      std::string current;
      for (std::string w; words >> w;) {
        if (!current.empty() && current.size() + w.size() + 1 > 98)
          out += current + "\n", current.clear();
        current += (current.empty() ? "" : " ") + w;
      }
      if (!current.empty()) out += current + "\n";
      para.clear();
    };
    while (std::getline(in, line)) {
      if (line.empty() || line.rfind("  ", 0) == 0) {
        flush();
        out += line + "\n";
      } else {
        para += " " + line;
      }
    }
    flush();
    return out.empty() ? out : out + "\n";
  }
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    auto it = summary_.find(sub);
    CLI::detail::format_help(out, sub->get_name(),
                             it == summary_.end() ? sub->get_description() : it->second,
                             column_width_);
    return out.str();
  }

 private:
  std::map<const CLI::App*, std::string> synopsis_;
  std::map<const CLI::App*, std::string> summary_;
};

// The config keys, a line a section, for the footer of every command's help.
std::string config_keys_footer() {
  std::map<std::string, std::string> sections;
  std::vector<std::string> order;
  for (const auto& k : core::config_reference()) {
    const size_t dot = k.key.find('.');
    const std::string section = dot == std::string::npos ? "" : k.key.substr(0, dot + 1);
    if (!sections.count(section)) order.push_back(section);
    sections[section] += " " + k.key.substr(section.size());
  }
  std::string out =
      "Config keys (--set KEY=VALUE; all of them: `ddpipe config docs`, docs/configuration.md):\n";
  for (const auto& s : order) {
    std::string line = "  " + (s.empty() ? std::string("(top)") : s.substr(0, s.size() - 1)) + ":";
    std::istringstream words(sections[s]);
    for (std::string w; words >> w;) {
      if (line.size() + w.size() + 1 > 98) out += line + "\n", line = "     ";
      line += " " + w;
    }
    out += line + "\n";
  }
  return out;
}

const std::string kExitCodes =
    "Exit codes: 0 ok, 1 internal error, 2 bad usage or config, 3 bad data, 4 not found,\n"
    "5 storage error, 6 system error (fork, pipe, socket, exec), 10 promotion refused by the\n"
    "gate (`models promote --if-better-than`), 128 retryable (lost peer, timeout, a concurrent\n"
    "alias move), 143 preempted (SIGTERM: stopped at a stored checkpoint; run again to resume).";

// The parsed command line of one run of the binary.
class Cli {
 public:
  Cli()
      : app_("ddpipe — distributed data-parallel training, from raw data to a served model.",
             "ddpipe") {
    app_.formatter(formatter_);
    formatter_->set_synopsis(&app_, "ddpipe <command> [options]");
    app_.require_subcommand(1);
    app_.footer("Run `ddpipe <command> --help` for a command's options.\n" + kExitCodes);
    for (const auto& group : {training_commands(), model_commands(), observe_commands(),
                              tool_commands(), deploy_commands()}) {
      for (const CommandSpec& spec : group) add_command(spec);
    }
  }

  // Parses argv into the selected command's Args; throws CLI::ParseError.
  std::pair<int (*)(const Args&), Args> parse(int argc, char** argv) {
    app_.parse(argc, argv);
    for (auto& [app, run] : commands_) {
      if (app->parsed()) return {run, collect(app)};
    }
    throw CLI::RequiredError("a command");
  }

  int exit(const CLI::ParseError& e) { return app_.exit(e); }
  std::string help() const { return app_.help(); }
  bool is_command(const std::string& name) const {
    for (auto& [app, run] : commands_) {
      if (app->get_name() == name) return true;
    }
    return false;
  }

 private:
  CLI::App* add_command(const CommandSpec& spec) {
    CLI::App* cmd = add_subcommand(&app_, spec);
    commands_.emplace_back(cmd, spec.run);
    if (spec.config) add_config_options(cmd, spec.name == "serve" || spec.name == "ui");
    if (!spec.subcommands.empty()) cmd->require_subcommand(0, 1);
    for (const CommandSpec& sub : spec.subcommands) {
      add_subcommand(cmd, sub)->fallthrough();
    }
    return cmd;
  }

  CLI::App* add_subcommand(CLI::App* parent, const CommandSpec& spec) {
    CLI::App* app = parent->add_subcommand(spec.name, spec.description);
    formatter_->set_synopsis(app, spec.synopsis);
    formatter_->set_summary(app, spec.summary);
    for (const OptionSpec& o : spec.options) {
      const std::string key = std::string(o.flag).substr(2);
      if (!o.value_name) {
        switches_.insert(options_[app].emplace_back(key, app->add_flag(o.flag, o.help)).second);
        continue;
      }
      options_[app].emplace_back(key, app->add_option(o.flag)
                                          ->description(o.help)
                                          ->type_name(o.value_name)
                                          ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast));
    }
    for (const PositionalSpec& p : spec.positionals) {
      CLI::Option* opt = app->add_option(p.name)->description(p.help)->required(p.required);
      if (p.many) opt->expected(-1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    }
    return app;
  }

  void add_config_options(CLI::App* cmd, bool serve) {
    const std::string group = "Config (each shorthand is one --set KEY=VALUE)";
    auto& flags = config_flags_[cmd];
    config_path_[cmd] =
        cmd->add_option("-c,--config")
            ->description(
                "YAML config file, or the name of a shipped one (configs/: default, "
                "imagenet-resnet18, …); default: the embedded default job")
            ->type_name("FILE")
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
            ->group(group);
    flags.emplace_back(cmd->add_option("--set")
                           ->description("override one config key, e.g. train.epochs=3")
                           ->type_name("KEY=VALUE")
                           ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                           ->group(group),
                       "");
    std::vector<Shorthand> all = kShorthands;
    if (serve) all.insert(all.end(), kServeShorthands.begin(), kServeShorthands.end());
    for (const Shorthand& s : all) {
      CLI::Option* opt =
          s.value_name
              ? cmd->add_option(s.flag)
                    ->description(std::string("--set ") + s.key + "=" + s.value_name)
                    ->type_name(s.value_name)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
              : cmd->add_flag(s.flag)->description(std::string("--set ") + s.key + "=true");
      flags.emplace_back(opt->group(group), s.key);
    }
    cmd->footer(config_keys_footer());
  }

  // The config overrides in command-line order: each occurrence of a flag is one override.
  std::vector<std::string> overrides(CLI::App* cmd) {
    std::vector<std::string> out;
    std::map<const CLI::Option*, size_t> seen;
    for (const CLI::Option* opt : cmd->parse_order()) {
      for (const auto& [flag, key] : config_flags_[cmd]) {
        if (flag != opt) continue;
        const size_t i = seen[opt]++;
        if (key.empty()) {
          out.push_back(opt->results().at(i));  // --set KEY=VALUE
        } else if (opt->get_expected_min() == 0) {
          out.push_back(key + "=true");  // a switch
        } else {
          out.push_back(key + "=" + opt->results().at(i));
        }
      }
    }
    return out;
  }

  void collect_app(CLI::App* app, Args& a) {
    for (const auto& [name, opt] : options_[app]) {
      if (opt->count() > 0) a.options[name] = switches_.count(opt) ? "true" : opt->results().back();
    }
    for (const CLI::Option* opt : app->get_options()) {
      if (!opt->get_positional()) continue;
      for (const auto& v : opt->results()) a.positional.push_back(v);
    }
  }

  Args collect(CLI::App* cmd) {
    Args a;
    a.command = cmd->get_name();
    if (config_path_.count(cmd) && config_path_[cmd]->count() > 0) {
      a.config_path = core::find_config(config_path_[cmd]->results().back(), shipped_config_dirs());
    }
    if (config_flags_.count(cmd)) a.overrides = overrides(cmd);
    collect_app(cmd, a);
    for (CLI::App* sub : cmd->get_subcommands()) {
      a.positional.insert(a.positional.begin(), sub->get_name());
      collect_app(sub, a);
    }
    return a;
  }

  CLI::App app_;
  std::shared_ptr<HelpFormatter> formatter_ = std::make_shared<HelpFormatter>();
  std::vector<std::pair<CLI::App*, int (*)(const Args&)>> commands_;
  std::map<CLI::App*, std::vector<std::pair<std::string, CLI::Option*>>> options_;
  std::set<const CLI::Option*> switches_;  // options without a value (--json, --dry-run)
  std::map<CLI::App*, CLI::Option*> config_path_;
  // Per command: each config option and its key ("" for --set).
  std::map<CLI::App*, std::vector<std::pair<const CLI::Option*, std::string>>> config_flags_;
};

// The flag of a config key, if it has one ("--epochs N").
std::string flag_of(const std::string& key) {
  for (const auto* table : {&kShorthands, &kServeShorthands}) {
    for (const Shorthand& s : *table) {
      if (key == s.key) {
        return "`" + std::string(s.flag) + (s.value_name ? std::string(" ") + s.value_name : "") +
               "`";
      }
    }
  }
  return "";
}

std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

}  // namespace

std::string config_reference_markdown() {
  std::ostringstream out;
  out << "# Configuration reference\n\n"
         "<!-- Generated by `ddpipe config docs` from the schema in src/core/config.cpp and the\n"
         "     flags in apps/ddpipe/cli.cpp; edit those, then run\n"
         "     build/apps/ddpipe/ddpipe config docs > docs/configuration.md -->\n\n"
         "A job is one YAML file over embedded defaults; `--set key=value` overrides any key, and "
         "the\nflags below are shorthands for one key each. Print the effective configuration "
         "with\n`ddpipe config show [--config FILE] [--set …]`. Validation happens before "
         "anything starts;\nevery problem is reported with its key (exit code 2).\n\n"
         "Precedence, lowest first: embedded defaults < `--config FILE` < `--set` / flags (in "
         "order).\n\n"
         "| key | type | default | allowed | flag | meaning |\n"
         "|---|---|---|---|---|---|\n";
  for (const auto& k : core::config_reference(model::config_choices())) {
    std::string def = k.type == "string" ? "`" + k.default_value + "`" : k.default_value;
    if (k.type == "string" && k.default_value.empty()) def = "`\"\"`";
    out << "| `" << k.key << "` | " << k.type << " | " << cell(def) << " | " << cell(k.allowed)
        << " | " << flag_of(k.key) << " | " << cell(k.help) << " |\n";
  }
  out << "\nThe rank of a `ddpipe train` process is not configuration: it comes from the "
         "environment\n(`MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE`, `RANK`, `LOCAL_RANK`), as for "
         "torchrun and\nKubeflow PyTorchJob pods.\n";
  return out.str();
}

std::string Args::option(const std::string& name, const std::string& def) const {
  auto it = options.find(name);
  return it == options.end() ? def : it->second;
}

double Args::number_option(const std::string& name, double def) const {
  if (!has(name)) return def;
  const std::string& v = options.at(name);
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size() && d >= 0) return d;
  } catch (const std::exception&) {
  }
  core::fail_usage("--" + name + ": expected a number >= 0, got '" + v + "'");
}

int64_t Args::count_option(const std::string& name, int64_t def) const {
  if (!has(name)) return def;
  const std::string& v = options.at(name);
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
    core::fail_usage("--" + name + ": expected a whole number, got '" + v + "'");
  }
  return std::stoll(v);
}

core::Config load(const Args& args) {
  return core::load_config(args.config_path, args.overrides, model::config_choices());
}

std::vector<std::string> rank_argv(const Args& args, const std::vector<std::string>& extra_sets) {
  std::vector<std::string> argv{std::filesystem::read_symlink("/proc/self/exe").string(), "train"};
  if (!args.config_path.empty()) {
    argv.push_back("--config");
    argv.push_back(std::filesystem::absolute(args.config_path).string());
  }
  for (const auto* sets : {&args.overrides, &extra_sets}) {
    for (const auto& o : *sets) {
      argv.push_back("--set");
      argv.push_back(o);
    }
  }
  return argv;
}

int run_cli(int argc, char** argv) {
  Cli cli;
  const std::string first = argc > 1 ? argv[1] : "";
  if (first.empty() || first == "help") {
    std::cout << cli.help();
    return first.empty() ? 2 : 0;
  }
  if (first[0] != '-' && !cli.is_command(first)) {
    std::cerr << "ddpipe: unknown command '" << first << "'\n\n" << cli.help();
    return 2;
  }
  std::string command = first[0] == '-' ? "ddpipe" : first;
  try {
    std::pair<int (*)(const Args&), Args> parsed;
    try {
      parsed = cli.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return cli.exit(e);
    } catch (const CLI::ParseError& e) {
      core::fail_usage(e.what() + std::string(" (see `ddpipe ") +
                       (command == "ddpipe" ? "" : command + " ") + "--help`)");
    }
    return parsed.first(parsed.second);
  } catch (const core::Error& e) {
    core::log::error(command, e.what(), {{"error_kind", core::kind_name(e.kind())}});
    core::record_error_file(e.what(), e.kind());
    return core::exit_code(e.kind());
  } catch (const std::exception& e) {
    core::log::error(command, std::string("internal error: ") + e.what());
    core::record_error_file(std::string("internal error: ") + e.what(), core::ErrorKind::kInternal);
    return 1;
  }
}

}  // namespace ddpipe::app
