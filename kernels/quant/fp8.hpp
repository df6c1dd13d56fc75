// FP8 weights with scales (safetensors F8_E4M3 / F8_E5M2 + weight_scale or
// weight_scale_inv): value = f32(fp8) * f32(scale), one multiply, then narrow.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant/common.hpp"
#include "mneme/dtype.hpp"

namespace mneme::kernels::quant {

enum class Fp8Format : std::uint8_t {
  e4m3fn,  // 1-4-3, bias 7, no Inf, NaN = S.1111.111 (max 448)
  e5m2,    // 1-5-2, bias 15, IEEE-like with Inf and NaN (the top byte of an F16)
};

enum class Fp8Scaling : std::uint8_t {
  per_tensor,   // one scale (the first element); no scale bytes at all means 1.0
  per_channel,  // one scale per row: [rows] or [rows, 1]
  block,        // a row-major grid of scales, one per block_rows x block_cols tile
};

// One FP8 weight [rows, cols] (leading dims of >2-D weights folded into rows).
struct Fp8Tensor {
  Fp8Format format = Fp8Format::e4m3fn;
  std::size_t rows = 0;
  std::size_t cols = 0;
  Fp8Scaling scaling = Fp8Scaling::per_tensor;
  DType scale_dtype = DType::f32;  // f32, bf16 or f16
  Bytes scales;                    // the whole scale tensor
  // Block scaling: tile shape. The grid has ceil(rows / block_rows) rows and
  // scale_count / grid_rows columns (at least ceil(cols / block_cols)); ragged
  // edge tiles use their tile's scale.
  std::size_t block_rows = 128;
  std::size_t block_cols = 128;
};

// Throws mneme::Error (parse / unsupported) unless `t` is consistent.
void validate(const Fp8Tensor& t);

// Decodes rows [r0, r1): `in` holds those rows' (r1 - r0) * cols bytes and
// `out` receives (r1 - r0) * cols elements of `out_type`, row-major. Throws
// like validate() and on a bad range. Highway, dispatched to the best target.
void dequant_fp8(const Fp8Tensor& t, std::size_t r0, std::size_t r1, const std::uint8_t* in,
                 OutType out_type, void* out);

namespace scalar {
// Reference with the same contract: PyTorch's fp8 -> f32 cast times the scale.
void dequant_fp8(const Fp8Tensor& t, std::size_t r0, std::size_t r1, const std::uint8_t* in,
                 OutType out_type, void* out);
}  // namespace scalar

}  // namespace mneme::kernels::quant
