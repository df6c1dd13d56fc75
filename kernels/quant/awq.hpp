// AWQ INT4 GEMM (AutoAWQ checkpoints): value[i][j] = (q[i][j] - z[g][j]) *
// scale[g][j] in f32, g = i / group_size. qweight is I32 [in, out / 8] and
// qzeros I32 [groups, out / 8], both packed along out with AutoAWQ's
// interleave: the nibble at bit 4k holds column offset [0,2,4,6,1,3,5,7][k].
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant/common.hpp"
#include "mneme/dtype.hpp"

namespace mneme::kernels::quant {

struct AwqTensor {
  unsigned bits = 4;  // only 4 (GEMM packing)
  std::size_t in_features = 0;
  std::size_t out_features = 0;  // a multiple of 8
  std::size_t group_size = 128;  // divides in_features (map -1 to in_features)
  DType scale_dtype = DType::f16;
  Bytes scales;  // [in / group_size, out]
  Bytes qzeros;  // I32 [in / group_size, out / 8]
};

void validate(const AwqTensor& t);

// Decodes input rows [i0, i1): `qweight` holds (i1 - i0) * out_features / 8
// little-endian I32 words (rows i0..i1 of qweight). Highway, dispatched.
void dequant_awq(const AwqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                 const MatrixOut& out);

namespace scalar {
void dequant_awq(const AwqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                 const MatrixOut& out);
}  // namespace scalar

}  // namespace mneme::kernels::quant
