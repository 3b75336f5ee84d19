#include "model/export.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors and .pth store little-endian bytes, written here as in memory");

namespace ddpipe::model {
namespace {

// safetensors dtype names ↔ libtorch scalar types.
const std::vector<std::pair<std::string, torch::ScalarType>>& safetensors_dtypes() {
  static const std::vector<std::pair<std::string, torch::ScalarType>> table = {
      {"F64", torch::kFloat64},   {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
      {"I16", torch::kInt16},     {"I8", torch::kInt8},     {"U8", torch::kUInt8},
      {"BOOL", torch::kBool}};
  return table;
}

std::string safetensors_dtype(torch::ScalarType type) {
  for (const auto& [name, t] : safetensors_dtypes()) {
    if (t == type) return name;
  }
  core::fail_data(std::string("safetensors: no dtype for tensors of type ") + c10::toString(type));
}

std::string shape_text(torch::IntArrayRef sizes) {
  std::ostringstream o;
  o << sizes;
  return o.str();
}

// Whether `name` is `prefix` or inside it ("fc" covers "fc.weight", not "fc2.weight").
bool under(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const std::string& p : prefixes) {
    if (p.empty()) continue;
    if (name == p) return true;
    const std::string dotted = p.back() == '.' ? p : p + ".";
    if (name.rfind(dotted, 0) == 0) return true;
  }
  return false;
}

// One safetensors header entry → a tensor over a copy of its bytes.
torch::Tensor safetensors_tensor(const std::string& name, const nlohmann::json& entry,
                                 const char* data, size_t data_size, const std::string& where) {
  auto bad = [&](const std::string& what) {
    core::fail_data(where + ": safetensors tensor '" + name + "': " + what);
  };
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    bad("expected an object with dtype, shape and data_offsets");
  }
  torch::ScalarType type = torch::kFloat32;
  bool known = false;
  for (const auto& [dname, t] : safetensors_dtypes()) {
    if (entry["dtype"] == dname) type = t, known = true;
  }
  if (!known) bad("unsupported dtype " + entry["dtype"].dump());
  // The bytes the shape declares, checked against data_offsets before anything is allocated.
  std::vector<int64_t> shape;
  uint64_t nbytes = c10::elementSize(type);
  bool too_large = false;
  if (!entry["shape"].is_array()) bad("shape must be a list of non-negative integers");
  for (const auto& d : entry["shape"]) {
    if (!d.is_number_unsigned()) bad("shape must be a list of non-negative integers");
    const uint64_t n = d.get<uint64_t>();
    too_large |= n > uint64_t(INT64_MAX) || (n != 0 && nbytes > UINT64_MAX / n);
    if (!too_large) nbytes *= n;
    shape.push_back(static_cast<int64_t>(n));
  }
  const auto& off = entry["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned()) {
    bad("data_offsets must be [begin, end]");
  }
  const size_t begin = off[0].get<size_t>(), end = off[1].get<size_t>();
  if (too_large || begin > end || end > data_size || end - begin != nbytes) {
    bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
        "] do not hold the " + (too_large ? "overflowing" : std::to_string(nbytes)) +
        " bytes of its shape within the " + std::to_string(data_size) + " bytes of data");
  }
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
  std::memcpy(t.data_ptr(), data + begin, t.nbytes());
  return t;
}

}  // namespace

StateDict state_dict(const torch::nn::Module& module) {
  StateDict out;
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters()) {
    out.emplace_back(p.key(), p.value().detach().contiguous());
  }
  for (const auto& b : module.named_buffers()) {
    out.emplace_back(b.key(), b.value().detach().contiguous());
  }
  return out;
}

std::string state_dict_pth(const torch::nn::Module& module) {
  c10::Dict<std::string, at::Tensor> dict;
  for (auto& [name, t] : state_dict(module)) dict.insert(name, t);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  return std::string(bytes.begin(), bytes.end());
}

