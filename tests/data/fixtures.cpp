#include "fixtures.h"

// clang-format off
#include <cstdio>
#include <csetjmp>
#include <png.h>
#include <jpeglib.h>
// clang-format on
#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include <fstream>
#include <random>
#include <stdexcept>

namespace ddpipe::testing {
namespace fs = std::filesystem;

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string gzip(const std::string& bytes) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&z, bytes.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

namespace {
void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}
}  // namespace

std::string idx_images(int64_t n, int64_t rows, int64_t cols, const std::vector<uint8_t>& pixels) {
  std::string s;
  put_be32(s, 0x00000803);
  put_be32(s, static_cast<uint32_t>(n));
  put_be32(s, static_cast<uint32_t>(rows));
  put_be32(s, static_cast<uint32_t>(cols));
  s.append(pixels.begin(), pixels.end());
  return s;
}

std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string s;
  put_be32(s, 0x00000801);
  put_be32(s, static_cast<uint32_t>(labels.size()));
  s.append(labels.begin(), labels.end());
  return s;
}

data::Dataset pattern_dataset(int64_t train, int64_t test, int64_t channels, int64_t rows,
                              int64_t cols, int64_t classes, uint32_t seed) {
  data::Dataset d;
  d.name = "pattern";
  d.channels = channels;
  d.height = rows;
  d.width = cols;
  for (int64_t c = 0; c < classes; ++c) d.classes.push_back("class" + std::to_string(c));
  std::mt19937 rng(seed);
  auto fill = [&](data::Split& s, int64_t n) {
    s.images.resize(static_cast<size_t>(n * d.image_bytes()));
    for (auto& b : s.images) b = static_cast<uint8_t>(rng() & 0xff);
    s.labels.resize(static_cast<size_t>(n));
    for (auto& l : s.labels) l = static_cast<int32_t>(rng() % static_cast<uint32_t>(classes));
  };
  fill(d.train, train);
  fill(d.test, test);
  return d;
}

void write_idx_dataset(const fs::path& dir, const data::Dataset& d, bool gz) {
  auto put = [&](const std::string& name, const std::string& bytes) {
    write_bytes(dir / (gz ? name + ".gz" : name), gz ? gzip(bytes) : bytes);
  };
  auto labels = [](const data::Split& s) {
    return std::vector<uint8_t>(s.labels.begin(), s.labels.end());
  };
  put("train-images-idx3-ubyte", idx_images(d.train.size(), d.height, d.width, d.train.images));
  put("train-labels-idx1-ubyte", idx_labels(labels(d.train)));
  put("t10k-images-idx3-ubyte", idx_images(d.test.size(), d.height, d.width, d.test.images));
  put("t10k-labels-idx1-ubyte", idx_labels(labels(d.test)));
}

std::string cifar_records(const data::Split& split, int64_t begin, int64_t end) {
  std::string s;
  for (int64_t i = begin; i < end; ++i) {
    s.push_back(static_cast<char>(split.labels[static_cast<size_t>(i)]));
    s.append(split.images.begin() + i * 3072, split.images.begin() + (i + 1) * 3072);
  }
  return s;
}

std::vector<std::pair<std::string, std::string>> cifar_archive_entries(const data::Dataset& d) {
  std::vector<std::pair<std::string, std::string>> e;
  const int64_t per = d.train.size() / 5;
  for (int b = 0; b < 5; ++b) {
    e.emplace_back("cifar-10-batches-bin/data_batch_" + std::to_string(b + 1) + ".bin",
                   cifar_records(d.train, b * per, (b + 1) * per));
  }
  e.emplace_back("cifar-10-batches-bin/test_batch.bin", cifar_records(d.test, 0, d.test.size()));
  std::string meta;
  for (const auto& c : d.classes) meta += c + "\n";
  e.emplace_back("cifar-10-batches-bin/batches.meta.txt", meta + "\n");
  e.emplace_back("cifar-10-batches-bin/readme.html", "<html></html>\n");
  return e;
}

void write_cifar_dir(const fs::path& dir, const data::Dataset& d, bool meta) {
  for (const auto& [name, content] : cifar_archive_entries(d)) {
    const std::string file = fs::path(name).filename().string();
    if (file == "batches.meta.txt" && !meta) continue;
    write_bytes(dir / file, content);
  }
}

void write_tar_gz(const fs::path& path,
                  const std::vector<std::pair<std::string, std::string>>& entries) {
  fs::create_directories(path.parent_path());
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) {
    throw std::runtime_error(std::string("archive open: ") + archive_error_string(a));
  }
  for (const auto& [name, content] : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

namespace {
void png_append(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}
void png_no_flush(png_structp) {}
}  // namespace

std::string encode_png(uint32_t width, uint32_t height, int color_type, int bit_depth,
                       const std::vector<uint8_t>& rows, const std::vector<uint8_t>& palette_rgb,
                       const std::vector<uint8_t>& trns, bool interlace) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng write failed");
  }
  png_set_write_fn(png, &out, png_append, png_no_flush);
  png_set_IHDR(png, info, width, height, bit_depth, color_type,
               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> palette;
  for (size_t i = 0; i + 2 < palette_rgb.size(); i += 3) {
    palette.push_back({palette_rgb[i], palette_rgb[i + 1], palette_rgb[i + 2]});
  }
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  if (!trns.empty()) {
    png_set_tRNS(png, info, const_cast<png_bytep>(trns.data()), static_cast<int>(trns.size()),
                 nullptr);
  }
  png_write_info(png, info);
  const size_t stride = rows.size() / height;
  std::vector<png_bytep> ptrs(height);
  for (uint32_t y = 0; y < height; ++y) ptrs[y] = const_cast<png_bytep>(rows.data() + y * stride);
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string encode_jpeg(int width, int height, int channels, const std::vector<uint8_t>& pixels,
                        int quality) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(width);
  c.image_height = static_cast<JDIMENSION>(height);
  c.input_components = channels;
  c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels.data() + c.next_scanline * width * channels);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

}  // namespace ddpipe::testing
