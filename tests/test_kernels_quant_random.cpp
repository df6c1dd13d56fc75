// Differential tests of the quant kernels: the Highway kernel on every
// supported target against the scalar reference on random shapes, slices,
// strides and data (NaN / Inf / subnormal scales included), the narrowing
// helpers on edge-case floats, and parameter validation.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/float_bits.hpp"
#include "kernels/quant/awq.hpp"
#include "kernels/quant/bnb.hpp"
#include "kernels/quant/fp8.hpp"
#include "kernels/quant/gptq.hpp"
#include "mneme/error.hpp"
#include "test_kernels_quant_support.hpp"

namespace {

namespace q = mneme::kernels::quant;
using mneme::DType;
using mneme::OutType;
using namespace mneme::quant_test;

constexpr OutType kOutTypes[] = {OutType::f32, OutType::bf16, OutType::f16};
constexpr DType kScaleTypes[] = {DType::f32, DType::bf16, DType::f16};

// Random bytes, with a share of special scale values sprinkled in.
Buffer random_bytes(std::mt19937& rng, std::size_t n) {
  Buffer b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// Scale i of a buffer of type t (F32 bits kept, NaN payloads included).
void put_scale(Buffer& b, DType t, std::size_t i, float f) {
  if (t == DType::f32) {
    std::memcpy(b.data() + 4 * i, &f, 4);
  } else {
    const std::uint16_t h =
        t == DType::bf16 ? mneme::kernels::bf16_from_f32(f) : mneme::kernels::f16_from_f32(f);
    std::memcpy(b.data() + 2 * i, &h, 2);
  }
}

// Scales: mostly ordinary magnitudes, some NaN, Inf, zero, subnormal, huge.
// One set in three is tiny (about 2^-118 to 2^-142), so that most of its
// outputs are subnormal: the kernels must see that from the scales alone and
// narrow those with the checked path (quant/simd-inl.h, Risk).
Buffer random_scales(std::mt19937& rng, DType t, std::size_t n) {
  Buffer b(n * (t == DType::f32 ? 4 : 2));
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  const bool tiny = rng() % 3 == 0;
  const std::uint32_t specials[] = {0x7FC00000u, 0xFF800000u, 0x7F800000u, 0x00000000u,
                                    0x80000001u, 0x7F7FFFFFu, 0x7FA00001u, 0x00400000u};
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits = mneme::kernels::f32_bits(
        tiny ? std::ldexp(u(rng), -114 - static_cast<int>(rng() % 24)) : u(rng));
    if (rng() % 16 == 0) bits = specials[rng() % std::size(specials)];
    if (rng() % 32 == 0) bits = static_cast<std::uint32_t>(rng());
    put_scale(b, t, i, mneme::kernels::f32_from_bits(bits));
  }
  return b;
}

// Equal bit for bit, except that two NaNs are equal whatever their payloads
// (when both operands of a multiply are NaN the hardware may pick either).
void expect_same(const Buffer& got, const Buffer& want, OutType t) {
  REQUIRE(got.size() == want.size());
  const std::size_t es = mneme::out_size(t), n = got.size() / es;
  std::size_t bad = 0, first = n;
  for (std::size_t i = 0; i < n; ++i) {
    bool same;
    if (es == 4) {
      const std::uint32_t a = mneme::kernels::load_u32(got.data() + 4 * i);
      const std::uint32_t b = mneme::kernels::load_u32(want.data() + 4 * i);
      same = a == b || (is_nan32(a) && is_nan32(b));
    } else {
      const std::uint16_t a = mneme::kernels::load_u16(got.data() + 2 * i);
      const std::uint16_t b = mneme::kernels::load_u16(want.data() + 2 * i);
      const bool f16 = t == OutType::f16;
      same = a == b || (is_nan16(a, f16) && is_nan16(b, f16));
    }
    if (!same && bad++ == 0) first = i;
  }
  INFO("mismatches " << bad << ", first at element " << first);
  CHECK(bad == 0);
}

TEST_CASE("fp8 random: Highway equals scalar") {
  std::mt19937 rng(1);
  for (int iter = 0; iter < 60; ++iter) {
    q::Fp8Tensor t;
    t.format = rng() % 2 ? q::Fp8Format::e4m3fn : q::Fp8Format::e5m2;
    t.rows = 1 + rng() % 40;
    t.cols = 1 + rng() % 300;
    t.scaling = static_cast<q::Fp8Scaling>(rng() % 3);
    t.scale_dtype = kScaleTypes[rng() % 3];
    if (rng() % 2) {
      t.block_rows = 1 + rng() % 20;
      t.block_cols = 1 + rng() % 70;
    }
    std::size_t count = t.scaling == q::Fp8Scaling::per_tensor ? (rng() % 4 == 0 ? 0 : 1)
                        : t.scaling == q::Fp8Scaling::per_channel ? t.rows : 0;
    if (t.scaling == q::Fp8Scaling::block) {
      count = ((t.rows + t.block_rows - 1) / t.block_rows) *
              ((t.cols + t.block_cols - 1) / t.block_cols + rng() % 2);
    }
    const Buffer scales = random_scales(rng, t.scale_dtype, count);
    t.scales = q::Bytes(scales.data(), scales.size());
    const Buffer w = random_bytes(rng, t.rows * t.cols);
    const std::size_t r0 = rng() % t.rows, r1 = r0 + 1 + rng() % (t.rows - r0);
    const OutType ot = kOutTypes[rng() % 3];
    INFO("iter " << iter << " rows " << t.rows << " cols " << t.cols << " scaling "
                 << int(t.scaling) << " block " << t.block_rows << "x" << t.block_cols);
    Buffer want((r1 - r0) * t.cols * mneme::out_size(ot));
    q::scalar::dequant_fp8(t, r0, r1, w.data() + r0 * t.cols, ot, want.data());
    for_each_impl([&](const Impl& impl) {
      if (!impl.simd) return;
      INFO("impl " << impl.name);
      Buffer got(want.size(), 0xEE);
      q::dequant_fp8(t, r0, r1, w.data() + r0 * t.cols, ot, got.data());
      expect_same(got, want, ot);
    });
  }
}

TEST_CASE("narrowing of arbitrary f32 values matches float_bits.hpp on every target") {
  // E4M3 0x38 is 1.0, so per-channel F32 scales pass through the multiply
  // unchanged (NaNs quieted) and the output is the narrowing of each scale.
  std::mt19937 rng(2);
  std::vector<std::uint32_t> vals = {
      0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x33000000, 0x33000001,
      0x32FFFFFF, 0x33800000, 0x337FFFFF, 0x38800000, 0x387FFFFF, 0x38801000, 0x38803000,
      0x477FEFFF, 0x477FF000, 0x477FE000, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
      0x7F800001, 0xFFFFFFFF, 0x7FFF8000, 0x3F808000, 0x3F818000, 0x3F807FFF, 0x7F7F8000,
      0x387FE000, 0x387FF000, 0x33C00000, 0x3F800FFF, 0x3F801000, 0x3F803000, 0x7F7FFFFF};
  for (int k = 0; k < 20000; ++k) vals.push_back(static_cast<std::uint32_t>(rng()));
  for (std::uint32_t e = 0x30000000; e < 0x48000000; e += 0x00100000) vals.push_back(e | (rng() & 0xFFFFF));
  Buffer scales(4 * vals.size());
  std::memcpy(scales.data(), vals.data(), scales.size());
  q::Fp8Tensor t;
  t.rows = vals.size();
  t.cols = 17;  // one full vector plus a scalar tail on every target
  t.scaling = q::Fp8Scaling::per_channel;
  t.scale_dtype = DType::f32;
  t.scales = q::Bytes(scales.data(), scales.size());
  const Buffer w(t.rows * t.cols, 0x38);
  for (OutType ot : kOutTypes) {
    Buffer want(t.rows * t.cols * mneme::out_size(ot));
    q::scalar::dequant_fp8(t, 0, t.rows, w.data(), ot, want.data());
    for_each_impl([&](const Impl& impl) {
      if (!impl.simd) return;
      INFO("impl " << impl.name << " out " << int(ot));
      Buffer got(want.size());
      q::dequant_fp8(t, 0, t.rows, w.data(), ot, got.data());
      expect_bytes_equal(got, want);  // exact, NaN payloads included: one NaN operand only
    });
  }
}

TEST_CASE("gptq random: Highway equals scalar, both orientations, strided slices") {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 80; ++iter) {
    q::GptqTensor t;
    t.bits = rng() % 2 ? 4 : 8;
    const std::size_t pack = 32 / t.bits;
    t.group_size = pack * (1 + rng() % 6);
    if (rng() % 8 == 0) t.group_size = pack / 2;  // groups split words
    std::size_t groups = 1 + rng() % 5;
    if (t.group_size < pack) groups = 2 * groups;  // in stays whole words
    t.in_features = t.group_size * groups;
    t.out_features = pack * (1 + rng() % 9);
    t.scale_dtype = kScaleTypes[rng() % 3];
    t.zeros = rng() % 2 ? q::GptqZeros::v1 : q::GptqZeros::v2;
    const Buffer scales = random_scales(rng, t.scale_dtype, groups * t.out_features);
    const Buffer qzeros = random_bytes(rng, groups * t.out_features / pack * 4);
    const Buffer qweight = random_bytes(rng, t.in_features / pack * t.out_features * 4);
    std::vector<std::int32_t> g_idx(t.in_features);
    const int g_mode = rng() % 3;  // none, sequential, act-order
    for (std::size_t i = 0; i < t.in_features; ++i) {
      g_idx[i] = static_cast<std::int32_t>(g_mode == 2 ? rng() % groups : i / t.group_size);
    }
    t.scales = q::Bytes(scales.data(), scales.size());
    t.qzeros = q::Bytes(qzeros.data(), qzeros.size());
    if (g_mode != 0) t.g_idx = q::Bytes(reinterpret_cast<const std::uint8_t*>(g_idx.data()), 4 * g_idx.size());
    const std::size_t words = t.in_features / pack;
    const std::size_t i0 = pack * (rng() % words);
    const std::size_t i1 = i0 + pack * (1 + rng() % (words - i0 / pack));
    const OutType ot = kOutTypes[rng() % 3];
    const auto orient = rng() % 2 ? q::Orientation::in_out : q::Orientation::out_in;
    const bool io = orient == q::Orientation::in_out;
    const std::size_t rows_out = io ? i1 - i0 : t.out_features;
    const std::size_t row_len = io ? t.out_features : i1 - i0;
    const std::size_t stride = row_len + rng() % 5;  // padding must stay untouched
    INFO("iter " << iter << " bits " << t.bits << " gs " << t.group_size << " in " << t.in_features
                 << " out " << t.out_features << " g_mode " << g_mode << " slice " << i0 << ".." << i1
                 << " io " << io << " stride " << stride);
    const std::size_t es = mneme::out_size(ot);
    Buffer want(rows_out * stride * es, 0x5A);
    const std::uint8_t* in = qweight.data() + (i0 / pack) * t.out_features * 4;
    q::scalar::dequant_gptq(t, i0, i1, in, q::MatrixOut{want.data(), ot, orient, stride});
    for_each_impl([&](const Impl& impl) {
      if (!impl.simd) return;
      INFO("impl " << impl.name);
      Buffer got(want.size(), 0x5A);
      q::dequant_gptq(t, i0, i1, in, q::MatrixOut{got.data(), ot, orient, stride});
      expect_same(got, want, ot);
    });
  }
}