std::string state_dict_safetensors(const torch::nn::Module& module,
                                   const std::map<std::string, std::string>& metadata) {
  const StateDict tensors = state_dict(module);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", safetensors_dtype(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string out;
  out.reserve(8 + json.size() + offset);
  const uint64_t n = json.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += json;
  for (const auto& [name, t] : tensors) {
    out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  }
  return out;
}

std::map<std::string, std::string> safetensors_metadata(const ModelSpec& spec) {
  std::map<std::string, std::string> m = {{"format", "pt"},
                                          {"arch", spec.arch},
                                          {"in_channels", std::to_string(spec.in_channels)},
                                          {"num_classes", std::to_string(spec.num_classes)}};
  if (spec.arch == "resnet-mini") m["width"] = std::to_string(spec.width);
  return m;
}

StateDict read_safetensors(const std::string& bytes, const std::string& where) {
  uint64_t n = 0;
  if (bytes.size() < 8) core::fail_data(where + ": not a safetensors file (shorter than 8 bytes)");
  std::memcpy(&n, bytes.data(), 8);
  if (n > bytes.size() - 8) {
    core::fail_data(where + ": not a safetensors file (header length " + std::to_string(n) +
                    " exceeds the file's " + std::to_string(bytes.size()) + " bytes)");
  }
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes.substr(8, n));
  } catch (const nlohmann::json::exception& e) {
    core::fail_data(where + ": safetensors header is not JSON: " + e.what());
  }
  if (!header.is_object()) core::fail_data(where + ": safetensors header is not a JSON object");
  StateDict out;
  const char* data = bytes.data() + 8 + n;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    out.emplace_back(name, safetensors_tensor(name, entry, data, bytes.size() - 8 - n, where));
  }
  return out;
}

StateDict read_state_dict(const std::string& bytes, const std::string& where) {
  if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] == 'K') return read_pth(bytes, where);
  uint64_t n = 0;
  if (bytes.size() >= 9) std::memcpy(&n, bytes.data(), 8);
  if (bytes.size() < 9 || n > bytes.size() - 8 || bytes[8] != '{') {
    core::fail_data(where + ": neither a torch.save zip archive (.pth) nor a safetensors file " +
                    "(archives of torch.save(..., _use_new_zipfile_serialization=False) are not " +
                    "read: save again with torch.save(model.state_dict(), path))");
  }
  return read_safetensors(bytes, where);
}

void load_state_dict(torch::nn::Module& module, const StateDict& state,
                     const std::vector<std::string>& skip, const std::string& where) {
  std::map<std::string, torch::Tensor> targets;
  for (auto& p : module.named_parameters()) targets.emplace(p.key(), p.value());
  for (auto& b : module.named_buffers()) targets.emplace(b.key(), b.value());
  std::vector<std::string> problems;
  std::set<std::string> given;
  for (const auto& [name, t] : state) {
    if (under(name, skip)) continue;
    given.insert(name);
    auto it = targets.find(name);
    if (it == targets.end()) {
      problems.push_back("unexpected tensor '" + name + "' " + shape_text(t.sizes()));
    } else if (t.sizes() != it->second.sizes()) {
      problems.push_back("tensor '" + name + "': shape " + shape_text(t.sizes()) +
                         " in the file, the model expects " + shape_text(it->second.sizes()));
    }
  }
  for (const auto& [name, t] : targets) {
    // As in PyTorch, state dicts from before BatchNorm counted batches need not have the count.
    const bool optional =
        name.size() >= 20 && name.rfind("num_batches_tracked") == name.size() - 19;
    if (!under(name, skip) && !given.count(name) && !optional) {
      problems.push_back("missing tensor '" + name + "' " + shape_text(t.sizes()));
    }
  }
  if (!problems.empty()) {
    std::string m = where + ": the state dict does not fit the model (" +
                    std::to_string(problems.size()) + " problem" +
                    (problems.size() > 1 ? "s" : "") +
                    "; model.init_skip lists prefixes to "
                    "leave as initialised, e.g. [fc] for another class count):";
    for (const auto& p : problems) m += "\n  " + p;
    core::fail_data(m);
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : state) {
    if (!under(name, skip)) targets.at(name).copy_(t);
  }
}

}  // namespace ddpipe::model
