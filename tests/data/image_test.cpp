#include "data/image.h"

#include <gtest/gtest.h>
#include <png.h>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "core/fs.h"
#include "fixtures.h"
#include "test_util.h"

namespace ddpipe::data {
namespace {

namespace dt = ddpipe::testing;
namespace fs = std::filesystem;
using core::ErrorKind;

std::vector<uint8_t> iota_bytes(size_t n, int step = 7) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * step);
  return v;
}

TEST(DecodePngTest, GreyAndRgbAreExact) {
  const auto grey = iota_bytes(6);
  Image g = decode_image(dt::encode_png(3, 2, PNG_COLOR_TYPE_GRAY, 8, grey), "grey.png");
  EXPECT_EQ(g.channels, 1);
  EXPECT_EQ(g.height, 2);
  EXPECT_EQ(g.width, 3);
  EXPECT_EQ(g.pixels, grey);

  const auto rgb = iota_bytes(2 * 4 * 3, 5);
  Image c = decode_image(dt::encode_png(4, 2, PNG_COLOR_TYPE_RGB, 8, rgb), "rgb.png");
  EXPECT_EQ(c.channels, 3);
  EXPECT_EQ(c.pixels, rgb);

  Image i =
      decode_image(dt::encode_png(4, 2, PNG_COLOR_TYPE_RGB, 8, rgb, {}, {}, true), "adam7.png");
  EXPECT_EQ(i.pixels, rgb);
}

TEST(DecodePngTest, AlphaIsCompositedOnBlack) {
  const std::vector<uint8_t> rgba = {200, 100, 50, 128, 10, 20, 30, 255, 255, 255, 255, 0};
  Image img = decode_image(dt::encode_png(3, 1, PNG_COLOR_TYPE_RGBA, 8, rgba), "rgba.png");
  EXPECT_EQ(img.channels, 3);
  const std::vector<uint8_t> want = {(200 * 128 + 127) / 255,
                                     (100 * 128 + 127) / 255,
                                     (50 * 128 + 127) / 255,
                                     10,
                                     20,
                                     30,
                                     0,
                                     0,
                                     0};
  EXPECT_EQ(img.pixels, want);

  const std::vector<uint8_t> ga = {255, 51, 100, 255};
  Image g = decode_image(dt::encode_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga), "ga.png");
  EXPECT_EQ(g.channels, 1);
  EXPECT_EQ(g.pixels, (std::vector<uint8_t>{51, 100}));

  // Palette with a transparent entry.
  const std::vector<uint8_t> palette = {255, 0, 0, 0, 255, 0};
  Image p = decode_image(dt::encode_png(2, 1, PNG_COLOR_TYPE_PALETTE, 8, {0, 1}, palette, {0}),
                         "palette.png");
  EXPECT_EQ(p.channels, 3);
  EXPECT_EQ(p.pixels, (std::vector<uint8_t>{0, 0, 0, 0, 255, 0}));
}

TEST(DecodePngTest, SixteenAndLowBitDepthsBecomeEightBit) {
  const std::vector<uint16_t> samples = {0, 257, 0x8000, 0xABCD, 0xFFFF, 1000};
  std::vector<uint8_t> rows;
  for (uint16_t s : samples) {
    rows.insert(rows.end(), {static_cast<uint8_t>(s >> 8), static_cast<uint8_t>(s)});
  }
  Image img = decode_image(dt::encode_png(2, 1, PNG_COLOR_TYPE_RGB, 16, rows), "deep.png");
  ASSERT_EQ(img.pixels.size(), 6u);
  for (size_t k = 0; k < samples.size(); ++k) {
    EXPECT_NEAR(img.pixels[k], samples[k] / 257.0, 0.5 + 1e-9) << k;
  }
  // 1-bit grey: 0b10100000 → 255, 0, 255
  Image bits = decode_image(dt::encode_png(3, 1, PNG_COLOR_TYPE_GRAY, 1, {0xA0}), "bits.png");
  EXPECT_EQ(bits.pixels, (std::vector<uint8_t>{255, 0, 255}));
}

