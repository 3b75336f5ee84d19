#include "data/image.h"

// clang-format off
#include <csetjmp>
#include <cstdio>
#include <png.h>
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace ddpipe::data {
namespace {

enum class Status { kOk, kError, kTooLarge };

[[noreturn]] void fail_too_large(const std::string& what, uint64_t w, uint64_t h,
                                 int64_t max_pixels) {
  throw ImageError(ImageError::Reason::kTooLarge, what + ": image is " + std::to_string(w) + "x" +
                                                      std::to_string(h) + ", over the limit of " +
                                                      std::to_string(max_pixels) + " pixels");
}

bool too_large(uint64_t w, uint64_t h, int64_t max_pixels) {
  return w == 0 || h == 0 || w * h > static_cast<uint64_t>(std::max<int64_t>(max_pixels, 0));
}

// Replaces interleaved colour+alpha by the colour composited on black.
void composite_alpha(Image& img, int64_t channels_with_alpha) {
  const int64_t n = img.height * img.width;
  const int64_t out_c = channels_with_alpha - 1;
  uint8_t* p = img.pixels.data();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* src = p + i * channels_with_alpha;
    const unsigned a = src[out_c];
    uint8_t* dst = p + i * out_c;  // never ahead of src: safe in place
    for (int64_t c = 0; c < out_c; ++c) dst[c] = static_cast<uint8_t>((src[c] * a + 127) / 255);
  }
  img.channels = out_c;
  img.pixels.resize(static_cast<size_t>(n * out_c));
}

// ---- PNG (libpng) ---------------------------------------------------------------------------

struct PngSource {
  const unsigned char* data;
  size_t size;
  size_t pos;
  char message[256];
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof src->message, "%s", msg);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_on_read(png_structp png, png_bytep out, size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "unexpected end of PNG data");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

struct PngHandles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngHandles() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

// libpng longjmps back into this frame on errors, so it keeps only trivially destructible
// locals; the buffers live in the caller. With `header_only`, stops after the header (img gets
// its shape, no pixels).
Status png_decode(png_structp png, png_infop info, int64_t max_pixels, bool header_only, Image& img,
                  std::vector<png_bytep>& rows, png_uint_32& width, png_uint_32& height) {
  if (setjmp(png_jmpbuf(png))) return Status::kError;
  png_read_info(png, info);
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  if (too_large(width, height, max_pixels)) return Status::kTooLarge;
  if (header_only) {
    img.channels = (color_type & PNG_COLOR_MASK_COLOR) ? 3 : 1;  // alpha is composited away
    img.height = height;
    img.width = width;
    return Status::kOk;
  }

  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (bit_depth == 16) png_set_scale_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  const size_t row_bytes = png_get_rowbytes(png, info);
  img.channels = png_get_channels(png, info);
  img.height = height;
  img.width = width;
  img.pixels.resize(row_bytes * height);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = img.pixels.data() + y * row_bytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  return Status::kOk;
}

Image decode_png(std::string_view bytes, const std::string& what, int64_t max_pixels,
                 bool header_only) {
  PngSource src{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0, {}};
  PngHandles h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
  if (h.png) h.info = png_create_info_struct(h.png);
  if (!h.png || !h.info) core::fail_data(what + ": cannot initialise libpng");
  png_set_read_fn(h.png, &src, png_on_read);
  // Our pixel cap decides the size; these bound what ancillary chunks (zTXt/iCCP bombs) cost.
  png_set_user_limits(h.png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_cache_max(h.png, 256);
  png_set_chunk_malloc_max(h.png, 8u << 20);
  static const png_byte kIgnored[] = "tEXt\0zTXt\0iTXt\0iCCP";
  png_set_keep_unknown_chunks(h.png, PNG_HANDLE_CHUNK_NEVER, kIgnored, 4);

  Image img;
  std::vector<png_bytep> rows;
  png_uint_32 width = 0, height = 0;
  switch (png_decode(h.png, h.info, max_pixels, header_only, img, rows, width, height)) {
    case Status::kError:
      core::fail_data(what + ": corrupt PNG: " + src.message);
    case Status::kTooLarge:
      fail_too_large(what, width, height, max_pixels);
    case Status::kOk:
      break;
  }
  if (img.channels == 2 || img.channels == 4) composite_alpha(img, img.channels);
  return img;
}

// ---- JPEG (libjpeg-turbo) -------------------------------------------------------------------

struct JpegErrors {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) mean corrupt or truncated data: treat them as errors.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_on_error(cinfo);
}

// Same discipline as png_decode: libjpeg longjmps back into this frame.
Status jpeg_decode(jpeg_decompress_struct& cinfo, JpegErrors& err, bool& created,
                   std::string_view bytes, int64_t max_pixels, bool header_only, Image& img,
                   JDIMENSION& width, JDIMENSION& height) {
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  if (setjmp(err.jump)) return Status::kError;
  jpeg_create_decompress(&cinfo);
  created = true;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  width = cinfo.image_width;
  height = cinfo.image_height;
  if (too_large(width, height, max_pixels)) return Status::kTooLarge;
  if (header_only) {
    img.channels = cinfo.num_components;
    img.height = height;
    img.width = width;
    return Status::kOk;
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img.channels = cinfo.output_components;
  img.height = cinfo.output_height;
  img.width = cinfo.output_width;
  const size_t stride = static_cast<size_t>(img.width * img.channels);
  img.pixels.resize(stride * static_cast<size_t>(img.height));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img.pixels.data() + cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  return Status::kOk;
}

Image decode_jpeg(std::string_view bytes, const std::string& what, int64_t max_pixels,
                  bool header_only) {
  jpeg_decompress_struct cinfo{};
  JpegErrors err{};
  bool created = false;
  Image img;
  JDIMENSION width = 0, height = 0;
  const Status status =
      jpeg_decode(cinfo, err, created, bytes, max_pixels, header_only, img, width, height);
  if (created) jpeg_destroy_decompress(&cinfo);
  switch (status) {
    case Status::kError:
      core::fail_data(what + ": corrupt JPEG: " + err.message);
    case Status::kTooLarge:
      fail_too_large(what, width, height, max_pixels);
    case Status::kOk:
      break;
  }
  if (img.channels != 1 && img.channels != 3) {
    core::fail_data(what + ": unsupported JPEG with " + std::to_string(img.channels) + " channels");
  }
  return img;
}

// ---- PNG encoding ---------------------------------------------------------------------------

void png_append(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}

void png_no_flush(png_structp) {}

struct PngWriteHandles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriteHandles() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// libpng longjmps back into this frame on errors (as png_decode).
bool png_encode(png_structp png, png_infop info, const std::vector<png_bytep>& rows,
                int64_t channels, int64_t height, int64_t width, std::string& out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, &out, png_append, png_no_flush);
  png_set_compression_level(png, 6);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, const_cast<png_bytepp>(rows.data()));
  png_write_end(png, nullptr);
  return true;
}