TEST_CASE("awq random: Highway equals scalar, both orientations, strided slices") {
  std::mt19937 rng(4);
  for (int iter = 0; iter < 80; ++iter) {
    q::AwqTensor t;
    t.group_size = 1 + rng() % 40;
    const std::size_t groups = 1 + rng() % 4;
    t.in_features = t.group_size * groups;
    t.out_features = 8 * (1 + rng() % 6);
    t.scale_dtype = kScaleTypes[rng() % 3];
    const Buffer scales = random_scales(rng, t.scale_dtype, groups * t.out_features);
    const Buffer qzeros = random_bytes(rng, groups * t.out_features / 2);
    const Buffer qweight = random_bytes(rng, t.in_features * t.out_features / 2);
    t.scales = q::Bytes(scales.data(), scales.size());
    t.qzeros = q::Bytes(qzeros.data(), qzeros.size());
    const std::size_t i0 = rng() % t.in_features;
    const std::size_t i1 = i0 + 1 + rng() % (t.in_features - i0);
    const OutType ot = kOutTypes[rng() % 3];
    const auto orient = rng() % 2 ? q::Orientation::in_out : q::Orientation::out_in;
    const bool io = orient == q::Orientation::in_out;
    const std::size_t rows_out = io ? i1 - i0 : t.out_features;
    const std::size_t stride = (io ? t.out_features : i1 - i0) + rng() % 5;
    INFO("iter " << iter << " gs " << t.group_size << " in " << t.in_features << " out "
                 << t.out_features << " slice " << i0 << ".." << i1 << " io " << io);
    const std::size_t es = mneme::out_size(ot);
    Buffer want(rows_out * stride * es, 0x5A);
    const std::uint8_t* in = qweight.data() + i0 * t.out_features / 2;
    q::scalar::dequant_awq(t, i0, i1, in, q::MatrixOut{want.data(), ot, orient, stride});
    for_each_impl([&](const Impl& impl) {
      if (!impl.simd) return;
      INFO("impl " << impl.name);
      Buffer got(want.size(), 0x5A);
      q::dequant_awq(t, i0, i1, in, q::MatrixOut{got.data(), ot, orient, stride});
      expect_same(got, want, ot);
    });
  }
}

