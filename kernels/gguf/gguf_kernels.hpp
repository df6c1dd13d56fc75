// GGUF (ggml) block dequantization kernels.
//
// Public surface of kernels/gguf: every ggml block type decoded to F32, F16 or
// BF16, bit for bit as ggml's scalar `dequantize_row_*` (and gguf-py, which
// mirrors it) compute the F32 values, then narrowed with kernels/float_bits.hpp.
// The Highway implementation is dispatched at run time to the best target the
// CPU supports; gguf::scalar holds the reference the tests compare it against.
// Kernels take whole blocks, write a caller-owned output and never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include "kernels/gguf/gguf_types.hpp"
#include "mneme/dtype.hpp"

namespace mneme::kernels::gguf {

// Decodes n_blocks consecutive blocks of type t into n_blocks * elements
// outputs of type `out` at dst (4 bytes each for F32, 2 for F16/BF16). No
// alignment is required of either pointer; they must not overlap. Throws
// mneme::Error(unsupported) when t is not a quantized type.
void dequantize(GgmlType t, const std::byte* blocks, std::size_t n_blocks, OutType out, void* dst);

namespace scalar {
// The reference: ggml's scalar evaluation order, one block at a time into F32,
// then narrowed with f16_from_f32 / bf16_from_f32.
void dequantize(GgmlType t, const std::byte* blocks, std::size_t n_blocks, OutType out, void* dst);
}  // namespace scalar

}  // namespace mneme::kernels::gguf
