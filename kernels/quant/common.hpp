// Shared vocabulary of the quantized-safetensors kernels (FP8, GPTQ, AWQ,
// BitsAndBytes): how companion tensors and output slices are described.
//
// Every kernel decodes a slice of one tensor into caller-owned memory and never
// allocates. Parameters come from untrusted headers: each entry point validates
// them and throws mneme::Error (kind parse or unsupported) before touching data.
// Kernels assume the default floating-point environment (no FTZ/DAZ).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "mneme/dtype.hpp"

namespace mneme::kernels::quant {

// A companion tensor's raw little-endian bytes (scales, zeros, g_idx, absmax...).
using Bytes = std::span<const std::uint8_t>;

// Layout of a dequantized 2-D weight whose packed form is [in, out] (GPTQ, AWQ).
enum class Orientation : std::uint8_t {
  in_out,  // [in, out] row-major: the packed, GEMM-native order (the goldens)
  out_in,  // [out, in] row-major: nn.Linear's weight, what loaders write
};

// Where a slice of input rows [i0, i1) goes. `data` addresses the output
// element of logical (in = i0, out = 0): with in_out that is the start of
// output row i0, with out_in it is column i0 of output row 0. `stride` is the
// distance in elements between consecutive output rows (rows are `in` indices
// for in_out, `out` indices for out_in), so a slice can land in its place in a
// larger matrix. stride == 0 means packed: out_features for in_out, i1 - i0 for
// out_in.
struct MatrixOut {
  void* data = nullptr;
  OutType type = OutType::bf16;
  Orientation orientation = Orientation::in_out;
  std::size_t stride = 0;
};

}  // namespace mneme::kernels::quant

namespace mneme::kernels::quant::detail {
// The Highway target (HWY_* bit) that dynamic dispatch selects now; lets the
// tests prove they exercised each target.
std::int64_t dispatched_target();
}  // namespace mneme::kernels::quant::detail