TEST(DecodeJpegTest, GreyAndRgb) {
  std::vector<uint8_t> grey(16 * 16);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      grey[static_cast<size_t>(y * 16 + x)] = static_cast<uint8_t>(8 * x + 4 * y);
    }
  }
  Image g = decode_image(dt::encode_jpeg(16, 16, 1, grey), "grey.jpg");
  EXPECT_EQ(g.channels, 1);
  EXPECT_EQ(g.width, 16);
  for (size_t i = 0; i < grey.size(); ++i) ASSERT_NEAR(g.pixels[i], grey[i], 3) << i;

  std::vector<uint8_t> rgb(8 * 8 * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = 200;
    rgb[i + 1] = 120;
    rgb[i + 2] = 40;
  }
  Image c = decode_image(dt::encode_jpeg(8, 8, 3, rgb), "rgb.jpg");
  EXPECT_EQ(c.channels, 3);
  for (size_t i = 0; i < rgb.size(); ++i) ASSERT_NEAR(c.pixels[i], rgb[i], 3) << i;
}

TEST(DecodeImageTest, BadInputsAreDataErrors) {
  EXPECT_TRUE(dt::throws_error([] { decode_image("GIF89a....", "upload"); }, ErrorKind::kData,
                               {"upload", "not a PNG or JPEG image"}));
  EXPECT_TRUE(dt::throws_error([] { decode_image("", "empty"); }, ErrorKind::kData, {"empty"}));

  std::string png = dt::encode_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, iota_bytes(256));
  EXPECT_TRUE(dt::throws_error([&] { decode_image(png.substr(0, png.size() - 20), "cut.png"); },
                               ErrorKind::kData, {"cut.png", "corrupt PNG"}));
  std::string flipped = png;
  flipped[flipped.size() - 30] ^= 0x55;  // inside IDAT: CRC or zlib error
  EXPECT_TRUE(
      dt::throws_error([&] { decode_image(flipped, "crc.png"); }, ErrorKind::kData, {"crc.png"}));

  std::string jpg = dt::encode_jpeg(16, 16, 1, iota_bytes(256));
  EXPECT_TRUE(dt::throws_error([&] { decode_image(jpg.substr(0, jpg.size() / 2), "cut.jpg"); },
                               ErrorKind::kData, {"cut.jpg", "corrupt JPEG"}));
}

// A PNG whose IHDR claims width×height, followed by a tiny IDAT: decoding it fully would need
// width×height bytes.
std::string forged_png(uint32_t width, uint32_t height) {
  auto be32 = [](std::string& s, uint32_t v) {
    for (int sh = 24; sh >= 0; sh -= 8) s.push_back(static_cast<char>((v >> sh) & 0xff));
  };
  auto chunk = [&](std::string& out, const std::string& type, const std::string& data) {
    be32(out, static_cast<uint32_t>(data.size()));
    const std::string body = type + data;
    out += body;
    be32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                          static_cast<uInt>(body.size()))));
  };
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  be32(ihdr, width);
  be32(ihdr, height);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", std::string("\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9));
  chunk(png, "IEND", "");
  return png;
}

TEST(DecodeImageTest, DeclaredSizeIsCheckedBeforeAllocating) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(dt::throws_error([] { decode_image(forged_png(1000000, 1000000), "huge.png"); },
                               ErrorKind::kData,
                               {"huge.png", "1000000x1000000", "over the limit"}));
  EXPECT_TRUE(dt::throws_error([] { decode_image(forged_png(20000, 20000), "bomb.png"); },
                               ErrorKind::kData,
                               {"20000x20000", "over the limit of 67108864 pixels"}));
  const std::string ok = dt::encode_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, iota_bytes(256));
  EXPECT_TRUE(dt::throws_error([&] { decode_image(ok, "small.png", 100); }, ErrorKind::kData,
                               {"16x16", "limit of 100 pixels"}));
  EXPECT_EQ(decode_image(ok, "small.png", 256).pixels.size(), 256u);

  // A JPEG whose SOF0 was patched to 65000×65000.
  std::string jpg = dt::encode_jpeg(16, 16, 1, iota_bytes(256));
  const size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpg[sof + 5] = jpg[sof + 7] = static_cast<char>(0xFD);
  jpg[sof + 6] = jpg[sof + 8] = static_cast<char>(0xE8);
  EXPECT_TRUE(dt::throws_error([&] { decode_image(jpg, "huge.jpg"); }, ErrorKind::kData,
                               {"huge.jpg", "65000x65000", "over the limit"}));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

