// Golden-fixture cross-validation of the quantized-safetensors kernels (FP8,
// GPTQ, AWQ, BitsAndBytes): every fixture file decodes to the reference
// library's F32 and BF16 goldens, through the scalar reference and through the
// Highway kernel on every target this CPU supports, in every orientation and
// in slices. Layouts: ../shared/fixtures/README.md.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/float_bits.hpp"
#include "kernels/quant/awq.hpp"
#include "kernels/quant/bnb.hpp"
#include "kernels/quant/fp8.hpp"
#include "kernels/quant/gptq.hpp"
#include "mneme/error.hpp"
#include "test_kernels_quant_support.hpp"
#include "test_support.hpp"

namespace {

namespace q = mneme::kernels::quant;
using mneme::DType;
using mneme::OutType;
using mneme::kernels::f16_from_f32;
using mneme::kernels::load_u32;
using namespace mneme::quant_test;

DType scale_dtype_from_id(std::uint32_t id) {
  REQUIRE(id <= 2);
  return id == 0 ? DType::f32 : id == 1 ? DType::bf16 : DType::f16;
}

// The F16 output must be our own F32 output rounded with f16_from_f32.
void expect_f16_of(const Buffer& got16, const Buffer& ours32, std::size_t n) {
  std::size_t bad = 0, first = n;
  for (std::size_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, ours32.data() + 4 * i, 4);
    if (mneme::kernels::load_u16(got16.data() + 2 * i) != f16_from_f32(f)) {
      if (bad++ == 0) first = i;
    }
  }
  INFO("first F16 mismatch at " << first);
  CHECK(bad == 0);
}

// ---------------------------------------------------------------- FP8

struct Fp8Case {
  q::Fp8Tensor t;
  q::Bytes weight, bf16, f32;
};

Fp8Case read_fp8(Reader& r) {
  r.magic("AMNF");
  REQUIRE(r.u32() == 2);
  const std::uint32_t scheme = r.u32();
  const std::uint32_t sdt = r.u32();
  Fp8Case c;
  c.t.rows = r.u32();
  c.t.cols = r.u32();
  const std::size_t n = c.t.rows * c.t.cols;
  const std::uint32_t wlen = r.u32(), slen = r.u32(), blen = r.u32(), flen = r.u32();
  REQUIRE(scheme <= 2);
  REQUIRE(wlen == n);
  REQUIRE(blen == 2 * n);
  REQUIRE(flen == 4 * n);
  c.t.scaling = scheme == 0   ? q::Fp8Scaling::block
                : scheme == 1 ? q::Fp8Scaling::per_tensor
                              : q::Fp8Scaling::per_channel;
  c.t.scale_dtype = scale_dtype_from_id(sdt);
  c.weight = r.take(wlen);
  c.t.scales = r.take(slen);
  if (c.t.scaling == q::Fp8Scaling::per_tensor) {
    c.t.scales = c.t.scales.first(c.t.scale_dtype == DType::f32 ? 4 : 2);  // first element
  }
  c.bf16 = r.take(blen);
  c.f32 = r.take(flen);
  r.end();
  return c;
}

Buffer run_fp8(const Impl& impl, const q::Fp8Tensor& t, std::size_t r0, std::size_t r1,
               const std::uint8_t* in, OutType ot, Buffer* into = nullptr, std::size_t at = 0) {
  Buffer local;
  Buffer& out = into ? *into : local;
  if (!into) out.assign((r1 - r0) * t.cols * mneme::out_size(ot), 0xAB);
  void* dst = out.data() + at * mneme::out_size(ot);
  if (impl.simd) {
    q::dequant_fp8(t, r0, r1, in, ot, dst);
  } else {
    q::scalar::dequant_fp8(t, r0, r1, in, ot, dst);
  }
  return out;
}

