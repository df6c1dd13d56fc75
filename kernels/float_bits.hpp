// Scalar float-format helpers shared by every kernel family: the one place
// where F16/BF16 widening and narrowing are defined. The Highway kernels must
// produce exactly these bits.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace mneme::kernels {

inline std::uint32_t f32_bits(float x) noexcept { return std::bit_cast<std::uint32_t>(x); }
inline float f32_from_bits(std::uint32_t b) noexcept { return std::bit_cast<float>(b); }

// F32 -> BF16, round to nearest even: (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16.
// NaN stays NaN: its top half is kept and the quiet bit set (the formula alone
// could carry a NaN payload into Inf or into the sign bit).
inline std::uint16_t bf16_from_f32(float x) noexcept {
  const std::uint32_t b = f32_bits(x);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((b >> 16) | 0x0040u);
  return static_cast<std::uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

inline float f32_from_bf16(std::uint16_t h) noexcept {
  return f32_from_bits(static_cast<std::uint32_t>(h) << 16);
}

// IEEE binary16 -> binary32, exact (subnormals normalised, NaN payload kept,
// quiet bit set as F16C's vcvtph2ps does).
inline float f32_from_f16(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal: value = mant * 2^-24; normalise.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | ((112u - static_cast<std::uint32_t>(e)) << 23) | ((mant & 0x3FFu) << 13);
  }
  return f32_from_bits(bits);
}

// IEEE binary32 -> binary16, round to nearest even; overflow to Inf, gradual
// underflow, NaN kept quiet (as F16C's vcvtps2ph with imm 0).
inline std::uint16_t f16_from_f32(float x) noexcept {
  const std::uint32_t b = f32_bits(x);
  const std::uint16_t sign = static_cast<std::uint16_t>((b >> 16) & 0x8000u);
  const std::uint32_t abs = b & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to >= 65536
  if (abs >= 0x38800000u) {                                                  // normal f16
    const std::uint32_t rounded = abs + 0xFFFu + ((abs >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: +-0
  // Subnormal f16: shift the full significand into place, round to nearest even.
  const std::uint32_t exp = abs >> 23;
  const std::uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126u - exp;  // 14..24
  const std::uint32_t half = 1u << (shift - 1);
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  std::uint32_t q = mant >> shift;
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return static_cast<std::uint16_t>(sign | q);
}

inline std::uint16_t load_u16(const void* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline std::uint32_t load_u32(const void* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace mneme::kernels
