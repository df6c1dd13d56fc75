// ggml block layouts (ggml-common.h, llama.cpp, MIT), as byte-exact structs.
//
// Every field is a byte array so the structs have alignment 1 and no padding:
// a block is copied out of the (unaligned) input with memcpy and its
// multi-byte fields are read little-endian with load_u16 / load_u32.
// Internal to kernels/gguf.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gguf/gguf_types.hpp"

namespace mneme::kernels::gguf::detail {

inline constexpr std::size_t kQK = 32;     // legacy / IQ4_NL / MXFP4 block
inline constexpr std::size_t kQK_K = 256;  // K-quant super-block

struct BlockQ4_0 {
  std::uint8_t d[2];
  std::uint8_t qs[16];
};
struct BlockQ4_1 {
  std::uint8_t d[2];
  std::uint8_t m[2];
  std::uint8_t qs[16];
};
struct BlockQ5_0 {
  std::uint8_t d[2];
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
struct BlockQ5_1 {
  std::uint8_t d[2];
  std::uint8_t m[2];
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
struct BlockQ8_0 {
  std::uint8_t d[2];
  std::int8_t qs[32];
};
struct BlockQ8_1 {
  std::uint8_t d[2];
  std::uint8_t s[2];  // d * sum(qs); not needed to dequantize
  std::int8_t qs[32];
};
struct BlockQ2_K {
  std::uint8_t scales[16];  // low nibble scale, high nibble min
  std::uint8_t qs[64];
  std::uint8_t d[2];
  std::uint8_t dmin[2];
};
struct BlockQ3_K {
  std::uint8_t hmask[32];
  std::uint8_t qs[64];
  std::uint8_t scales[12];  // 16 signed 6-bit scales
  std::uint8_t d[2];
};
struct BlockQ4_K {
  std::uint8_t d[2];
  std::uint8_t dmin[2];
  std::uint8_t scales[12];  // 8 (scale, min) pairs of 6 bits
  std::uint8_t qs[128];
};
struct BlockQ5_K {
  std::uint8_t d[2];
  std::uint8_t dmin[2];
  std::uint8_t scales[12];
  std::uint8_t qh[32];
  std::uint8_t qs[128];
};
struct BlockQ6_K {
  std::uint8_t ql[128];
  std::uint8_t qh[64];
  std::int8_t scales[16];
  std::uint8_t d[2];
};
struct BlockQ8_K {
  std::uint8_t d[4];  // f32, not f16
  std::int8_t qs[256];
  std::uint8_t bsums[32];  // i16[16], not needed to dequantize
};
struct BlockIQ2_XXS {
  std::uint8_t d[2];
  std::uint8_t qs[64];  // 8 x (4 grid bytes + u32 scale/signs)
};
struct BlockIQ2_XS {
  std::uint8_t d[2];
  std::uint8_t qs[64];  // u16[32]: 9-bit grid index | 7-bit sign index
  std::uint8_t scales[8];
};
struct BlockIQ2_S {
  std::uint8_t d[2];
  std::uint8_t qs[64];  // 32 grid bytes, then 32 sign bytes
  std::uint8_t qh[8];
  std::uint8_t scales[8];
};
struct BlockIQ3_XXS {
  std::uint8_t d[2];
  std::uint8_t qs[96];  // 64 grid bytes, then u32[8] scale/signs
};
struct BlockIQ3_S {
  std::uint8_t d[2];
  std::uint8_t qs[64];
  std::uint8_t qh[8];
  std::uint8_t signs[32];
  std::uint8_t scales[4];
};
struct BlockIQ1_S {
  std::uint8_t d[2];
  std::uint8_t qs[32];
  std::uint8_t qh[16];  // u16[8]
};
struct BlockIQ1_M {
  std::uint8_t qs[32];
  std::uint8_t qh[16];
  std::uint8_t scales[8];  // u16[4]; the f16 super-scale hides in their top nibbles
};
struct BlockIQ4_NL {
  std::uint8_t d[2];
  std::uint8_t qs[16];
};
struct BlockIQ4_XS {
  std::uint8_t d[2];
  std::uint8_t scales_h[2];
  std::uint8_t scales_l[4];
  std::uint8_t qs[128];
};
struct BlockTQ1_0 {
  std::uint8_t qs[48];  // 5 base-3 digits per byte
  std::uint8_t qh[4];   // 4 digits per byte
  std::uint8_t d[2];
};
struct BlockTQ2_0 {
  std::uint8_t qs[64];
  std::uint8_t d[2];
};
struct BlockMXFP4 {
  std::uint8_t e;  // E8M0 exponent
  std::uint8_t qs[16];
};

// Every block struct has the size the type table gives.
#define MNEME_GGUF_BLOCK_SIZE(name, id, elements, bytes) \
  static_assert(sizeof(Block##name) == (bytes), "block size of " #name);
MNEME_GGUF_BLOCK_TYPES(MNEME_GGUF_BLOCK_SIZE)
#undef MNEME_GGUF_BLOCK_SIZE

// Q4_K / Q5_K: the j-th (scale, min) pair of 6 bits (ggml's get_scale_min_k4).
inline void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t* d, std::uint8_t* m) noexcept {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// MXFP4's E8M0 scale halved (ggml_e8m0_to_fp32_half): 2^(e-128) built as f32
// bits; e = 255 gives 2^127, never NaN.
inline std::uint32_t e8m0_half_bits(std::uint8_t e) noexcept {
  return e < 2 ? (0x00200000u << e) : (static_cast<std::uint32_t>(e - 1) << 23);
}

}  // namespace mneme::kernels::gguf::detail