TEST_CASE("fp8 fixtures decode to the PyTorch goldens") {
  const auto files = mneme::test::fixture_files("fp8");
  REQUIRE(files.size() >= 5);
  for (const auto& file : files) {
    INFO("fixture " << file.filename().string());
    const Buffer bytes = mneme::test::read_file(file);
    Reader r(bytes);
    const Fp8Case c = read_fp8(r);
    const std::size_t n = c.t.rows * c.t.cols;
    for_each_impl([&](const Impl& impl) {
      INFO("impl " << impl.name);
      const Buffer f32 = run_fp8(impl, c.t, 0, c.t.rows, c.weight.data(), OutType::f32);
      expect_f32(f32, c.f32.data(), n, false);
      const Buffer bf16 = run_fp8(impl, c.t, 0, c.t.rows, c.weight.data(), OutType::bf16);
      expect_bf16(bf16, c.bf16.data(), n, 1, false);
      expect_f16_of(run_fp8(impl, c.t, 0, c.t.rows, c.weight.data(), OutType::f16), f32, n);
      // In slices of rows, each written into its place.
      for (OutType ot : {OutType::f32, OutType::bf16}) {
        Buffer sliced(n * mneme::out_size(ot), 0xCD);
        const std::size_t cuts[] = {0, 1, 37, 128, 129, c.t.rows};
        for (std::size_t k = 0; k + 1 < std::size(cuts); ++k) {
          const std::size_t a = cuts[k], b = cuts[k + 1];
          run_fp8(impl, c.t, a, b, c.weight.data() + a * c.t.cols, ot, &sliced, a * c.t.cols);
        }
        expect_bytes_equal(sliced, run_fp8(impl, c.t, 0, c.t.rows, c.weight.data(), ot));
      }
    });
  }
}

TEST_CASE("fp8 e5m2 hand-derived values") {
  // E5M2 = the top byte of an IEEE F16: S.EEEEE.MM, bias 15, Inf and NaN.
  const std::uint8_t codes[] = {0x3C, 0xBC, 0x7C, 0xFC, 0x01, 0x03, 0x04, 0x7B, 0x80, 0x00, 0x38, 0x3D};
  const std::uint32_t want[] = {
      0x3F800000,  // 1.0
      0xBF800000,  // -1.0
      0x7F800000,  // +Inf
      0xFF800000,  // -Inf
      0x37800000,  // 2^-16, smallest subnormal
      0x38400000,  // 3 * 2^-16
      0x38800000,  // 2^-14, smallest normal
      0x47600000,  // 57344, largest finite
      0x80000000,  // -0.0
      0x00000000,  // +0.0
      0x3F000000,  // 0.5
      0x3FA00000,  // 1.25
  };
  q::Fp8Tensor t;
  t.format = q::Fp8Format::e5m2;
  t.rows = 1;
  t.cols = std::size(codes);
  for_each_impl([&](const Impl& impl) {
    INFO("impl " << impl.name);
    const Buffer out = run_fp8(impl, t, 0, 1, codes, OutType::f32);
    for (std::size_t i = 0; i < std::size(codes); ++i) {
      INFO("code " << int(codes[i]));
      CHECK(load_u32(out.data() + 4 * i) == want[i]);
    }
    // Every NaN code (exponent 31, mantissa != 0) stays NaN, sign kept.
    for (unsigned b : {0x7Du, 0x7Eu, 0x7Fu, 0xFDu, 0xFEu, 0xFFu}) {
      const std::uint8_t code = static_cast<std::uint8_t>(b);
      q::Fp8Tensor one = t;
      one.cols = 1;
      const Buffer o = run_fp8(impl, one, 0, 1, &code, OutType::f32);
      const std::uint32_t bits = load_u32(o.data());
      CHECK((bits & 0x7FFFFFFFu) > 0x7F800000u);
      CHECK((bits >> 31) == (b >> 7));
    }
  });
}