TEST(DecodeImageTest, RefusalsCarryTheirReason) {
  auto reason = [](const std::string& bytes, int64_t max_pixels) {
    try {
      decode_image(bytes, "x", max_pixels);
    } catch (const ImageError& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kData);
      return static_cast<int>(e.reason());
    } catch (const core::Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kData);
      return -1;
    }
    return -2;
  };
  EXPECT_EQ(reason("BM not an image", 100), static_cast<int>(ImageError::Reason::kNotAnImage));
  EXPECT_EQ(reason(forged_png(100, 100), 100), static_cast<int>(ImageError::Reason::kTooLarge));
  const std::string jpg = dt::encode_jpeg(16, 16, 1, iota_bytes(256));
  EXPECT_EQ(reason(jpg, 255), static_cast<int>(ImageError::Reason::kTooLarge));
  EXPECT_EQ(reason(jpg.substr(0, 100), 1000), -1);  // corrupt data: a plain core::Error
}

TEST(ToChwTest, LayoutResizeAndChannels) {
  Image rgb{3, 1, 2, {1, 2, 3, 4, 5, 6}};
  EXPECT_EQ(to_chw(rgb, 3, 1, 2), (std::vector<uint8_t>{1, 4, 2, 5, 3, 6}));

  Image row{1, 1, 2, {0, 100}};  // half-pixel centres, as torch's bilinear (align_corners=False)
  EXPECT_EQ(to_chw(row, 1, 1, 4), (std::vector<uint8_t>{0, 25, 75, 100}));
  EXPECT_EQ(to_chw(row, 1, 3, 1), (std::vector<uint8_t>{50, 50, 50}));
  Image four{1, 1, 4, {0, 10, 100, 200}};
  EXPECT_EQ(to_chw(four, 1, 1, 2), (std::vector<uint8_t>{5, 150}));
  Image col{1, 2, 1, {0, 100}};
  EXPECT_EQ(to_chw(col, 1, 4, 1), (std::vector<uint8_t>{0, 25, 75, 100}));

  Image prim{3, 1, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255}};
  EXPECT_EQ(to_chw(prim, 1, 1, 3), (std::vector<uint8_t>{76, 150, 29}));
  Image grey{1, 1, 2, {7, 9}};
  EXPECT_EQ(to_chw(grey, 3, 1, 2), (std::vector<uint8_t>{7, 9, 7, 9, 7, 9}));

  EXPECT_TRUE(dt::throws_error([&] { to_chw(grey, 2, 1, 1); }, ErrorKind::kUsage, {"channels"}));
  EXPECT_TRUE(dt::throws_error(
      [&] {
        to_chw(Image{3, 2, 2, {1}}, 3, 1, 1);
      },
      ErrorKind::kUsage, {}));
}

// ---- shared test images (PngSuite and hostile inputs), when ../shared is present -------------

TEST(EncodePngTest, DecodesBackToTheSameBytesAndIsDeterministic) {
  for (int64_t c : {1, 3}) {
    std::vector<uint8_t> chw(static_cast<size_t>(c * 9 * 13));
    for (size_t i = 0; i < chw.size(); ++i) chw[i] = static_cast<uint8_t>(i * 37 + c);
    const std::string png = encode_png(chw.data(), c, 9, 13);
    EXPECT_EQ(png, encode_png(chw.data(), c, 9, 13));
    const Image img = decode_image(png, "encoded");
    EXPECT_EQ(std::make_tuple(img.channels, img.height, img.width), std::make_tuple(c, 9L, 13L));
    EXPECT_EQ(to_chw(img, c, 9, 13), chw);
    EXPECT_EQ(image_member_extension(png, "encoded"), "png");
  }
  EXPECT_TRUE(dt::throws_error([] { encode_png(nullptr, 2, 4, 4); }, ErrorKind::kUsage,
                               {"channels must be 1 or 3"}));
}

