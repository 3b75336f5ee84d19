#include "eval/inference.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"
#include "core/hash.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "registry/registry.h"

namespace ddpipe::eval {

LoadedModel load_model(storage::Store& store, const std::string& model, const std::string& ref) {
  registry::Registry reg(store);
  LoadedModel m;
  m.model = model;
  m.version = reg.resolve(model, ref);
  m.manifest = reg.manifest(model, m.version);
  const registry::Manifest::Dataset& ds = m.manifest.dataset;
  m.classes = ds.classes;
  m.mean.assign(ds.mean.begin(), ds.mean.end());
  m.std.assign(ds.std.begin(), ds.std.end());
  m.channels = ds.channels;
  m.height = ds.height;
  m.width = ds.width;
  m.normalize = m.manifest.preprocess.normalize;
  m.channels_last = m.manifest.preprocess.channels_last;
  m.center_crop = m.manifest.preprocess.center_crop;
  m.resize_shorter = m.manifest.preprocess.resize_shorter;
  if (m.center_crop && (m.resize_shorter < std::max(m.height, m.width) || m.height != m.width)) {
    core::fail_data("model " + model + " version " + m.version +
                    ": preprocess.resize_shorter must be at least the square crop it is cut to (" +
                    std::to_string(m.height) + "x" + std::to_string(m.width) + "), not " +
                    std::to_string(m.resize_shorter));
  }
  const registry::Manifest::ModelSpec& spec = m.manifest.model_spec;
  m.net = model::make_model({spec.arch, spec.in_channels, spec.num_classes, spec.width});
  const std::string key = registry::Registry::version_prefix(model, m.version) + "model.pt";
  const std::string bytes = reg.read(model, m.version, "model.pt");
  // A corrupt file is refused before libtorch parses it (docs/security.md#fuzzing).
  const std::string& expected = m.manifest.model_sha256;
  if (!expected.empty() && core::sha256_hex(bytes) != expected) {
    core::fail_data(key + ": its SHA-256 is not the manifest's model_sha256 " + expected +
                    " (the file is corrupt or was replaced)");
  }
  model::load_state(*m.net, bytes, key);
  if (m.channels_last) model::to_channels_last(*m.net);
  m.net->eval();
  return m;
}

EvalSums evaluate(model::Classifier& net, const data::Dataset& dataset, const data::Split& split,
                  const std::vector<int64_t>& indices, bool normalize, int64_t batch_size,
                  int64_t workers, bool channels_last) {
  data::Augment aug;
  aug.normalize = normalize;
  aug.mean.assign(dataset.mean.begin(), dataset.mean.end());
  aug.std.assign(dataset.std.begin(), dataset.std.end());
  data::LoaderOptions opts;
  opts.batch_size = batch_size;
  opts.workers = workers;
  opts.channels_last = channels_last;
  data::BatchLoader loader(dataset, split, indices, aug, opts);
  return evaluate(net, loader, static_cast<int64_t>(dataset.classes.size()));
}

EvalSums evaluate(model::Classifier& net, data::BatchLoader& loader, int64_t classes) {
  torch::NoGradGuard no_grad;
  net.eval();
  EvalSums sums;
  sums.confusion = Confusion(classes);
  const auto sum_ce = torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum);
  while (auto batch = loader.next()) {
    auto logits = net.forward(batch->images);
    const auto predicted = logits.argmax(1).to(torch::kLong).contiguous();
    const auto truth = batch->labels.to(torch::kLong).contiguous();
    const int64_t* p = predicted.data_ptr<int64_t>();
    const int64_t* t = truth.data_ptr<int64_t>();
    for (int64_t i = 0; i < truth.size(0); ++i) sums.confusion.add(t[i], p[i]);
    sums.loss_sum +=
        torch::nn::functional::cross_entropy(logits, batch->labels, sum_ce).item<double>();
    sums.correct += predicted.eq(truth).sum().item<double>();
    sums.count += static_cast<double>(batch->labels.size(0));
  }
  return sums;
}