TEST_CASE("fp8 e5m2 against NumPy expectations") {
  const auto dir = numpy_expectations();
  for (int k = 0; k < 3; ++k) {
    const std::string name = "e5m2_" + std::to_string(k) + ".bin";
    INFO(name);
    const Buffer bytes = mneme::test::read_file(dir / name);
    Reader r(bytes);
    q::Fp8Tensor t;
    t.format = q::Fp8Format::e5m2;
    t.scaling = q::Fp8Scaling::block;
    t.rows = r.u32();
    t.cols = r.u32();
    t.block_rows = r.u32();
    t.block_cols = r.u32();
    t.scale_dtype = scale_dtype_from_id(r.u32());
    const std::size_t grid = std::size_t{r.u32()} * r.u32();
    const std::size_t n = t.rows * t.cols;
    const q::Bytes w = r.take(n);
    t.scales = r.take(grid * (t.scale_dtype == DType::f32 ? 4 : 2));
    const q::Bytes want = r.take(4 * n);
    r.end();
    for_each_impl([&](const Impl& impl) {
      INFO("impl " << impl.name);
      const Buffer f32 = run_fp8(impl, t, 0, t.rows, w.data(), OutType::f32);
      expect_f32(f32, want.data(), n, false);
      const Buffer bf16 = run_fp8(impl, t, 0, t.rows, w.data(), OutType::bf16);
      expect_bf16_of(bf16, f32, n);
      expect_f16_of(run_fp8(impl, t, 0, t.rows, w.data(), OutType::f16), f32, n);
    });
  }
}

// ---------------------------------------------------------------- GPTQ / AWQ

// Runs a [in, out] decoder over the whole weight in the given orientation.
template <class Decode>
Buffer run_matrix(Decode&& decode, std::size_t n_in, std::size_t n_out, OutType ot,
                  q::Orientation orient) {
  Buffer out(n_in * n_out * mneme::out_size(ot), 0xAB);
  decode(0, n_in, q::MatrixOut{out.data(), ot, orient, 0});
  return out;
}

// Decodes [in, out] in slices of input rows straight into a full-size output
// (transposed or not) and checks it equals the whole decode.
template <class Decode>
void check_matrix_slices(Decode&& decode, std::size_t n_in, std::size_t n_out,
                         const std::vector<std::size_t>& cuts) {
  for (OutType ot : {OutType::f32, OutType::bf16, OutType::f16}) {
    for (q::Orientation orient : {q::Orientation::in_out, q::Orientation::out_in}) {
      INFO("slices, out type " << int(ot) << ", orientation " << int(orient));
      const std::size_t es = mneme::out_size(ot);
      Buffer sliced(n_in * n_out * es, 0xCD);
      for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
        const std::size_t a = cuts[k], b = cuts[k + 1];
        const bool io = orient == q::Orientation::in_out;
        const std::size_t offset = io ? a * n_out : a;
        decode(a, b, q::MatrixOut{sliced.data() + offset * es, ot, orient, io ? n_out : n_in});
      }
      expect_bytes_equal(sliced, run_matrix(decode, n_in, n_out, ot, orient));
    }
  }
}

// Checks both orientations and all output types against [in, out] goldens.
template <class Decode>
void check_matrix_goldens(Decode&& decode, std::size_t n_in, std::size_t n_out,
                          const std::uint8_t* gold32, const std::uint8_t* gold16) {
  const std::size_t n = n_in * n_out;
  const Buffer t32 = transpose(gold32, n_in, n_out, 4);
  const Buffer t16 = transpose(gold16, n_in, n_out, 2);
  for (q::Orientation orient : {q::Orientation::in_out, q::Orientation::out_in}) {
    INFO("orientation " << (orient == q::Orientation::in_out ? "[in, out]" : "[out, in]"));
    const bool io = orient == q::Orientation::in_out;
    const Buffer f32 = run_matrix(decode, n_in, n_out, OutType::f32, orient);
    expect_f32(f32, io ? gold32 : t32.data(), n, false);
    expect_bf16(run_matrix(decode, n_in, n_out, OutType::bf16, orient), io ? gold16 : t16.data(),
                n, 0, false);
    expect_f16_of(run_matrix(decode, n_in, n_out, OutType::f16, orient), f32, n);
  }
}

struct GptqCase {
  q::GptqTensor t;
  q::Bytes qweight, bf16, f32;
};

