// Scalar reference decoders: a port of ggml's `dequantize_row_*`
// (ggml/src/ggml-quants.c, llama.cpp, MIT) keeping its evaluation order
// exactly, e.g. K-quants compute (d * sc) * q - (dmin * m) and never fuse a
// multiply into the following add (the library builds with -ffp-contract=off).
#include <cstring>
#include <string>

#include "kernels/float_bits.hpp"
#include "kernels/gguf/gguf_blocks.hpp"
#include "kernels/gguf/gguf_kernels.hpp"
#include "kernels/gguf/gguf_scalar.hpp"
#include "kernels/gguf/gguf_tables.hpp"
#include "mneme/error.hpp"

namespace mneme::kernels::gguf {
namespace detail {
namespace {

template <class B>
B load_block(const std::uint8_t* p) noexcept {
  B b;
  std::memcpy(&b, p, sizeof b);
  return b;
}

float half(const std::uint8_t* p) noexcept {
  return f32_from_f16(load_u16(p));
}

// ---- legacy 32-element blocks ----

void decode_Q4_0(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ4_0>(p);
  const float d = half(x.d);
  for (int j = 0; j < 16; ++j) {
    const int x0 = (x.qs[j] & 0x0F) - 8;
    const int x1 = (x.qs[j] >> 4) - 8;
    y[j] = static_cast<float>(x0) * d;
    y[j + 16] = static_cast<float>(x1) * d;
  }
}

void decode_Q4_1(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ4_1>(p);
  const float d = half(x.d);
  const float m = half(x.m);
  for (int j = 0; j < 16; ++j) {
    const int x0 = x.qs[j] & 0x0F;
    const int x1 = x.qs[j] >> 4;
    y[j] = static_cast<float>(x0) * d + m;
    y[j + 16] = static_cast<float>(x1) * d + m;
  }
}

void decode_Q5_0(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ5_0>(p);
  const float d = half(x.d);
  const std::uint32_t qh = load_u32(x.qh);
  for (int j = 0; j < 16; ++j) {
    const std::uint32_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
    const std::uint32_t xh_1 = (qh >> (j + 12)) & 0x10;
    const int x0 = static_cast<int>((x.qs[j] & 0x0Fu) | xh_0) - 16;
    const int x1 = static_cast<int>((x.qs[j] >> 4) | xh_1) - 16;
    y[j] = static_cast<float>(x0) * d;
    y[j + 16] = static_cast<float>(x1) * d;
  }
}

void decode_Q5_1(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ5_1>(p);
  const float d = half(x.d);
  const float m = half(x.m);
  const std::uint32_t qh = load_u32(x.qh);
  for (int j = 0; j < 16; ++j) {
    const std::uint32_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
    const std::uint32_t xh_1 = (qh >> (j + 12)) & 0x10;
    const int x0 = static_cast<int>((x.qs[j] & 0x0Fu) | xh_0);
    const int x1 = static_cast<int>((x.qs[j] >> 4) | xh_1);
    y[j] = static_cast<float>(x0) * d + m;
    y[j + 16] = static_cast<float>(x1) * d + m;
  }
}

void decode_Q8_0(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ8_0>(p);
  const float d = half(x.d);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x.qs[j]) * d;
}

void decode_Q8_1(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ8_1>(p);
  const float d = half(x.d);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x.qs[j]) * d;
}

// ---- K-quants (256-element super-blocks) ----

void decode_Q2_K(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ2_K>(p);
  const float d = half(x.d);
  const float min = half(x.dmin);
  const std::uint8_t* q = x.qs;
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      std::uint8_t sc = x.scales[is++];
      float dl = d * static_cast<float>(sc & 0xF);
      float ml = min * static_cast<float>(sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
      sc = x.scales[is++];
      dl = d * static_cast<float>(sc & 0xF);
      ml = min * static_cast<float>(sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16] >> shift) & 3) - ml;
      shift += 2;
    }
    q += 32;
  }
}

// Q3_K's 16 signed 6-bit scales (minus 32), unpacked as ggml does with
// kmask1 = 0x03030303 / kmask2 = 0x0f0f0f0f over little-endian words.
void unpack_q3_k_scales(const std::uint8_t* s, int* out) noexcept {
  constexpr std::uint32_t kmask1 = 0x03030303u;
  constexpr std::uint32_t kmask2 = 0x0f0f0f0fu;
  std::uint32_t aux[4] = {load_u32(s), load_u32(s + 4), load_u32(s + 8), 0};
  const std::uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  for (int i = 0; i < 16; ++i) {
    const auto byte = static_cast<std::uint8_t>(aux[i / 4] >> (8 * (i % 4)));
    out[i] = static_cast<int>(static_cast<std::int8_t>(byte)) - 32;
  }
}

