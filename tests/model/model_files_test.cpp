// Corrupt and hostile model files (the findings of model_files_fuzz, tests/model/fuzz): each is
// refused with core::Error(kData) naming the file, before libtorch parses it or anything of its
// declared size is allocated.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "model/export.h"
#include "model/model.h"
#include "model/zip_check.h"

namespace ddpipe::model {
namespace {

// The message of the core::Error(kData) that f() throws; a test failure for anything else.
std::string refusal_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.kind(), core::ErrorKind::kData) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no core::Error";
  return "";
}

std::shared_ptr<Classifier> tiny_net() { return make_model({"resnet-mini", 1, 2, 1}); }

// A zip archive's records by name (without the top folder), and an archive of records with
// valid CRCs (libtorch's writer).
std::map<std::string, std::string> records_of(const std::string& zip) {
  std::istringstream in(zip);
  caffe2::serialize::PyTorchStreamReader reader(&in);
  std::map<std::string, std::string> out;
  for (const std::string& name : reader.getAllRecords()) {
    auto [data, size] = reader.getRecord(name);
    out[name] = std::string(static_cast<const char*>(data.get()), size);
  }
  return out;
}

std::string zip_of(const std::map<std::string, std::string>& records) {
  std::string zip;
  caffe2::serialize::PyTorchStreamWriter writer([&zip](const void* data, size_t n) {
    zip.append(static_cast<const char*>(data), n);
    return n;
  });
  for (const auto& [name, bytes] : records) {
    if (name != "version" && name != ".data/version") {
      writer.writeRecord(name, bytes.data(), bytes.size());
    }
  }
  writer.writeEndOfFile();
  return zip;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Found by the fuzzer: an optimizer.pt with a few bytes changed in TorchScript code records.
// libtorch does not check the records' CRC-32 and crashed (SEGV in ScriptTypeParser).
TEST(ModelFiles, CorruptRecordsAreRefusedBeforeLibtorchParsesThem) {
  const std::string corrupt = core::read_file(std::string(DDPIPE_SOURCE_DIR) +
                                              "/tests/model/data/"
                                              "regression_optimizer_pt_corrupt_code.pt");
  auto net = tiny_net();
  const std::string m = refusal_of([&] { load_state(*net, corrupt, "c/optimizer.pt"); });
  EXPECT_TRUE(has(m, "c/optimizer.pt") && has(m, "CRC-32")) << m;

  std::string flipped = save_state(*net);
  flipped[flipped.size() / 2] ^= 0x40;
  EXPECT_TRUE(has(refusal_of([&] { load_state(*net, flipped, "f/model.pt"); }), "f/model.pt"));
}

TEST(ModelFiles, TruncatedArchivesAreRefused) {
  auto net = tiny_net();
  const std::string pt = save_state(*net), pth = state_dict_pth(*net);
  for (size_t cut : {size_t(0), size_t(2), size_t(100), pt.size() / 2, pt.size() - 1}) {
    EXPECT_TRUE(
        has(refusal_of([&] { load_state(*net, pt.substr(0, cut), "t/model.pt"); }), "t/model.pt"))
        << cut;
  }
  for (size_t cut : {size_t(2), size_t(100), pth.size() / 2, pth.size() - 1}) {
    EXPECT_TRUE(
        has(refusal_of([&] { read_pth(pth.substr(0, cut), "t/model.pth"); }), "t/model.pth"))
        << cut;
  }
}

// Found by the fuzzer: libtorch's TorchScript reader throws torch::jit::ErrorReport, which is no
// c10::Error, and it escaped load_state().
TEST(ModelFiles, TorchScriptErrorsAreDataErrors) {
  auto net = tiny_net();
  auto records = records_of(save_state(*net));
  ASSERT_TRUE(records.count("code/__torch__.py"));
  records["code/__torch__.py"] = "class Broken(Module):\n  x : NoSuchType\n";
  const std::string zip = zip_of(records);
  EXPECT_NO_THROW(check_torch_zip(zip, "z/model.pt"));
  EXPECT_TRUE(has(refusal_of([&] { load_state(*net, zip, "z/model.pt"); }), "z/model.pt"));
}

TEST(ModelFiles, DeclaredSizesAreCheckedBeforeAllocating) {
  // safetensors: a shape of 10^12 elements over 4 bytes of data, and one whose size overflows.
  for (const std::string shape : {"[1000000000000]", "[4294967296,4294967296,16]"}) {
    const std::string header =
        R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,4]}})";
    const uint64_t n = header.size();
    const std::string file = std::string(reinterpret_cast<const char*>(&n), 8) + header + "abcd";
    const std::string m = refusal_of([&] { read_safetensors(file, "s/model.safetensors"); });
    EXPECT_TRUE(has(m, "s/model.safetensors") && has(m, "bytes of its shape")) << m;
  }
  // model.pth: a storage whose record is shorter than the elements the pickle declares.
  auto net = tiny_net();
  auto records = records_of(state_dict_pth(*net));
  ASSERT_TRUE(records.count("data/0"));
  records["data/0"].resize(2);
  const std::string m = refusal_of([&] { read_pth(zip_of(records), "p/model.pth"); });
  EXPECT_TRUE(has(m, "p/model.pth") && has(m, "holds 2 bytes")) << m;
  // A zip record that declares 2 GiB from a few compressed bytes.
  std::string pt = save_state(*net);
  const std::string name = "archive/code/__torch__.py";
  size_t central = pt.find(name);  // its central directory entry, 46 bytes after "PK\1\2"
  while (central != std::string::npos &&
         (central < 46 || pt.compare(central - 46, 4, "PK\1\2") != 0)) {
    central = pt.find(name, central + 1);
  }
  ASSERT_NE(central, std::string::npos);
  const uint32_t huge = 0x7fffffff;
  std::memcpy(&pt[central - 46 + 24], &huge, 4);
  const std::string z = refusal_of([&] { load_state(*net, pt, "h/model.pt"); });
  EXPECT_TRUE(has(z, "h/model.pt") && has(z, "declares 2147483647 bytes")) << z;
}

}  // namespace
}  // namespace ddpipe::model