GptqCase read_gptq(Reader& r) {
  r.magic("AMNQ");
  REQUIRE(r.u32() == 2);
  GptqCase c;
  c.t.bits = r.u32();
  c.t.group_size = r.u32();
  c.t.in_features = r.u32();
  c.t.out_features = r.u32();
  c.t.scale_dtype = scale_dtype_from_id(r.u32());
  const std::uint32_t has_g_idx = r.u32();
  const std::uint32_t qw = r.u32(), sl = r.u32(), zl = r.u32(), gl = r.u32(), bl = r.u32(),
                      fl = r.u32();
  const std::size_t n = c.t.in_features * c.t.out_features;
  REQUIRE(bl == 2 * n);
  REQUIRE(fl == 4 * n);
  REQUIRE((has_g_idx != 0) == (gl != 0));
  c.qweight = r.take(qw);
  REQUIRE(qw == n * c.t.bits / 8);
  c.t.scales = r.take(sl);
  c.t.qzeros = r.take(zl);
  c.t.g_idx = r.take(gl);
  c.bf16 = r.take(bl);
  c.f32 = r.take(fl);
  r.end();
  return c;
}

TEST_CASE("gptq fixtures decode to the GPTQModel goldens") {
  const auto files = mneme::test::fixture_files("gptq");
  REQUIRE(files.size() >= 2);
  for (const auto& file : files) {
    INFO("fixture " << file.filename().string());
    const Buffer bytes = mneme::test::read_file(file);
    Reader r(bytes);
    const GptqCase c = read_gptq(r);
    const std::size_t words_per_row = c.t.out_features * c.t.bits / 8;  // bytes per input row
    for_each_impl([&](const Impl& impl) {
      INFO("impl " << impl.name);
      auto decode = [&](std::size_t a, std::size_t b, const q::MatrixOut& out) {
        const std::uint8_t* in = c.qweight.data() + a * words_per_row;
        impl.simd ? q::dequant_gptq(c.t, a, b, in, out) : q::scalar::dequant_gptq(c.t, a, b, in, out);
      };
      check_matrix_goldens(decode, c.t.in_features, c.t.out_features, c.f32.data(), c.bf16.data());
      check_matrix_slices(decode, c.t.in_features, c.t.out_features, {0, 16, 136, 248, 256});
      // Without g_idx (these fixtures' g_idx are sequential) the result is the same.
      q::GptqTensor no_g = c.t;
      no_g.g_idx = {};
      auto decode_no_g = [&](std::size_t a, std::size_t b, const q::MatrixOut& out) {
        const std::uint8_t* in = c.qweight.data() + a * words_per_row;
        impl.simd ? q::dequant_gptq(no_g, a, b, in, out) : q::scalar::dequant_gptq(no_g, a, b, in, out);
      };
      check_matrix_goldens(decode_no_g, c.t.in_features, c.t.out_features, c.f32.data(),
                           c.bf16.data());
    });
  }
}

