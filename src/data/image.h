// ddpipe::data — image decoding (Debian's libpng and libjpeg-turbo) and conversion to the
// stored tensor layout. Shared by ingest (image folders), `ddpipe predict` and serving, so an
// image is converted exactly the same way everywhere. PNG encoding for the sharded form of the
// in-memory formats (data::ingest_sharded).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace ddpipe::data {

// Why decode_image refused an input it could not even start decoding, for callers that answer
// differently (the inference service: 415 and 413). A kData error like every other decode error.
class ImageError : public core::Error {
 public:
  enum class Reason { kNotAnImage, kTooLarge };
  ImageError(Reason reason, const std::string& message)
      : core::Error(core::ErrorKind::kData, message), reason_(reason) {}
  Reason reason() const noexcept { return reason_; }

 private:
  Reason reason_;
};

struct Image {
  int64_t channels = 0;  // 1 (grey), 3 (RGB); alpha is composited on black, 16-bit scaled
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;  // H×W×C interleaved
};

// Decodes PNG or JPEG bytes. Width × height is checked against `max_pixels` before any pixel
// buffer is allocated. Throws ImageError ("not a PNG or JPEG image", "image is 20000x20000,
// over the limit of N pixels") or core::Error(kData) (libpng/libjpeg's own message for corrupt
// data). `what` names the
// input in messages (a file name or "request body").
Image decode_image(std::string_view bytes, const std::string& what,
                   int64_t max_pixels = 64LL * 1024 * 1024);

// The header of PNG or JPEG bytes, parsed by the same libpng/libjpeg steps as decode_image but
// without decoding the pixels: channels, height and width (channels as decode_image gives them:
// 1 or 3), `pixels` empty. Throws what decode_image throws for the header (not an image, a
// corrupt or truncated header, over max_pixels, a JPEG of other than 1 or 3 components); data
// cut after the header is found only by decode_image.
Image read_image_header(std::string_view bytes, const std::string& what,
                        int64_t max_pixels = 64LL * 1024 * 1024);

// The ingest's image check (shards::ImageCheck): "jpg" or "png" for bytes whose header
// read_image_header accepts (with its default pixel limit, decode_image's); its errors else.
std::string image_member_extension(std::string_view bytes, const std::string& what);

// Encodes C×H×W bytes (channels 1: grey, 3: RGB; 8 bits) as a PNG, losslessly: decode_image and
// to_chw at the same shape give the bytes back. Deterministic (no time or text chunks, zlib
// level 6, libpng's default filters): the same pixels give the same bytes with the same libpng
// and zlib. Throws core::Error(kUsage) for another channel count or an empty shape.
std::string encode_png(const uint8_t* chw, int64_t channels, int64_t height, int64_t width);

// Converts to `channels` (grey = ITU-R 601 luma; grey→RGB replicates) and resizes to
// height×width (bilinear, half-pixel centres); returns C×H×W bytes.
std::vector<uint8_t> to_chw(const Image& image, int64_t channels, int64_t height, int64_t width);

}  // namespace ddpipe::data
