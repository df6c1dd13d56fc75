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
#include <optional>
#include <string_view>

#include "mneme/dtype.hpp"

namespace mneme::kernels::gguf {

// ggml's type ids, as stored in GGUF tensor infos. Ids 4, 5, 31-33 and 36-38
// were removed from ggml and are unknown here.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

// One block of a type: `elements` values stored in `bytes` bytes. Plain
// (scalar) types are blocks of one element.
struct BlockInfo {
  std::uint32_t elements;
  std::uint32_t bytes;
};

// nullopt for ids ggml does not (or no longer) define.
std::optional<BlockInfo> block_info(std::uint32_t type_id) noexcept;

// ggml's spelling ("Q4_K", "IQ2_XXS", "BF16", ...); empty for unknown ids.
std::string_view type_name(std::uint32_t type_id) noexcept;

// True for the block-quantized types dequantize() accepts (everything but
// F32, F16, BF16, F64 and the integer types, which are converted elsewhere).
bool is_quantized(std::uint32_t type_id) noexcept;

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