void decode_Q3_K(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ3_K>(p);
  const float d_all = half(x.d);
  int scales[16];
  unpack_q3_k_scales(x.scales, scales);
  const std::uint8_t* q = x.qs;
  const std::uint8_t* hm = x.hmask;
  std::uint8_t m = 1;
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      float dl = d_all * static_cast<float>(scales[is++]);
      for (int l = 0; l < 16; ++l) {
        const int v = ((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4);
        *y++ = dl * static_cast<float>(v);
      }
      dl = d_all * static_cast<float>(scales[is++]);
      for (int l = 0; l < 16; ++l) {
        const int v = ((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4);
        *y++ = dl * static_cast<float>(v);
      }
      shift += 2;
      m = static_cast<std::uint8_t>(m << 1);
    }
    q += 32;
  }
}

void decode_Q4_K(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ4_K>(p);
  const float d = half(x.d);
  const float min = half(x.dmin);
  const std::uint8_t* q = x.qs;
  int is = 0;
  std::uint8_t sc, m;
  for (int j = 0; j < 256; j += 64) {
    scale_min_k4(is + 0, x.scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = min * static_cast<float>(m);
    scale_min_k4(is + 1, x.scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = min * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

void decode_Q5_K(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ5_K>(p);
  const float d = half(x.d);
  const float min = half(x.dmin);
  const std::uint8_t* ql = x.qs;
  const std::uint8_t* qh = x.qh;
  int is = 0;
  std::uint8_t sc, m;
  unsigned u1 = 1, u2 = 2;
  for (int j = 0; j < 256; j += 64) {
    scale_min_k4(is + 0, x.scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = min * static_cast<float>(m);
    scale_min_k4(is + 1, x.scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = min * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
    ql += 32;
    is += 2;
    u1 <<= 2;
    u2 <<= 2;
  }
}

void decode_Q6_K(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ6_K>(p);
  const float d = half(x.d);
  const std::uint8_t* ql = x.ql;
  const std::uint8_t* qh = x.qh;
  const std::int8_t* sc = x.scales;
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

void decode_Q8_K(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockQ8_K>(p);
  const float d = f32_from_bits(load_u32(x.d));
  for (int j = 0; j < 256; ++j) y[j] = d * static_cast<float>(x.qs[j]);
}

// ---- ternary ----

void decode_TQ1_0(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockTQ1_0>(p);
  const float d = half(x.d);
  constexpr std::uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
  auto digit = [](std::uint8_t byte, std::uint8_t scale) {
    const auto q = static_cast<std::uint8_t>(byte * scale);  // wraps mod 256
    return static_cast<int>((static_cast<std::uint16_t>(q) * 3) >> 8);
  };
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(digit(x.qs[m], pow3[n]) - 1) * d;
  }
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 16; ++m) *y++ = static_cast<float>(digit(x.qs[32 + m], pow3[n]) - 1) * d;
  }
  for (int n = 0; n < 4; ++n) {
    for (int j = 0; j < 4; ++j) *y++ = static_cast<float>(digit(x.qh[j], pow3[n]) - 1) * d;
  }
}

void decode_TQ2_0(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockTQ2_0>(p);
  const float d = half(x.d);
  for (int j = 0; j < 64; j += 32) {
    for (int l = 0; l < 4; ++l) {
      for (int m = 0; m < 32; ++m) {
        const int q = (x.qs[j + m] >> (l * 2)) & 3;
        *y++ = static_cast<float>(q - 1) * d;
      }
    }
  }
}

// ---- non-linear 4-bit ----

void decode_IQ4_NL(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ4_NL>(p);
  const float d = half(x.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kValuesIq4nl[x.qs[j] & 0xF]);
    y[j + 16] = d * static_cast<float>(kValuesIq4nl[x.qs[j] >> 4]);
  }
}

void decode_IQ4_XS(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ4_XS>(p);
  const float d = half(x.d);
  const std::uint16_t scales_h = load_u16(x.scales_h);
  const std::uint8_t* qs = x.qs;
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((x.scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((scales_h >> 2 * ib) & 3) << 4);
    const float dl = d * static_cast<float>(ls - 32);
    for (int j = 0; j < 16; ++j) {
      y[j + 0] = dl * static_cast<float>(kValuesIq4nl[qs[j] & 0xF]);
      y[j + 16] = dl * static_cast<float>(kValuesIq4nl[qs[j] >> 4]);
    }
    y += 32;
    qs += 16;
  }
}

void decode_MXFP4(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockMXFP4>(p);
  const float d = f32_from_bits(e8m0_half_bits(x.e));
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(kValuesMxfp4[x.qs[j] & 0x0F]) * d;
    y[j + 16] = static_cast<float>(kValuesMxfp4[x.qs[j] >> 4]) * d;
  }
}

// ---- grid (IQ1-IQ3) types ----

float sign_of(std::uint8_t signs, int j) noexcept {
  return (signs >> j) & 1 ? -1.f : 1.f;
}

void decode_IQ2_XXS(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ2_XXS>(p);
  const float d = half(x.d);
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const std::uint8_t* aux8 = x.qs + 8 * ib32;
    const std::uint32_t aux1 = load_u32(aux8 + 4);
    const float db = d * (0.5f + static_cast<float>(aux1 >> 28)) * 0.25f;
    for (int l = 0; l < 4; ++l) {
      const auto& grid = kGridIq2xxs[aux8[l]];
      const std::uint8_t signs = kSignsIq2xs[(aux1 >> 7 * l) & 127];
      for (int j = 0; j < 8; ++j) y[j] = db * static_cast<float>(grid[j]) * sign_of(signs, j);
      y += 8;
    }
  }
}

void decode_IQ2_XS(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ2_XS>(p);
  const float d = half(x.d);
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const float db[2] = {d * (0.5f + static_cast<float>(x.scales[ib32] & 0xF)) * 0.25f,
                         d * (0.5f + static_cast<float>(x.scales[ib32] >> 4)) * 0.25f};
    for (int l = 0; l < 4; ++l) {
      const std::uint16_t q = load_u16(x.qs + 2 * (4 * ib32 + l));
      const auto& grid = kGridIq2xs[q & 511];
      const std::uint8_t signs = kSignsIq2xs[q >> 9];
      for (int j = 0; j < 8; ++j)
        y[j] = db[l / 2] * static_cast<float>(grid[j]) * sign_of(signs, j);
      y += 8;
    }
  }
}