// Tiny scales at vector widths (the random shapes above are mostly narrower
// than a kernel's widest step): GPTQ and AWQ outputs that are subnormal keep
// their BF16 bits, with groups of tiny and ordinary scales side by side, so
// a kernel that picks its narrowing from the wrong scales fails here.
// Scales of `groups` groups of `per_group`, the odd groups tiny.
Buffer mixed_scales(std::mt19937& rng, DType t, std::size_t groups, std::size_t per_group) {
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  Buffer b(groups * per_group * (t == DType::f32 ? 4 : 2));
  for (std::size_t i = 0; i < groups * per_group; ++i) {
    const bool tiny = (i / per_group) % 2 == 1;  // odd groups: most outputs subnormal
    put_scale(b, t, i, tiny ? std::ldexp(u(rng), -120 - static_cast<int>(rng() % 20)) : u(rng));
  }
  return b;
}

// decode(simd, out) writes out_bytes of BF16: every SIMD target's bits must be
// the scalar reference's.
template <class Decode>
void bf16_targets_match_scalar(std::size_t out_bytes, Decode&& decode) {
  Buffer want(out_bytes);
  decode(false, want.data());
  for_each_impl([&](const Impl& impl) {
    if (!impl.simd) return;
    INFO("impl " << impl.name);
    Buffer got(want.size());
    decode(true, got.data());
    expect_same(got, want, OutType::bf16);
  });
}

