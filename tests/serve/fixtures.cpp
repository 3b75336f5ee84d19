#include "fixtures.h"

#include <png.h>
// clang-format off
#include <cstdio>
#include <jpeglib.h>
// clang-format on
#include <torch/torch.h>

#include <random>
#include <stdexcept>

#include "model/model.h"
#include "registry/registry.h"

namespace ddpipe::serve::fixtures {

std::string publish_model(storage::Store& store, const std::string& name, uint64_t seed,
                          const ModelShape& shape) {
  torch::manual_seed(seed);
  auto net = model::make_model({shape.arch, shape.channels, shape.classes, shape.width_param});
  std::vector<std::string> classes;
  for (int64_t i = 0; i < shape.classes; ++i) classes.push_back("class-" + std::to_string(i));
  nlohmann::json manifest = {
      {"dataset",
       {{"classes", classes},
        {"mean", std::vector<float>(static_cast<size_t>(shape.channels), 0.286f)},
        {"std", std::vector<float>(static_cast<size_t>(shape.channels), 0.353f)},
        {"channels", shape.channels},
        {"height", shape.height},
        {"width", shape.width}}},
      {"model_spec",
       {{"arch", shape.arch},
        {"in_channels", shape.channels},
        {"num_classes", shape.classes},
        {"width", shape.width_param}}},
      {"preprocess", {{"normalize", true}, {"channels_last", shape.channels_last}}}};
  registry::Registry reg(store);
  return reg.publish(name, {{"model.pt", model::save_state(*net)}}, manifest);
}

std::vector<uint8_t> random_pixels(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> p(n);
  for (auto& v : p) v = static_cast<uint8_t>(rng() & 0xff);
  return p;
}

std::string encode_png(int64_t width, int64_t height, int64_t channels,
                       const std::vector<uint8_t>& pixels) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  const png_uint_32 formats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  image.format = formats[channels - 1];
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr)) {
    throw std::runtime_error(std::string("png: ") + image.message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, pixels.data(), 0, nullptr)) {
    throw std::runtime_error(std::string("png: ") + image.message);
  }
  out.resize(size);
  return out;
}

std::string encode_jpeg(int64_t width, int64_t height, int64_t channels,
                        const std::vector<uint8_t>& pixels, int quality) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buffer, &size);
  c.image_width = static_cast<JDIMENSION>(width);
  c.image_height = static_cast<JDIMENSION>(height);
  c.input_components = static_cast<int>(channels);
  c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels.data()) + c.next_scanline * width * channels;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buffer), size);
  jpeg_destroy_compress(&c);
  free(buffer);
  return out;
}

std::string multipart(const std::string& field, const std::string& filename,
                      const std::string& bytes) {
  return "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + field +
         "\"; filename=\"" + filename + "\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
         bytes + "\r\n--" + kBoundary + "--\r\n";
}

}  // namespace ddpipe::serve::fixtures