void decode_IQ2_S(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ2_S>(p);
  const float d = half(x.d);
  const std::uint8_t* qs = x.qs;
  const std::uint8_t* signs = x.qs + 32;
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const float db[2] = {d * (0.5f + static_cast<float>(x.scales[ib32] & 0xF)) * 0.25f,
                         d * (0.5f + static_cast<float>(x.scales[ib32] >> 4)) * 0.25f};
    for (int l = 0; l < 4; ++l) {
      const float dl = db[l / 2];
      const auto& grid = kGridIq2s[qs[l] | ((x.qh[ib32] << (8 - 2 * l)) & 0x300)];
      for (int j = 0; j < 8; ++j) y[j] = dl * static_cast<float>(grid[j]) * sign_of(signs[l], j);
      y += 8;
    }
    qs += 4;
    signs += 4;
  }
}

void decode_IQ3_XXS(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ3_XXS>(p);
  const float d = half(x.d);
  const std::uint8_t* qs = x.qs;
  const std::uint8_t* scales_and_signs = x.qs + 64;
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const std::uint32_t aux32 = load_u32(scales_and_signs + 4 * ib32);
    const float db = d * (0.5f + static_cast<float>(aux32 >> 28)) * 0.5f;
    for (int l = 0; l < 4; ++l) {
      const std::uint8_t signs = kSignsIq2xs[(aux32 >> 7 * l) & 127];
      const auto& grid1 = kGridIq3xxs[qs[2 * l + 0]];
      const auto& grid2 = kGridIq3xxs[qs[2 * l + 1]];
      for (int j = 0; j < 4; ++j) {
        y[j + 0] = db * static_cast<float>(grid1[j]) * sign_of(signs, j + 0);
        y[j + 4] = db * static_cast<float>(grid2[j]) * sign_of(signs, j + 4);
      }
      y += 8;
    }
    qs += 8;
  }
}

void decode_IQ3_S(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ3_S>(p);
  const float d = half(x.d);
  const std::uint8_t* qs = x.qs;
  const std::uint8_t* qh = x.qh;
  const std::uint8_t* signs = x.signs;
  for (int ib32 = 0; ib32 < 8; ib32 += 2) {
    const float db1 = d * static_cast<float>(1 + 2 * (x.scales[ib32 / 2] & 0xF));
    const float db2 = d * static_cast<float>(1 + 2 * (x.scales[ib32 / 2] >> 4));
    for (int half_i = 0; half_i < 2; ++half_i) {
      const float db = half_i == 0 ? db1 : db2;
      for (int l = 0; l < 4; ++l) {
        const auto& grid1 = kGridIq3s[qs[2 * l + 0] | ((qh[half_i] << (8 - 2 * l)) & 256)];
        const auto& grid2 = kGridIq3s[qs[2 * l + 1] | ((qh[half_i] << (7 - 2 * l)) & 256)];
        for (int j = 0; j < 4; ++j) {
          y[j + 0] = db * static_cast<float>(grid1[j]) * sign_of(signs[l], j + 0);
          y[j + 4] = db * static_cast<float>(grid2[j]) * sign_of(signs[l], j + 4);
        }
        y += 8;
      }
      qs += 8;
      signs += 4;
    }
    qh += 2;
  }
}