TEST_CASE("gptq v2 zeros and act-order g_idx against NumPy expectations") {
  const auto dir = numpy_expectations();
  for (const char* name : {"gptq_v2_4.bin", "gptq_v2_8.bin"}) {
    INFO(name);
    const Buffer bytes = mneme::test::read_file(dir / name);
    Reader r(bytes);
    q::GptqTensor t;
    t.zeros = q::GptqZeros::v2;
    t.bits = r.u32();
    t.group_size = r.u32();
    t.in_features = r.u32();
    t.out_features = r.u32();
    const bool has_g_idx = r.u32() != 0;
    const std::size_t groups = t.in_features / t.group_size;
    const q::Bytes qweight = r.take(t.in_features * t.out_features * t.bits / 8);
    t.scale_dtype = DType::f16;
    t.scales = r.take(groups * t.out_features * 2);
    t.qzeros = r.take(groups * t.out_features * t.bits / 8);
    if (has_g_idx) t.g_idx = r.take(4 * t.in_features);
    const q::Bytes want = r.take(4 * t.in_features * t.out_features);
    r.end();
    const std::size_t row_bytes = t.out_features * t.bits / 8;
    for_each_impl([&](const Impl& impl) {
      INFO("impl " << impl.name);
      auto decode = [&](std::size_t a, std::size_t b, const q::MatrixOut& out) {
        const std::uint8_t* in = qweight.data() + a * row_bytes;
        impl.simd ? q::dequant_gptq(t, a, b, in, out) : q::scalar::dequant_gptq(t, a, b, in, out);
      };
      const Buffer want_t = transpose(want.data(), t.in_features, t.out_features, 4);
      expect_f32(run_matrix(decode, t.in_features, t.out_features, OutType::f32,
                            q::Orientation::in_out),
                 want.data(), t.in_features * t.out_features, false);
      expect_f32(run_matrix(decode, t.in_features, t.out_features, OutType::f32,
                            q::Orientation::out_in),
                 want_t.data(), t.in_features * t.out_features, false);
      check_matrix_slices(decode, t.in_features, t.out_features, {0, 8, 64, 96, t.in_features});
    });
  }
}

struct AwqCase {
  q::AwqTensor t;
  q::Bytes qweight, bf16, f32;
};

AwqCase read_awq(Reader& r) {
  r.magic("AMNA");
  REQUIRE(r.u32() == 2);
  AwqCase c;
  c.t.bits = r.u32();
  c.t.group_size = r.u32();
  c.t.in_features = r.u32();
  c.t.out_features = r.u32();
  c.t.scale_dtype = scale_dtype_from_id(r.u32());
  const std::uint32_t qw = r.u32(), sl = r.u32(), zl = r.u32(), bl = r.u32(), fl = r.u32();
  const std::size_t n = c.t.in_features * c.t.out_features;
  REQUIRE(qw == n / 2);
  REQUIRE(bl == 2 * n);
  REQUIRE(fl == 4 * n);
  c.qweight = r.take(qw);
  c.t.scales = r.take(sl);
  c.t.qzeros = r.take(zl);
  c.bf16 = r.take(bl);
  c.f32 = r.take(fl);
  r.end();
  return c;
}

TEST_CASE("awq fixtures decode to the AutoAWQ goldens") {
  const auto files = mneme::test::fixture_files("awq");
  REQUIRE(!files.empty());
  for (const auto& file : files) {
    INFO("fixture " << file.filename().string());
    const Buffer bytes = mneme::test::read_file(file);
    Reader r(bytes);
    const AwqCase c = read_awq(r);
    const std::size_t row_bytes = c.t.out_features / 2;
    for_each_impl([&](const Impl& impl) {
      INFO("impl " << impl.name);
      auto decode = [&](std::size_t a, std::size_t b, const q::MatrixOut& out) {
        const std::uint8_t* in = c.qweight.data() + a * row_bytes;
        impl.simd ? q::dequant_awq(c.t, a, b, in, out) : q::scalar::dequant_awq(c.t, a, b, in, out);
      };
      check_matrix_goldens(decode, c.t.in_features, c.t.out_features, c.f32.data(), c.bf16.data());
      check_matrix_slices(decode, c.t.in_features, c.t.out_features, {0, 1, 7, 100, 129, 256});
    });
  }
}

// ---------------------------------------------------------------- BitsAndBytes