EvalSums evaluate_sharded(model::Classifier& net, data::ShardedDataset& dataset, bool train,
                          const std::vector<int64_t>& indices, const data::LoaderOptions& loader) {
  const int64_t n = static_cast<int64_t>(indices.size());
  std::vector<int64_t> sizes;
  for (int64_t done = 0; done < n; done += loader.batch_size)
    sizes.push_back(std::min(loader.batch_size, n - done));
  auto source = dataset.evaluation_source(train, indices, sizes);
  data::BatchLoader batches(*source, indices, loader);
  return evaluate(net, batches, static_cast<int64_t>(dataset.header().classes.size()));
}

void preprocess(const LoadedModel& m, const data::Image& image, float* out) {
  if (m.center_crop) {
    const std::vector<uint8_t> chw = data::to_chw(image, m.channels, image.height, image.width);
    data::ResizedCrop crop;
    crop.size = m.height;
    crop.eval_resize = m.resize_shorter;
    crop.normalize = m.normalize;
    crop.mean = m.mean;
    crop.std = m.std;
    data::resize_center_crop({chw.data(), m.channels, image.height, image.width}, crop, out);
    return;
  }
  std::vector<uint8_t> chw = data::to_chw(image, m.channels, m.height, m.width);
  const int64_t plane = m.height * m.width;
  for (int64_t c = 0; c < m.channels; ++c) {
    float mean = m.normalize ? m.mean[c] : 0.0f, inv = m.normalize ? 1.0f / m.std[c] : 1.0f;
    for (int64_t k = 0; k < plane; ++k) {
      out[c * plane + k] = (chw[c * plane + k] / 255.0f - mean) * inv;
    }
  }
}

std::vector<Prediction> classify(const LoadedModel& m, const float* inputs, int64_t n) {
  if (n <= 0) return {};
  // A lone input runs as a batch of two (itself twice): for one small input libtorch picks
  // XNNPACK instead of oneDNN, and the two differ in the last bits. This way an input's result
  // does not depend on the batch it runs in (the inference service batches requests).
  std::vector<float> pair;
  int64_t rows = n;
  if (n == 1) {
    const int64_t per_input = m.channels * m.height * m.width;
    pair.assign(inputs, inputs + per_input);
    pair.insert(pair.end(), inputs, inputs + per_input);
    inputs = pair.data();
    rows = 2;
  }
  // from_blob does not copy; forward() only reads its input.
  auto batch = torch::from_blob(const_cast<float*>(inputs), {rows, m.channels, m.height, m.width});
  if (m.channels_last) batch = batch.contiguous(at::MemoryFormat::ChannelsLast);
  torch::NoGradGuard no_grad;
  auto probs = torch::softmax(m.net->forward(batch), 1).contiguous();
  std::vector<Prediction> result;
  const int64_t k = probs.size(1);
  for (int64_t i = 0; i < n; ++i) {
    Prediction p;
    const float* row = probs.data_ptr<float>() + i * k;
    p.probabilities.assign(row, row + k);
    p.class_index = std::max_element(row, row + k) - row;
    p.confidence = row[p.class_index];
    p.label = p.class_index < static_cast<int64_t>(m.classes.size())
                  ? m.classes[p.class_index]
                  : std::to_string(p.class_index);
    result.push_back(std::move(p));
  }
  return result;
}

std::vector<Prediction> predict(const LoadedModel& m, const std::vector<data::Image>& images) {
  const int64_t per_image = m.channels * m.height * m.width;
  std::vector<float> batch(images.size() * static_cast<size_t>(per_image));
  for (size_t i = 0; i < images.size(); ++i) {
    preprocess(m, images[i], batch.data() + static_cast<int64_t>(i) * per_image);
  }
  return classify(m, batch.data(), static_cast<int64_t>(images.size()));
}

}  // namespace ddpipe::eval
