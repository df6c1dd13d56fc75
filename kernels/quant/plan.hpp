// Validation of quantized-tensor parameters and the derived quantities both
// the scalar references and the Highway kernels use. Internal to kernels/quant.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/float_bits.hpp"
#include "kernels/quant/awq.hpp"
#include "kernels/quant/bnb.hpp"
#include "kernels/quant/fp8.hpp"
#include "kernels/quant/gptq.hpp"
#include "kernels/quant/element.hpp"

namespace mneme::kernels::quant::detail {

struct Fp8Plan {
  bool unit_scale = false;     // per-tensor without scale bytes: scale 1.0
  std::size_t grid_cols = 0;   // block scaling: columns of the scale grid
};
// Validates t and 0 <= r0 <= r1 <= rows, `in`/`out` non-null when r0 < r1.
Fp8Plan plan_fp8(const Fp8Tensor& t, std::size_t r0, std::size_t r1, const void* in,
                 const void* out);
// The scale of row r, column block cb, as f32 (per the layout).
float fp8_scale(const Fp8Tensor& t, const Fp8Plan& p, std::size_t r, std::size_t cb) noexcept;

// GPTQ and AWQ share the shape of their output.
struct MatrixPlan {
  std::size_t pack = 0;         // values per I32 word
  std::size_t groups = 0;       // rows of scales / qzeros
  std::size_t zero_words = 0;   // I32 words per qzeros row
  std::size_t stride = 0;       // effective output stride (elements)
  std::int32_t zero_bias = 0;   // added to a stored zero: 1 for GPTQ v1
  bool has_g_idx = false;
  bool trivial_g_idx = false;   // g_idx[i] == i / group_size over the slice
};
MatrixPlan plan_gptq(const GptqTensor& t, std::size_t i0, std::size_t i1, const void* qweight,
                     const MatrixOut& out);
MatrixPlan plan_awq(const AwqTensor& t, std::size_t i0, std::size_t i1, const void* qweight,
                    const MatrixOut& out);

struct Bnb4Plan {
  std::size_t blocks = 0;
};
Bnb4Plan plan_bnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const void* in,
                   const void* out);
// Block b's absmax (recovered through the nested quantization if any).
float bnb4_absmax(const Bnb4Tensor& t, std::size_t block) noexcept;

void plan_bnb_int8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1, const void* in,
                   const void* out);

inline std::size_t scale_size(DType t) noexcept { return t == DType::f32 ? 4 : 2; }

// Element helpers for the kernels' scalar edges (same arithmetic as scalar::).
inline std::size_t gptq_group(const GptqTensor& t, const MatrixPlan& p, std::size_t i) noexcept {
  return p.has_g_idx ? static_cast<std::size_t>(load_i32(t.g_idx.data(), i)) : i / t.group_size;
}
// Zero point of (group g, column j), bias included, as the integer subtrahend.
inline std::int32_t gptq_zero(const GptqTensor& t, const MatrixPlan& p, std::size_t g,
                              std::size_t j) noexcept {
  const std::uint32_t word = load_u32(t.qzeros.data() + 4 * (g * p.zero_words + j / p.pack));
  const unsigned shift = t.bits * static_cast<unsigned>(j % p.pack);
  return static_cast<std::int32_t>((word >> shift) & ((1u << t.bits) - 1u)) + p.zero_bias;
}
inline float gptq_value(const GptqTensor& t, const MatrixPlan& p, const std::uint8_t* qweight,
                        std::size_t i0, std::size_t i, std::size_t j) noexcept {
  const std::size_t g = gptq_group(t, p, i);
  const std::uint32_t word = load_u32(qweight + 4 * (((i - i0) / p.pack) * t.out_features + j));
  const unsigned shift = t.bits * static_cast<unsigned>(i % p.pack);
  const auto q = static_cast<std::int32_t>((word >> shift) & ((1u << t.bits) - 1u));
  const float scale = load_scale(t.scale_dtype, t.scales.data(), g * t.out_features + j);
  return (static_cast<float>(q) - static_cast<float>(gptq_zero(t, p, g, j))) * scale;
}

// AutoAWQ's interleave: logical column offset c sits at nibble kAwqNibble[c].
inline constexpr unsigned kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

inline std::int32_t awq_zero(const AwqTensor& t, const MatrixPlan& p, std::size_t g,
                             std::size_t j) noexcept {
  const std::uint32_t word = load_u32(t.qzeros.data() + 4 * (g * p.zero_words + j / 8));
  return static_cast<std::int32_t>((word >> (4 * kAwqNibble[j % 8])) & 0xFu);
}
inline float awq_value(const AwqTensor& t, const MatrixPlan& p, const std::uint8_t* qweight,
                       std::size_t i0, std::size_t i, std::size_t j) noexcept {
  const std::size_t g = i / t.group_size;
  const std::uint32_t word = load_u32(qweight + 4 * ((i - i0) * p.zero_words + j / 8));
  const auto q = static_cast<std::int32_t>((word >> (4 * kAwqNibble[j % 8])) & 0xFu);
  const float scale = load_scale(t.scale_dtype, t.scales.data(), g * t.out_features + j);
  return (static_cast<float>(q) - static_cast<float>(awq_zero(t, p, g, j))) * scale;
}

}  // namespace mneme::kernels::quant::detail