TEST_CASE("bnb fixtures decode to the bitsandbytes CUDA goldens") {
  const auto files = mneme::test::fixture_files("bnb");
  REQUIRE(files.size() >= 4);
  for (const auto& file : files) {
    INFO("fixture " << file.filename().string());
    const Buffer bytes = mneme::test::read_file(file);
    Reader r(bytes);
    r.magic("AMNB");
    REQUIRE(r.u32() == 2);
    const std::uint32_t format = r.u32();
    REQUIRE((format == 0 || format == 1 || format == 2));
    if (format == 1) {
      q::BnbInt8Tensor t;
      t.rows = r.u32();
      t.cols = r.u32();
      const std::size_t n = t.rows * t.cols;
      const std::uint32_t wl = r.u32(), sl = r.u32(), bl = r.u32(), fl = r.u32();
      REQUIRE(wl == n);
      REQUIRE(bl == 2 * n);
      REQUIRE(fl == 4 * n);
      const q::Bytes w = r.take(wl);
      t.scb = r.take(sl);
      const q::Bytes gold16 = r.take(bl), gold32 = r.take(fl);
      r.end();
      for_each_impl([&](const Impl& impl) {
        INFO("impl " << impl.name);
        auto run = [&](std::size_t a, std::size_t b, OutType ot, std::uint8_t* dst) {
          const std::uint8_t* in = w.data() + a * t.cols;
          impl.simd ? q::dequant_bnb_int8(t, a, b, in, ot, dst)
                    : q::scalar::dequant_bnb_int8(t, a, b, in, ot, dst);
        };
        Buffer f32(4 * n), bf16(2 * n), f16(2 * n);
        run(0, t.rows, OutType::f32, f32.data());
        run(0, t.rows, OutType::bf16, bf16.data());
        run(0, t.rows, OutType::f16, f16.data());
        expect_f32(f32, gold32.data(), n, true);
        expect_bf16(bf16, gold16.data(), n, 0, true);
        expect_f16_of(f16, f32, n);
        Buffer sliced(4 * n, 0xCD);
        for (auto [a, b] : {std::pair<std::size_t, std::size_t>{0, 3}, {3, 200}, {200, t.rows}}) {
          run(a, b, OutType::f32, sliced.data() + 4 * a * t.cols);
        }
        expect_bytes_equal(sliced, f32);
      });
      continue;
    }
    q::Bnb4Tensor t;
    t.double_quant = format == 2;
    t.total_elements = r.u32();
    t.block_size = r.u32();
    const std::uint32_t wl = r.u32(), al = r.u32(), ql = r.u32(), nal = r.u32(), nql = r.u32(),
                        bl = r.u32(), fl = r.u32();
    t.nested_offset = r.f32();
    const std::size_t n = t.total_elements;
    REQUIRE(wl == (n + 1) / 2);
    REQUIRE(bl == 2 * n);
    REQUIRE(fl == 4 * n);
    const q::Bytes w = r.take(wl);
    t.absmax = r.take(al);
    t.quant_map = r.take(ql);
    t.nested_absmax = r.take(nal);
    t.nested_quant_map = r.take(nql);
    const q::Bytes gold16 = r.take(bl), gold32 = r.take(fl);
    r.end();
    if (t.double_quant) {
      REQUIRE(nal >= 4);
      const std::size_t nested = nal / 4;
      t.nested_block_size = (al + nested - 1) / nested;  // the README's inference
    }
    for_each_impl([&](const Impl& impl) {
      INFO("impl " << impl.name);
      auto run = [&](std::size_t a, std::size_t b, OutType ot, std::uint8_t* dst) {
        const std::uint8_t* in = w.data() + a / 2;
        impl.simd ? q::dequant_bnb4(t, a, b, in, ot, dst)
                  : q::scalar::dequant_bnb4(t, a, b, in, ot, dst);
      };
      Buffer f32(4 * n), bf16(2 * n), f16(2 * n);
      run(0, n, OutType::f32, f32.data());
      run(0, n, OutType::bf16, bf16.data());
      run(0, n, OutType::f16, f16.data());
      expect_f32(f32, gold32.data(), n, true);
      expect_bf16(bf16, gold16.data(), n, 0, true);
      expect_f16_of(f16, f32, n);
      Buffer sliced(2 * n, 0xCD);
      const std::size_t bs = t.block_size;
      for (auto [a, b] : {std::pair<std::size_t, std::size_t>{0, bs}, {bs, 7 * bs}, {7 * bs, n}}) {
        run(a, b, OutType::bf16, sliced.data() + 2 * a);
      }
      expect_bytes_equal(sliced, bf16);
    });
  }
}

}  // namespace
