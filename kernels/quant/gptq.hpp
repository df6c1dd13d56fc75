// GPTQ INT4 / INT8 (AutoGPTQ / GPTQModel checkpoints):
// value[i][j] = (q[i][j] - zero[g][j]) * scale[g][j] in f32, g = g_idx[i] when
// present, else i / group_size. v1 checkpoints store zero - 1 (the common
// on-disk form, so zero = stored + 1); gptq_v2 checkpoints store zero itself.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant/common.hpp"
#include "mneme/dtype.hpp"

namespace mneme::kernels::quant {

enum class GptqZeros : std::uint8_t {
  v1,  // stored zero - 1: value = q - (z + 1)  (checkpoint_format "gptq")
  v2,  // stored zero:     value = q - z        (checkpoint_format "gptq_v2")
};

struct GptqTensor {
  unsigned bits = 4;  // 4 or 8; pack = 32 / bits values per I32 word
  std::size_t in_features = 0;
  std::size_t out_features = 0;
  std::size_t group_size = 128;    // rows per group (map -1 to in_features)
  DType scale_dtype = DType::f16;  // f16, bf16 or f32
  Bytes scales;                    // [groups, out]; groups = size / (out * elem)
  Bytes qzeros;                    // I32 [groups, out / pack], packed LSB-first along out
  Bytes g_idx;                     // I32 [in] or empty; every entry must be < groups
  GptqZeros zeros = GptqZeros::v1;
};

// Throws mneme::Error (parse / unsupported) unless `t` is consistent,
// including every g_idx entry.
void validate(const GptqTensor& t);

// Decodes input rows [i0, i1) (both multiples of pack, or i1 == in_features).
// `qweight` holds the packed rows i0 / pack .. i1 / pack: ((i1 - i0) / pack) *
// out_features little-endian I32 words, each packing pack consecutive rows of
// one column LSB-first. Highway, dispatched to the best target.
void dequant_gptq(const GptqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                  const MatrixOut& out);

namespace scalar {
void dequant_gptq(const GptqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                  const MatrixOut& out);
}  // namespace scalar

}  // namespace mneme::kernels::quant