TEST_CASE("gptq and awq: subnormal BF16 outputs of tiny scales are exact at vector widths") {
  std::mt19937 rng(11);
  for (const DType st : {DType::f32, DType::bf16}) {
    for (const auto orient : {q::Orientation::in_out, q::Orientation::out_in}) {
      const bool io = orient == q::Orientation::in_out;
      for (const unsigned bits : {4u, 8u}) {
        q::GptqTensor t;
        t.bits = bits;
        const std::size_t pack = 32 / bits, groups = 4;
        t.group_size = 32;
        t.in_features = t.group_size * groups;
        t.out_features = 256;
        t.scale_dtype = st;
        const Buffer scales = mixed_scales(rng, st, groups, t.out_features);
        const Buffer qzeros = random_bytes(rng, groups * t.out_features / pack * 4);
        const Buffer qweight = random_bytes(rng, t.in_features / pack * t.out_features * 4);
        t.scales = q::Bytes(scales.data(), scales.size());
        t.qzeros = q::Bytes(qzeros.data(), qzeros.size());
        const std::size_t rows_out = io ? t.in_features : t.out_features;
        const std::size_t stride = io ? t.out_features : t.in_features;
        INFO("gptq bits " << bits << " io " << io << " scales " << mneme::dtype_name(st));
        bf16_targets_match_scalar(rows_out * stride * 2, [&](bool simd, std::uint8_t* out) {
          const q::MatrixOut m{out, OutType::bf16, orient, stride};
          simd ? q::dequant_gptq(t, 0, t.in_features, qweight.data(), m)
               : q::scalar::dequant_gptq(t, 0, t.in_features, qweight.data(), m);
        });
      }
      q::AwqTensor a;
      const std::size_t groups = 4;
      a.group_size = 32;
      a.in_features = a.group_size * groups;
      a.out_features = 256;
      a.scale_dtype = st;
      const Buffer scales = mixed_scales(rng, st, groups, a.out_features);
      const Buffer qzeros = random_bytes(rng, groups * a.out_features / 2);
      const Buffer qweight = random_bytes(rng, a.in_features * a.out_features / 2);
      a.scales = q::Bytes(scales.data(), scales.size());
      a.qzeros = q::Bytes(qzeros.data(), qzeros.size());
      const std::size_t rows_out = io ? a.in_features : a.out_features;
      const std::size_t stride = io ? a.out_features : a.in_features;
      INFO("awq io " << io << " scales " << mneme::dtype_name(st));
      bf16_targets_match_scalar(rows_out * stride * 2, [&](bool simd, std::uint8_t* out) {
        const q::MatrixOut m{out, OutType::bf16, orient, stride};
        simd ? q::dequant_awq(a, 0, a.in_features, qweight.data(), m)
             : q::scalar::dequant_awq(a, 0, a.in_features, qweight.data(), m);
      });
    }
  }
}

