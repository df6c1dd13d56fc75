// BitsAndBytes: NF4 / FP4 (optionally double-quantized absmax) and LLM.int8().
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant/common.hpp"
#include "mneme/dtype.hpp"

namespace mneme::kernels::quant {

// 4-bit: two codes per byte, HIGH nibble first; value = quant_map[code] *
// absmax[block]. With double quant the block's absmax is first recovered as
// nested_quant_map[absmax_u8[block]] * nested_absmax[block / nested_block_size]
// + nested_offset (multiply, then add; never fused).
struct Bnb4Tensor {
  std::size_t total_elements = 0;
  std::size_t block_size = 64;  // even
  Bytes quant_map;              // 16 F32 (the on-disk map: NF4 or FP4)
  Bytes absmax;                 // F32 per block, or U8 per block with double_quant
  bool double_quant = false;
  Bytes nested_absmax;             // F32 [ceil(blocks / nested_block_size)]
  Bytes nested_quant_map;          // 256 F32
  float nested_offset = 0.0f;
  std::size_t nested_block_size = 256;
};

void validate(const Bnb4Tensor& t);

// Decodes elements [e0, e1): e0 a multiple of block_size, e1 too or equal to
// total_elements. `in` holds bytes e0 / 2 .. ceil(e1 / 2); `out` receives
// e1 - e0 elements. Highway, dispatched.
void dequant_bnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const std::uint8_t* in,
                  OutType out_type, void* out);

// LLM.int8(): weight I8 [rows = out, cols = in], value = (w * SCB[row]) *
// 0x1.020408p-7f (the f32 nearest 1/127), in that order.
struct BnbInt8Tensor {
  std::size_t rows = 0;
  std::size_t cols = 0;
  Bytes scb;  // F32 [rows]
};

void validate(const BnbInt8Tensor& t);

// Decodes rows [r0, r1): `in` holds (r1 - r0) * cols bytes; `out` receives as
// many elements, row-major. Highway, dispatched.
void dequant_bnb_int8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1,
                      const std::uint8_t* in, OutType out_type, void* out);

namespace scalar {
void dequant_bnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const std::uint8_t* in,
                  OutType out_type, void* out);
void dequant_bnb_int8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1,
                      const std::uint8_t* in, OutType out_type, void* out);
}  // namespace scalar

}  // namespace mneme::kernels::quant
