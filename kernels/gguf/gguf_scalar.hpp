// One-block scalar decoders shared by the reference and by the Highway kernels
// of the table-bound types (which gather a block here, then scale and narrow
// it with SIMD). Internal to kernels/gguf.
#pragma once

#include <cstdint>

#include "kernels/gguf/gguf_kernels.hpp"

namespace mneme::kernels::gguf::detail {

// Decodes one block of type t to F32 (block_info(t).elements values) in
// ggml's evaluation order.
using BlockDecodeFn = void (*)(const std::uint8_t* block, float* y) noexcept;

// nullptr when t is not a quantized type.
BlockDecodeFn scalar_block_decoder(GgmlType t) noexcept;

// Largest number of elements in one block of any type.
inline constexpr unsigned kMaxBlockElements = 256;

}  // namespace mneme::kernels::gguf::detail