TEST_CASE("bnb random: Highway equals scalar") {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 80; ++iter) {
    q::Bnb4Tensor t;
    t.block_size = 2 * (1 + rng() % 70);
    t.total_elements = 1 + rng() % 2000;
    const std::size_t blocks = (t.total_elements + t.block_size - 1) / t.block_size;
    const Buffer qmap = random_scales(rng, DType::f32, 16);
    t.quant_map = q::Bytes(qmap.data(), qmap.size());
    t.double_quant = rng() % 2;
    Buffer absmax, nested, nmap;
    if (t.double_quant) {
      t.nested_block_size = 1 + rng() % 8;
      absmax = random_bytes(rng, blocks);
      nested = random_scales(rng, DType::f32, (blocks + t.nested_block_size - 1) / t.nested_block_size);
      nmap = random_scales(rng, DType::f32, 256);
      t.nested_offset = static_cast<float>(rng() % 1000) / 7777.0f;
    } else {
      absmax = random_scales(rng, DType::f32, blocks);
    }
    t.absmax = q::Bytes(absmax.data(), absmax.size());
    t.nested_absmax = q::Bytes(nested.data(), nested.size());
    t.nested_quant_map = q::Bytes(nmap.data(), nmap.size());
    const Buffer w = random_bytes(rng, (t.total_elements + 1) / 2);
    const std::size_t b0 = rng() % blocks, b1 = b0 + 1 + rng() % (blocks - b0);
    const std::size_t e0 = b0 * t.block_size;
    const std::size_t e1 = std::min(b1 * t.block_size, t.total_elements);
    const OutType ot = kOutTypes[rng() % 3];
    INFO("iter " << iter << " n " << t.total_elements << " bs " << t.block_size << " dq "
                 << t.double_quant << " slice " << e0 << ".." << e1);
    Buffer want((e1 - e0) * mneme::out_size(ot));
    q::scalar::dequant_bnb4(t, e0, e1, w.data() + e0 / 2, ot, want.data());
    for_each_impl([&](const Impl& impl) {
      if (!impl.simd) return;
      INFO("impl " << impl.name);
      Buffer got(want.size(), 0xEE);
      q::dequant_bnb4(t, e0, e1, w.data() + e0 / 2, ot, got.data());
      expect_same(got, want, ot);
    });
  }
  for (int iter = 0; iter < 40; ++iter) {
    q::BnbInt8Tensor t;
    t.rows = 1 + rng() % 30;
    t.cols = 1 + rng() % 200;
    const Buffer scb = random_scales(rng, DType::f32, t.rows);
    t.scb = q::Bytes(scb.data(), scb.size());
    const Buffer w = random_bytes(rng, t.rows * t.cols);
    const std::size_t r0 = rng() % t.rows, r1 = r0 + 1 + rng() % (t.rows - r0);
    const OutType ot = kOutTypes[rng() % 3];
    Buffer want((r1 - r0) * t.cols * mneme::out_size(ot));
    q::scalar::dequant_bnb_int8(t, r0, r1, w.data() + r0 * t.cols, ot, want.data());
    for_each_impl([&](const Impl& impl) {
      if (!impl.simd) return;
      INFO("int8 iter " << iter << " impl " << impl.name);
      Buffer got(want.size(), 0xEE);
      q::dequant_bnb_int8(t, r0, r1, w.data() + r0 * t.cols, ot, got.data());
      expect_same(got, want, ot);
    });
  }
}

// Expects Error of the given kind from both implementations.
template <class F>
void expect_error(mneme::ErrorKind kind, F&& f) {
  bool thrown = false;
  try {
    f();
  } catch (const mneme::Error& e) {
    thrown = true;
    INFO(e.what());
    CHECK(e.kind() == kind);
  }
  CHECK(thrown);
}

