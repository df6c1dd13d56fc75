// Per-element arithmetic shared by the scalar references and the scalar tails
// of the Highway kernels, so both paths round exactly the same way. Internal
// to kernels/quant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/float_bits.hpp"
#include "mneme/dtype.hpp"

namespace mneme::kernels::quant::detail {

// Widens element `i` of a little-endian F32/BF16/F16 array (validated dtype).
inline float load_scale(DType t, const std::uint8_t* p, std::size_t i) noexcept {
  switch (t) {
    case DType::bf16:
      return f32_from_bf16(load_u16(p + 2 * i));
    case DType::f16:
      return f32_from_f16(load_u16(p + 2 * i));
    default:
      return f32_from_bits(load_u32(p + 4 * i));
  }
}

inline std::int32_t load_i32(const std::uint8_t* p, std::size_t i) noexcept {
  return static_cast<std::int32_t>(load_u32(p + 4 * i));
}

// Writes `v` as element `i` of an OutType array.
inline void store_out(OutType t, void* out, std::size_t i, float v) noexcept {
  auto* b = static_cast<std::uint8_t*>(out);
  switch (t) {
    case OutType::f32:
      std::memcpy(b + 4 * i, &v, 4);
      break;
    case OutType::bf16: {
      const std::uint16_t h = bf16_from_f32(v);
      std::memcpy(b + 2 * i, &h, 2);
      break;
    }
    case OutType::f16: {
      const std::uint16_t h = f16_from_f32(v);
      std::memcpy(b + 2 * i, &h, 2);
      break;
    }
  }
}

// FP8 E4M3FN (1-4-3, bias 7, no infinities, NaN = S.1111.111) -> f32, exact.
// NaN becomes the canonical quiet NaN with the byte's sign, as PyTorch does.
inline float f32_from_e4m3(std::uint8_t b) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(b & 0x80u) << 24;
  const std::uint32_t exp = (b >> 3) & 0xFu;
  const std::uint32_t mant = b & 0x7u;
  if ((b & 0x7Fu) == 0x7Fu) return f32_from_bits(sign | 0x7FC00000u);
  if (exp == 0) {
    // Subnormal: mant * 2^-9, exact in f32.
    const float mag = static_cast<float>(mant) * 0.001953125f;
    return f32_from_bits(sign | f32_bits(mag));
  }
  return f32_from_bits(sign | ((exp + 120u) << 23) | (mant << 20));
}

// FP8 E5M2 (1-5-2, bias 15, IEEE-like with Inf and NaN) is the top byte of an
// IEEE binary16, so it widens exactly through F16 (NaN kept, quiet bit set).
inline float f32_from_e5m2(std::uint8_t b) noexcept {
  return f32_from_f16(static_cast<std::uint16_t>(b << 8));
}

}  // namespace mneme::kernels::quant::detail
