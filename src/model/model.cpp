#include "model/model.h"

#include <torch/torch.h>

#include <functional>
#include <sstream>

#include "core/error.h"
#include "model/conv.h"
#include "model/linear.h"
#include "model/zip_check.h"

namespace ddpipe::model {
namespace nn = torch::nn;

namespace {

struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride)
      : conv1(Conv(in, out, 3, stride, 1)), bn1(out), conv2(Conv(out, out, 3, 1, 1)), bn2(out) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    if (stride != 1 || in != out) {
      downsample = nn::Sequential(Conv(in, out, 1, stride, 0), nn::BatchNorm2d(out));
      register_module("downsample", downsample);
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return torch::relu(y + (downsample.is_empty() ? x : downsample->forward(x)));
  }
  Conv conv1;
  nn::BatchNorm2d bn1;
  Conv conv2;
  nn::BatchNorm2d bn2;
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNet : public Classifier {
 public:
  // blocks[i] basic blocks at widths[i]; stage i > 0 has stride 2.
  ResNet(int64_t in_channels, int64_t num_classes, std::vector<int64_t> widths,
         std::vector<int64_t> blocks, int64_t stem_kernel, int64_t stem_stride, bool max_pool)
      : conv1(Conv(in_channels, widths[0], stem_kernel, stem_stride, stem_kernel / 2)),
        bn1(widths[0]),
        fc(widths.back(), num_classes),
        max_pool_(max_pool) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    int64_t in = widths[0];
    for (size_t s = 0; s < widths.size(); ++s) {
      nn::Sequential layer;
      for (int64_t b = 0; b < blocks[s]; ++b) {
        layer->push_back(BasicBlock(in, widths[s], (s > 0 && b == 0) ? 2 : 1));
        in = widths[s];
      }
      layers_.push_back(register_module("layer" + std::to_string(s + 1), layer));
    }
    register_module("fc", fc);
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* c = m->as<ConvImpl>()) {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
        nn::init::ones_(bn->weight);
        nn::init::zeros_(bn->bias);
      }
    }
  }

  torch::Tensor forward(const torch::Tensor& input) override {
    auto x = torch::relu(bn1(conv1(input)));
    if (max_pool_) x = torch::max_pool2d(x, 3, 2, 1);
    for (auto& layer : layers_) x = layer->forward(x);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return model::linear(x, fc->weight, fc->bias);
  }

 private:
  Conv conv1;
  nn::BatchNorm2d bn1;
  nn::Linear fc;
  std::vector<nn::Sequential> layers_;
  bool max_pool_;
};

// The architectures, by name: the one list (config validation and docs ask architectures()).
struct Architecture {
  const char* name;
  std::function<std::shared_ptr<Classifier>(const ModelSpec&)> build;
};

const std::vector<Architecture>& architecture_table() {
  static const std::vector<Architecture> table = {
      {"resnet-mini",
       [](const ModelSpec& s) {
         const int64_t w = s.width;
         return std::make_shared<ResNet>(s.in_channels, s.num_classes,
                                         std::vector<int64_t>{w, 2 * w, 4 * w},
                                         std::vector<int64_t>{1, 1, 1}, 3, 1, false);
       }},
      {"resnet18",
       [](const ModelSpec& s) {
         return std::make_shared<ResNet>(s.in_channels, s.num_classes,
                                         std::vector<int64_t>{64, 128, 256, 512},
                                         std::vector<int64_t>{2, 2, 2, 2}, 7, 2, true);
       }},
      {"resnet18-cifar",
       [](const ModelSpec& s) {
         return std::make_shared<ResNet>(s.in_channels, s.num_classes,
                                         std::vector<int64_t>{64, 128, 256, 512},
                                         std::vector<int64_t>{2, 2, 2, 2}, 3, 1, false);
       }},
  };
  return table;
}

}  // namespace

std::vector<std::string> architectures() {
  std::vector<std::string> names;
  for (const auto& a : architecture_table()) names.push_back(a.name);
  return names;
}

core::ConfigChoices config_choices() { return {{"model.arch", architectures()}}; }

std::shared_ptr<Classifier> make_model(const ModelSpec& spec) {
  if (spec.in_channels != 1 && spec.in_channels != 3) {
    core::fail_usage("model: input channels must be 1 or 3, got " +
                     std::to_string(spec.in_channels));
  }
  if (spec.num_classes < 2) {
    core::fail_usage("model: need at least 2 classes, got " + std::to_string(spec.num_classes));
  }
  for (const auto& a : architecture_table()) {
    if (spec.arch == a.name) return a.build(spec);
  }
  std::string known;
  for (const auto& name : architectures()) known += (known.empty() ? "" : ", ") + name;
  core::fail_usage("model.arch: unknown architecture '" + spec.arch + "' (expected one of " +
                   known + ")");
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

std::string archive_bytes(torch::serialize::OutputArchive& archive, size_t expected_bytes) {
  std::string out;
  out.reserve(expected_bytes + expected_bytes / 64 + (1 << 20));  // zip headers and alignment
  archive.save_to([&out](const void* data, size_t n) {
    out.append(static_cast<const char*>(data), n);
    return n;
  });
  return out;
}

std::string save_state(const torch::nn::Module& module) {
  torch::serialize::OutputArchive archive;
  torch::NoGradGuard no_grad;
  size_t bytes = 0;
  for (const auto& p : module.named_parameters()) {
    archive.write(p.key(), p.value());
    bytes += p.value().nbytes();
  }
  for (const auto& b : module.named_buffers()) {
    archive.write(b.key(), b.value(), /*is_buffer=*/true);
    bytes += b.value().nbytes();
  }
  return archive_bytes(archive, bytes);
}

void load_state(torch::nn::Module& module, const std::string& bytes, const std::string& where) {
  check_torch_zip(bytes, where);
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(bytes);
    archive.load_from(in);
  } catch (...) {
    rethrow_as_data_error(where + ": not a model state archive: ");
  }
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor& t, bool buffer) {
    torch::Tensor v;
    if (!archive.try_read(name, v, buffer)) {
      core::fail_data(where + ": no tensor '" + name + "' (different architecture?)");
    }
    if (v.sizes() != t.sizes()) {
      std::ostringstream m;
      m << where << ": tensor '" << name << "' has shape " << v.sizes() << ", the model expects "
        << t.sizes();
      core::fail_data(m.str());
    }
    t.copy_(v);
  };
  try {
    for (auto& p : module.named_parameters()) load(p.key(), p.value(), false);
    for (auto& b : module.named_buffers()) load(b.key(), b.value(), true);
  } catch (...) {
    rethrow_as_data_error(where + ": unreadable model state: ");
  }
}

}  // namespace ddpipe::model
