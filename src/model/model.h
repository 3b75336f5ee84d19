// ddpipe::model — the network architectures ddpipe trains and serves.
//
//   resnet18        torchvision layout: 7×7 stride-2 stem, 3×3 max-pool, [2,2,2,2] basic blocks
//                   of 64/128/256/512 channels (~11.2 M parameters for 10 classes).
//   resnet18-cifar  the same with a 3×3 stride-1 stem and no max-pool.
//   resnet-mini     a small residual net for 28×28 / 32×32 inputs (the default job): 3×3 stem of
//                   `width` channels, one basic block per stage at width, 2·width, 4·width
//                   (stride 2 between stages), global average pool, linear.
// All take 1 or 3 input channels and any class count. Parameter names match torchvision's
// ("conv1.weight", "layer1.0.bn1.running_mean", "fc.bias", …).
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace torch::serialize {
class OutputArchive;
}

namespace ddpipe::model {

struct ModelSpec {
  std::string arch = "resnet-mini";
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  int64_t width = 16;  // resnet-mini only
};

// A classifier: forward() maps float [B, C, H, W] to logits [B, num_classes].
class Classifier : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

// Builds an architecture with freshly initialised weights (torchvision's init: Kaiming normal
// fan-out for convolutions, BN weight 1 / bias 0). Deterministic for a given torch::manual_seed.
// Throws core::Error(kUsage) for an unknown arch or bad channel count.
std::shared_ptr<Classifier> make_model(const ModelSpec& spec);

// The names make_model() knows, in a stable order ("resnet-mini", "resnet18", …).
std::vector<std::string> architectures();
// The config choices this component owns (model.arch), for core::load_config.
core::ConfigChoices config_choices();

int64_t parameter_count(const torch::nn::Module& module);

// Converts the 4-D parameters (convolution weights) to channels-last (NHWC) memory in place,
// as training and serving with model.channels_last expect. Values are unchanged.
void to_channels_last(torch::nn::Module& module);

// Serialises the parameters and buffers by name (torch::serialize archive).
std::string save_state(const torch::nn::Module& module);
// The bytes of an archive, written once into a string reserved for `expected_bytes` plus the
// archive's overhead (ostringstream + str() would hold three copies of a 45 MB ResNet-18).
std::string archive_bytes(torch::serialize::OutputArchive& archive, size_t expected_bytes);
// Loads what save_state() wrote. Throws core::Error(kData) naming `where` (the file) and what is
// wrong: not such an archive, or the first missing or mis-shaped tensor.
void load_state(torch::nn::Module& module, const std::string& bytes, const std::string& where);

}  // namespace ddpipe::model