void decode_IQ1_S(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ1_S>(p);
  const float d = half(x.d);
  const std::uint8_t* qs = x.qs;
  for (int ib = 0; ib < 8; ++ib) {
    const std::uint16_t qh = load_u16(x.qh + 2 * ib);
    const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
    const float delta = qh & 0x8000 ? -kIq1sDelta : kIq1sDelta;
    for (int l = 0; l < 4; ++l) {
      const auto& grid = kGridIq1s[qs[l] | (((qh >> 3 * l) & 7) << 8)];
      for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>(grid[j]) + delta);
      y += 8;
    }
    qs += 4;
  }
}

void decode_IQ1_M(const std::uint8_t* p, float* y) noexcept {
  const auto x = load_block<BlockIQ1_M>(p);
  const std::uint16_t sc[4] = {load_u16(x.scales), load_u16(x.scales + 2), load_u16(x.scales + 4),
                               load_u16(x.scales + 6)};
  const auto scale_bits = static_cast<std::uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) |
                                                     ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
  const float d = f32_from_f16(scale_bits);
  const std::uint8_t* qs = x.qs;
  const std::uint8_t* qh = x.qh;
  for (int ib = 0; ib < 8; ++ib) {
    const float dl1 = d * static_cast<float>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
    const float dl2 = d * static_cast<float>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
    const int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                        qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
    const float delta[4] = {
        qh[0] & 0x08 ? -kIq1sDelta : kIq1sDelta, qh[0] & 0x80 ? -kIq1sDelta : kIq1sDelta,
        qh[1] & 0x08 ? -kIq1sDelta : kIq1sDelta, qh[1] & 0x80 ? -kIq1sDelta : kIq1sDelta};
    for (int l = 0; l < 2; ++l) {
      const auto& grid = kGridIq1s[idx[l]];
      for (int j = 0; j < 8; ++j) y[j] = dl1 * (static_cast<float>(grid[j]) + delta[l]);
      y += 8;
    }
    for (int l = 2; l < 4; ++l) {
      const auto& grid = kGridIq1s[idx[l]];
      for (int j = 0; j < 8; ++j) y[j] = dl2 * (static_cast<float>(grid[j]) + delta[l]);
      y += 8;
    }
    qs += 4;
    qh += 2;
  }
}

}  // namespace

BlockDecodeFn scalar_block_decoder(GgmlType t) noexcept {
  switch (t) {
#define MNEME_GGUF_DECODER(name, ...) \
  case GgmlType::name:                \
    return decode_##name;
    MNEME_GGUF_BLOCK_TYPES(MNEME_GGUF_DECODER)
#undef MNEME_GGUF_DECODER
    default:
      return nullptr;
  }
}

}  // namespace detail

namespace scalar {

void dequantize(GgmlType t, const std::byte* blocks, std::size_t n_blocks, OutType out, void* dst) {
  const detail::BlockDecodeFn decode = detail::scalar_block_decoder(t);
  const auto info = block_info(static_cast<std::uint32_t>(t));
  if (decode == nullptr || !info) {
    fail(ErrorKind::unsupported,
         "gguf: not a block-quantized type: " + std::to_string(static_cast<std::uint32_t>(t)));
  }
  const auto* in = reinterpret_cast<const std::uint8_t*>(blocks);
  const std::size_t qk = info->elements;
  // dst need not be aligned: outputs go through memcpy.
  auto* o = static_cast<std::uint8_t*>(dst);
  const std::size_t block_out = qk * out_size(out);
  float y[detail::kMaxBlockElements];
  std::uint16_t h[detail::kMaxBlockElements];
  for (std::size_t b = 0; b < n_blocks; ++b) {
    decode(in + b * info->bytes, y);
    switch (out) {
      case OutType::f32:
        std::memcpy(o + b * block_out, y, block_out);
        break;
      case OutType::bf16:
        for (std::size_t i = 0; i < qk; ++i) h[i] = bf16_from_f32(y[i]);
        std::memcpy(o + b * block_out, h, block_out);
        break;
      case OutType::f16:
        for (std::size_t i = 0; i < qk; ++i) h[i] = f16_from_f32(y[i]);
        std::memcpy(o + b * block_out, h, block_out);
        break;
    }
  }
}

}  // namespace scalar
}  // namespace mneme::kernels::gguf