TEST(ReadImageHeaderTest, ShapeWithoutPixelsAndTheDecodersHeaderErrors) {
  std::vector<uint8_t> pixels(21 * 11 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  const std::string jpeg = dt::encode_jpeg(21, 11, 3, pixels);
  const Image h = read_image_header(jpeg, "a.jpg");
  EXPECT_EQ(std::make_tuple(h.channels, h.height, h.width), std::make_tuple(3L, 11L, 21L));
  EXPECT_EQ(image_member_extension(jpeg, "a.jpg"), "jpg");
  // Cut after the header: the header is fine, decoding is not.
  const std::string body_cut = jpeg.substr(0, jpeg.size() * 3 / 4);
  EXPECT_EQ(read_image_header(body_cut, "b.jpg").width, 21);
  EXPECT_TRUE(dt::throws_error([&] { decode_image(body_cut, "b.jpg"); }, ErrorKind::kData,
                               {"b.jpg", "corrupt JPEG"}));
  EXPECT_TRUE(dt::throws_error([&] { image_member_extension(jpeg.substr(0, 30), "c.jpg"); },
                               ErrorKind::kData, {"c.jpg", "corrupt JPEG"}));
  EXPECT_TRUE(dt::throws_error([&] { image_member_extension("GIF89a", "d.gif"); }, ErrorKind::kData,
                               {"d.gif", "not a PNG or JPEG"}));
}

fs::path image_testdata() {
  const fs::path shared = dt::shared_dir();
  return shared.empty() ? fs::path() : shared / "testdata" / "images";
}

TEST(SharedImagesTest, PngSuite) {
  const fs::path dir = image_testdata() / "pngsuite";
  if (image_testdata().empty() || !fs::exists(dir / "expected.csv")) {
    GTEST_SKIP() << "shared/testdata/images/pngsuite not found (set DDPIPE_SHARED_DIR)";
  }
  std::istringstream csv(core::read_file(dir / "expected.csv"));
  std::string line;
  std::getline(csv, line);  // header
  int checked = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    ASSERT_GE(f.size(), 4u) << line;
    const std::string bytes = core::read_file(dir / f[0]);
    if (f[1] == "reject") {
      EXPECT_TRUE(dt::throws_error([&] { decode_image(bytes, f[0]); }, ErrorKind::kData, {f[0]}));
    } else {
      Image img = decode_image(bytes, f[0]);
      EXPECT_EQ(img.width, std::stoi(f[2])) << f[0];
      EXPECT_EQ(img.height, std::stoi(f[3])) << f[0];
      EXPECT_TRUE(img.channels == 1 || img.channels == 3) << f[0];
      EXPECT_EQ(img.pixels.size(), static_cast<size_t>(img.width * img.height * img.channels));
      const Image header = read_image_header(bytes, f[0]);  // the same shape, no pixels
      EXPECT_EQ(std::make_tuple(header.channels, header.height, header.width),
                std::make_tuple(img.channels, img.height, img.width))
          << f[0];
      EXPECT_TRUE(header.pixels.empty());
      // Interlaced twins decode to the same pixels.
      const std::string name = fs::path(f[0]).filename().string();
      if (name.rfind("basi", 0) == 0) {
        Image twin = decode_image(
            core::read_file(dir / fs::path(f[0]).parent_path() / ("basn" + name.substr(4))),
            "twin");
        EXPECT_EQ(img.pixels, twin.pixels) << f[0];
      }
    }
    ++checked;
  }
  EXPECT_GE(checked, 100);
}

TEST(SharedImagesTest, HostileInputs) {
  const fs::path dir = image_testdata() / "hostile";
  if (image_testdata().empty() || !fs::is_directory(dir)) {
    GTEST_SKIP() << "shared/testdata/images/hostile not found (set DDPIPE_SHARED_DIR)";
  }
  auto decode = [&](const std::string& name) { decode_image(core::read_file(dir / name), name); };
  EXPECT_TRUE(dt::throws_error([&] { decode("png_dims_1000000x1000000_truncated.png"); },
                               ErrorKind::kData, {"over the limit"}));
  EXPECT_TRUE(dt::throws_error([&] { decode("png_bomb_20000x20000_gray8.png"); }, ErrorKind::kData,
                               {"20000x20000", "over the limit"}));
  EXPECT_TRUE(dt::throws_error([&] { decode("jpeg_dims_65000x65000_truncated.jpg"); },
                               ErrorKind::kData, {"65000x65000", "over the limit"}));
  for (const char* gif :
       {"gif_stb_issue1538_GHSL-2023-145.gif", "gif_stb_issue1916_two_back.gif"}) {
    EXPECT_TRUE(dt::throws_error([&] { decode(gif); }, ErrorKind::kData, {"not a PNG or JPEG"}));
  }
  // The zTXt bomb is a valid 1x1 image: its text chunk is skipped, not inflated.
  const auto t0 = std::chrono::steady_clock::now();
  Image tiny = decode_image(core::read_file(dir / "png_ztxt_bomb_50MB.png"), "ztxt");
  EXPECT_EQ(tiny.width * tiny.height, 1);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
}

}  // namespace
}  // namespace ddpipe::data