struct Tap {
  int64_t i0, i1;
  float f;
};

// Bilinear source taps with half-pixel centres (align_corners=False), clamped at the borders.
std::vector<Tap> taps(int64_t in, int64_t out) {
  std::vector<Tap> t(static_cast<size_t>(out));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    const double s = std::max(0.0, (static_cast<double>(o) + 0.5) * scale - 0.5);
    const int64_t i0 = std::min(static_cast<int64_t>(s), in - 1);
    t[static_cast<size_t>(o)] = {i0, std::min(i0 + 1, in - 1), static_cast<float>(s - i0)};
  }
  return t;
}

}  // namespace

namespace {

// decode_image, or with `header_only` its header: the shape without the pixels.
Image decode(std::string_view bytes, const std::string& what, int64_t max_pixels,
             bool header_only) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 8 && png_sig_cmp(b, 0, 8) == 0) {
    return decode_png(bytes, what, max_pixels, header_only);
  }
  if (bytes.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    return decode_jpeg(bytes, what, max_pixels, header_only);
  }
  // Every PNG starts with its IHDR chunk: with that in place, a damaged signature is a corrupt
  // PNG (PngSuite's xs*n0g01, xcrn0g04, xlfn0g04), not some other format.
  if (bytes.size() >= 16 && bytes.substr(12, 4) == "IHDR") {
    core::fail_data(what + ": corrupt PNG: damaged signature");
  }
  throw ImageError(ImageError::Reason::kNotAnImage, what + ": not a PNG or JPEG image");
}

}  // namespace

