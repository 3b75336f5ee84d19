// libFuzzer target: the files of a model version and of a checkpoint, which come from the store
// (or, for `model.init_from`, from the user's disk): model.pth and model.safetensors
// (model::read_state_dict, then model::load_state_dict into a resnet-mini), model.pt
// (model::load_state: libtorch's archive reader), optimizer.pt (train::load_optimizer into SGD
// with momentum) and rng.bin (train::load_rng). Every input is given to each of them. Built with
// clang under ASan + UBSan against the (uninstrumented) system libtorch; see
// cmake/DdpipeFuzz.cmake.
//
// An input that starts with "DDPIPE-RECORDS\n" is a list of zip records (a name line, a 4-byte
// little-endian length, the bytes; repeated) that is first written into a zip archive by
// libtorch's PyTorchStreamWriter: with valid CRCs, so that mutations reach the pickle and tensor
// records behind the zip layer (raw bytes mostly stop at a CRC mismatch). Such an archive is
// given to model::read_pth (ddpipe's own unpickler) only: libtorch's TorchScript archive reader
// behind model.pt and optimizer.pt crashes on crafted records with valid CRCs (the code records
// of corpus/regression_optimizer_pt_corrupt_code.pt repacked so: SEGV in
// torch::jit::ScriptTypeParser), which ddpipe cannot prevent inside libtorch;
// docs/security.md#fuzzing says what guards those files instead.
//
// Expected refusals are core::Error(kData) naming the file; any other exception escaping, a
// refusal that does not name the file, a crash, a hang or an allocation beyond -malloc_limit_mb
// (scripts/run_fuzz.sh) is a finding.
//
// DDPIPE_FUZZ_WRITE_SEEDS=<dir> bin/model_files_fuzzer writes the seeds of corpus/ (ddpipe's
// own files of the fuzzed network, and model.pth as records) into <dir> and exits; corpus/
// python_state_dict.pth is Python's torch.save(OrderedDict(torch.load("model.pth"))), and
// python_state_dict.pth.records its records.
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "core/error.h"
#include "model/export.h"
#include "model/model.h"
#include "train/checkpoint_files.h"

using namespace ddpipe;

namespace {

const std::string kRecordsMagic = "DDPIPE-RECORDS\n";

struct Network {
  std::shared_ptr<model::Classifier> net = model::make_model({"resnet-mini", 1, 2, 1});
  torch::optim::SGD opt{net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)};
};

Network& network() {
  static Network n;
  return n;
}

// Runs `load`; a core::Error must be kData and name `where`.
void expect_refusal_naming(const std::string& where, const std::function<void()>& load) {
  try {
    load();
  } catch (const core::Error& e) {
    if (e.kind() != core::ErrorKind::kData) __builtin_trap();
    if (std::string(e.what()).find(where) == std::string::npos) __builtin_trap();
  }
}

void load_state_dict(const std::string& bytes) {
  expect_refusal_naming("fuzz/model.pth", [&] {
    const model::StateDict state = model::read_state_dict(bytes, "fuzz/model.pth");
    model::load_state_dict(*network().net, state, {}, "fuzz/model.pth");
  });
}

void load_all(const std::string& bytes) {
  Network& n = network();
  load_state_dict(bytes);
  expect_refusal_naming("fuzz/model.pt",
                        [&] { model::load_state(*n.net, bytes, "fuzz/model.pt"); });
  expect_refusal_naming("fuzz/optimizer.pt",
                        [&] { train::load_optimizer(n.opt, bytes, "fuzz/optimizer.pt"); });
  expect_refusal_naming("fuzz/rng.bin", [&] {
    train::load_rng(bytes, "fuzz/rng.bin");
    torch::rand({4});  // draws from the state just set
  });
}

// The zip archive of a record list (kRecordsMagic, then name '\n' length4 bytes …); empty when
// the list is malformed or names a record twice.
std::string zip_of_records(const std::string& in) {
  std::string zip;
  caffe2::serialize::PyTorchStreamWriter writer([&zip](const void* data, size_t n) {
    zip.append(static_cast<const char*>(data), n);
    return n;
  });
  size_t pos = kRecordsMagic.size();
  try {
    while (pos < in.size()) {
      const size_t eol = in.find('\n', pos);
      if (eol == std::string::npos || in.size() - eol - 1 < 4) return "";
      const std::string name = in.substr(pos, eol - pos);
      uint32_t n = 0;
      std::memcpy(&n, in.data() + eol + 1, 4);
      pos = eol + 5;
      if (n > in.size() - pos || name.empty()) return "";
      writer.writeRecord(name, in.data() + pos, n);
      pos += n;
    }
    writer.writeEndOfFile();
  } catch (const c10::Error&) {
    return "";
  }
  return zip;
}

std::string records_of_zip(const std::string& zip) {
  std::istringstream in(zip);
  caffe2::serialize::PyTorchStreamReader reader(&in);
  std::string out = kRecordsMagic;
  for (const std::string& name : reader.getAllRecords()) {
    if (name == "version" || name == ".data/version") continue;  // the writer adds its own
    auto [data, size] = reader.getRecord(name);
    const uint32_t n = static_cast<uint32_t>(size);
    out += name + "\n" + std::string(reinterpret_cast<const char*>(&n), 4) +
           std::string(static_cast<const char*>(data.get()), size);
  }
  return out;
}

void write_seeds(const std::filesystem::path& dir) {
  Network& n = network();
  n.net->forward(torch::rand({2, 1, 8, 8})).sum().backward();
  n.opt.step();  // momentum buffers
  const std::string pt = model::save_state(*n.net), opt = train::optimizer_bytes(n.opt),
                    pth = model::state_dict_pth(*n.net);
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"model.pt", pt},
      {"model.pth", pth},
      {"model.safetensors", model::state_dict_safetensors(*n.net, {{"format", "pt"}})},
      {"optimizer.pt", opt},
      {"rng.bin", train::rng_bytes()},
      {"model.pth.records", records_of_zip(pth)}};
  for (const auto& [name, bytes] : seeds) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("DDPIPE_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  if (in.compare(0, kRecordsMagic.size(), kRecordsMagic) == 0) {
    const std::string zip = zip_of_records(in);
    if (!zip.empty()) load_state_dict(zip);
    return 0;
  }
  load_all(in);
  return 0;
}
