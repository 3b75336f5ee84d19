// ddpipe::model — a network's weights as PyTorch users exchange them: state dicts.
//
// A state dict is every parameter and buffer by name (torchvision's names: "conv1.weight",
// "layer1.0.bn1.running_mean", "bn1.num_batches_tracked", "fc.bias", …), each tensor contiguous
// in the standard layout (NCHW for convolution weights, also when the model runs channels-last).
//
//   model.pth          what Python's torch.save(model.state_dict()) writes: a zip archive with
//                      a pickled dict. torch.load() returns a dict of tensors, which
//                      load_state_dict() accepts.
//   model.safetensors  the safetensors format: an 8-byte little-endian header length, a JSON
//                      header {name: {dtype, shape, data_offsets}, "__metadata__": {…}}, then the
//                      raw little-endian tensor bytes.
//
// The readers take what Python writes (torch.save of a dict or OrderedDict of tensors, and
// safetensors files of any library) as well as what the writers here write; load_state_dict()
// then initialises a network from one, checking every name and shape first.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"

namespace ddpipe::model {

// name → tensor, in the order of the file (or of the module).
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

// The module's parameters then buffers, detached, contiguous, standard layout.
StateDict state_dict(const torch::nn::Module& module);

// model.pth bytes (torch::pickle_save of a dict of str → Tensor).
std::string state_dict_pth(const torch::nn::Module& module);
// model.safetensors bytes; `metadata` becomes the header's "__metadata__" (string values).
std::string state_dict_safetensors(const torch::nn::Module& module,
                                   const std::map<std::string, std::string>& metadata = {});

// The "__metadata__" ddpipe writes into its safetensors files: format "pt", arch, in_channels,
// num_classes (and width for resnet-mini).
std::map<std::string, std::string> safetensors_metadata(const ModelSpec& spec);

// Reads a torch.save zip archive holding a dict (or OrderedDict) of str → Tensor. Other pickled
// objects (a whole nn.Module, a checkpoint dict of dicts) are refused. `where` names the file in
// errors. Throws core::Error(kData) for anything that is not such an archive.
StateDict read_pth(const std::string& bytes, const std::string& where);
// Reads a safetensors file (dtypes F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL). Throws
// core::Error(kData) naming `where` and what is wrong (header length, JSON, offsets).
StateDict read_safetensors(const std::string& bytes, const std::string& where);
// Either, by content: a zip archive ("PK") is read as .pth, anything else as safetensors.
StateDict read_state_dict(const std::string& bytes, const std::string& where);

// Copies `state` into the module's parameters and buffers (keeping their layout and dtype).
// Names equal to a `skip` prefix or under it ("fc" skips "fc.weight" and "fc.bias") are left
// as they are: not required in `state`, and ignored there. BatchNorm's "num_batches_tracked"
// may be absent (as PyTorch allows for state dicts older than it); it is then left as is. Nothing
// is copied unless everything matches: otherwise throws core::Error(kData) naming `where` and every
// missing tensor, unexpected tensor and shape mismatch (got vs expected).
void load_state_dict(torch::nn::Module& module, const StateDict& state,
                     const std::vector<std::string>& skip, const std::string& where);

}  // namespace ddpipe::model