Image decode_image(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  return decode(bytes, what, max_pixels, false);
}

Image read_image_header(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  return decode(bytes, what, max_pixels, true);
}

std::string image_member_extension(std::string_view bytes, const std::string& what) {
  read_image_header(bytes, what);
  return bytes[0] == '\xff' ? "jpg" : "png";
}

std::string encode_png(const uint8_t* chw, int64_t channels, int64_t height, int64_t width) {
  if ((channels != 1 && channels != 3) || height <= 0 || width <= 0 || height > 0x7fffffff ||
      width > 0x7fffffff) {
    core::fail_usage("encode_png: invalid shape " + std::to_string(channels) + "x" +
                     std::to_string(height) + "x" + std::to_string(width) +
                     " (channels must be 1 or 3)");
  }
  const int64_t plane = height * width;
  std::vector<uint8_t> hwc(static_cast<size_t>(plane * channels));
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < plane; ++i)
      hwc[static_cast<size_t>(i * channels + c)] = chw[c * plane + i];
  }
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y)
    rows[static_cast<size_t>(y)] = hwc.data() + y * width * channels;
  PngWriteHandles h;
  h.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (h.png) h.info = png_create_info_struct(h.png);
  if (!h.png || !h.info)
    throw core::Error(core::ErrorKind::kInternal, "encode_png: cannot initialise libpng");
  std::string out;
  if (!png_encode(h.png, h.info, rows, channels, height, width, out)) {
    throw core::Error(core::ErrorKind::kInternal, "encode_png: libpng failed on a " +
                                                      std::to_string(width) + "x" +
                                                      std::to_string(height) + " image");
  }
  return out;
}

std::vector<uint8_t> to_chw(const Image& image, int64_t channels, int64_t height, int64_t width) {
  const int64_t ic = image.channels, ih = image.height, iw = image.width;
  if ((ic != 1 && ic != 3) || ih <= 0 || iw <= 0 ||
      image.pixels.size() != static_cast<size_t>(ic * ih * iw)) {
    core::fail_usage("to_chw: invalid image " + std::to_string(ic) + "x" + std::to_string(ih) +
                     "x" + std::to_string(iw) + " with " + std::to_string(image.pixels.size()) +
                     " bytes");
  }
  if ((channels != 1 && channels != 3) || height <= 0 || width <= 0) {
    core::fail_usage("to_chw: invalid target shape " + std::to_string(channels) + "x" +
                     std::to_string(height) + "x" + std::to_string(width) +
                     " (channels must be 1 or 3)");
  }
  const std::vector<Tap> ty = taps(ih, height), tx = taps(iw, width);
  const int64_t plane = height * width;
  std::vector<uint8_t> out(static_cast<size_t>(channels * plane));
  const uint8_t* px = image.pixels.data();
  auto to_byte = [](float v) { return static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f) + 0.5f); };
  float v[3];
  for (int64_t y = 0; y < height; ++y) {
    const Tap& a = ty[static_cast<size_t>(y)];
    const uint8_t* r0 = px + a.i0 * iw * ic;
    const uint8_t* r1 = px + a.i1 * iw * ic;
    for (int64_t x = 0; x < width; ++x) {
      const Tap& b = tx[static_cast<size_t>(x)];
      for (int64_t c = 0; c < ic; ++c) {
        const float top = r0[b.i0 * ic + c] + b.f * (r0[b.i1 * ic + c] - r0[b.i0 * ic + c]);
        const float bot = r1[b.i0 * ic + c] + b.f * (r1[b.i1 * ic + c] - r1[b.i0 * ic + c]);
        v[c] = top + a.f * (bot - top);
      }
      const int64_t o = y * width + x;
      if (channels == ic) {
        for (int64_t c = 0; c < ic; ++c) out[static_cast<size_t>(c * plane + o)] = to_byte(v[c]);
      } else if (channels == 1) {  // ITU-R 601 luma
        out[static_cast<size_t>(o)] = to_byte(0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2]);
      } else {
        const uint8_t g = to_byte(v[0]);
        for (int64_t c = 0; c < 3; ++c) out[static_cast<size_t>(c * plane + o)] = g;
      }
    }
  }
  return out;
}

}  // namespace ddpipe::data