TEST_CASE("invalid parameters throw mneme::Error") {
  using mneme::ErrorKind;
  Buffer out(1 << 16);
  const Buffer zeros(1 << 16, 0);
  const q::Bytes z4(zeros.data(), 4);
  const q::MatrixOut mo{out.data(), OutType::f32, q::Orientation::in_out, 0};

  q::GptqTensor g;
  g.in_features = 16;
  g.out_features = 8;
  g.group_size = 8;
  g.scale_dtype = DType::f32;
  g.scales = q::Bytes(zeros.data(), 2 * 8 * 4);
  g.qzeros = q::Bytes(zeros.data(), 2 * 1 * 4);
  REQUIRE_NOTHROW(q::validate(g));
  REQUIRE_NOTHROW(q::dequant_gptq(g, 0, 16, zeros.data(), mo));
  {
    auto b = g;
    b.bits = 3;
    expect_error(ErrorKind::unsupported, [&] { q::validate(b); });
    expect_error(ErrorKind::unsupported, [&] { q::dequant_gptq(b, 0, 16, zeros.data(), mo); });
  }
  {
    auto b = g;
    std::vector<std::int32_t> gi(16, 0);
    gi[9] = 2;  // only 2 groups
    b.g_idx = q::Bytes(reinterpret_cast<const std::uint8_t*>(gi.data()), 64);
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    expect_error(ErrorKind::parse, [&] { q::scalar::dequant_gptq(b, 8, 16, zeros.data(), mo); });
    gi[9] = -1;
    expect_error(ErrorKind::parse, [&] { q::dequant_gptq(b, 8, 16, zeros.data(), mo); });
  }
  {
    auto b = g;
    b.group_size = 5;  // does not divide 16
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = g;
    b.scales = q::Bytes(zeros.data(), 2 * 8 * 4 - 4);
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = g;
    b.qzeros = z4.first(0);
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = g;
    b.scale_dtype = DType::i32;
    expect_error(ErrorKind::unsupported, [&] { q::validate(b); });
    expect_error(ErrorKind::parse, [&] { q::dequant_gptq(g, 4, 16, zeros.data(), mo); });  // not on words
    expect_error(ErrorKind::parse, [&] { q::dequant_gptq(g, 0, 24, zeros.data(), mo); });  // past in
    expect_error(ErrorKind::parse, [&] {
      q::dequant_gptq(g, 0, 16, zeros.data(), q::MatrixOut{out.data(), OutType::f32, q::Orientation::out_in, 15});
    });
  }

  q::AwqTensor a;
  a.in_features = 4;
  a.out_features = 8;
  a.group_size = 4;
  a.scale_dtype = DType::f16;
  a.scales = q::Bytes(zeros.data(), 16);
  a.qzeros = z4;
  REQUIRE_NOTHROW(q::validate(a));
  {
    auto b = a;
    b.bits = 8;
    expect_error(ErrorKind::unsupported, [&] { q::validate(b); });
    b = a;
    b.out_features = 12;
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = a;
    b.group_size = 0;
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
  }

  q::Fp8Tensor f;
  f.rows = 300;
  f.cols = 200;
  f.scaling = q::Fp8Scaling::block;
  f.scale_dtype = DType::bf16;
  f.scales = q::Bytes(zeros.data(), 3 * 2 * 2);
  REQUIRE_NOTHROW(q::validate(f));
  {
    auto b = f;
    b.scales = q::Bytes(zeros.data(), 3 * 1 * 2);  // grid too narrow
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b.scales = q::Bytes(zeros.data(), 5 * 2);  // not whole grid rows
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = f;
    b.scaling = q::Fp8Scaling::per_channel;
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = f;
    b.rows = std::size_t{1} << 62;
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    expect_error(ErrorKind::parse, [&] { q::dequant_fp8(f, 10, 301, zeros.data(), OutType::bf16, out.data()); });
  }

  q::Bnb4Tensor n;
  n.total_elements = 128;
  n.block_size = 64;
  n.quant_map = q::Bytes(zeros.data(), 64);
  n.absmax = q::Bytes(zeros.data(), 8);
  REQUIRE_NOTHROW(q::validate(n));
  {
    auto b = n;
    b.block_size = 63;
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = n;
    b.quant_map = q::Bytes(zeros.data(), 60);
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    b = n;
    b.double_quant = true;  // absmax must then be 1 byte per block + nested tensors
    expect_error(ErrorKind::parse, [&] { q::validate(b); });
    expect_error(ErrorKind::parse, [&] { q::dequant_bnb4(n, 32, 128, zeros.data(), OutType::f32, out.data()); });
  }
  q::BnbInt8Tensor i8;
  i8.rows = 4;
  i8.cols = 4;
  i8.scb = q::Bytes(zeros.data(), 12);
  expect_error(ErrorKind::parse, [&] { q::validate(i8); });
}

}  // namespace
