// Conversion kernels among the plain float types (F64, F32, F16, BF16).
//
// Public surface of kernels/convert: plain functions over caller-owned spans,
// never allocating. The Highway implementation is dispatched at run time to
// the best target the CPU supports; kernels::scalar holds the references the
// tests compare it against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mneme/dtype.hpp"

namespace mneme::kernels {

// Converts n elements from `in` (type `from`) to `out` (type `to`). Pointers
// need no alignment; in and out must not overlap. from == to copies. Writes
// exactly n * out_size(to) bytes and reads exactly n * dtype_size(from).
using ConvertFn = void (*)(const void* in, void* out, std::size_t n);

// The kernel for from -> to, or nullptr when `from` is not a float type this
// family converts (F64, F32, F16, BF16). The returned function dispatches to
// the best Highway target on every call (cheap: one indirect call per block).
ConvertFn convert_fn(DType from, OutType to) noexcept;

// Rounding rules, shared by scalar and SIMD paths (bit-exact between them):
//  F32 -> BF16: round to nearest even, (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16;
//               NaN stays NaN: top half kept, quiet bit set (kernels/float_bits.hpp).
//  F32 -> F16:  IEEE round to nearest even, overflow to Inf, subnormals kept;
//               NaN keeps its top 10 payload bits, quiet bit set.
//  F16, BF16 -> F32: exact (F16 NaN quiet bit set, as F16C does).
//  F16 <-> BF16: through the exact F32 value, then the F32 rule above.
//  F64 -> F32:  IEEE round to nearest even (the hardware conversion).
//  F64 -> BF16/F16: rounded ONCE from the double value (never through a rounded
//               F32, which could double-round); overflow to Inf; NaN keeps its
//               top payload bits with the quiet bit set (as F64 -> F32 -> *).
// The F64 paths use the FPU's F64 -> F32 conversion, so they assume the default
// floating point environment (round to nearest, no flush-to-zero or
// denormals-are-zero). The other paths are integer arithmetic, or F16C with
// its rounding fixed to nearest-even by the instruction, and do not depend on
// the rounding mode.
//
// Performance notes: outputs of 4 MiB or more are written with non-temporal
// stores (they bypass the cache; the kernel ends with a store fence), smaller
// ones with ordinary stores. Input is software-prefetched 4 KiB ahead.
namespace scalar {
std::uint16_t f32_to_bf16(float x) noexcept;
float bf16_to_f32(std::uint16_t x) noexcept;
std::uint16_t f32_to_f16(float x) noexcept;
float f16_to_f32(std::uint16_t x) noexcept;
float f64_to_f32(double x) noexcept;
std::uint16_t f64_to_bf16(double x) noexcept;
std::uint16_t f64_to_f16(double x) noexcept;
std::uint16_t f16_to_bf16(std::uint16_t x) noexcept;
std::uint16_t bf16_to_f16(std::uint16_t x) noexcept;

// Element-wise reference for every pair convert_fn supports; throws
// mneme::Error(unsupported) for any other `from`.
void convert(DType from, OutType to, const void* in, void* out, std::size_t n);
}  // namespace scalar

}  // namespace mneme::kernels
