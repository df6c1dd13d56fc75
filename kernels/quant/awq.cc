// AWQ INT4 GEMM dequantization, Highway kernel.
//
// [in, out] output: one word holds 8 consecutive columns of one row in
// AutoAWQ's interleaved nibble order, so a per-lane shift table unpacks it
// straight into column order (the zeros word uses the same table). [out, in]
// output (transposed): a vector of words from consecutive rows of one word
// column yields, per nibble, a run of consecutive outputs of one output row;
// rows are tiled so the qweight lines revisited for the next word column stay
// in cache.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant/awq.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cstring>

#include "hwy/highway.h"
#include "kernels/quant/plan.hpp"
#include "kernels/quant/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::quant::HWY_NAMESPACE {
namespace {

constexpr std::size_t kMaxLanes = HWY_MAX_BYTES / 4;

template <OutType kOut>
void AwqInOut(const AwqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
              const std::uint8_t* qweight, void* out) {
  const hn::CappedTag<float, 8> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t N = hn::Lanes(df);  // divides 8
  const auto mask = hn::Set(du, 0xFu);
  hn::Vec<decltype(du)> shifts[8];
  HWY_ALIGN std::uint32_t lane_shift[8];
  for (std::size_t s = 0; s * N < 8; ++s) {
    for (std::size_t l = 0; l < N; ++l) lane_shift[l] = 4 * detail::kAwqNibble[s * N + l];
    shifts[s] = hn::Load(du, lane_shift);
  }
  const std::size_t n_out = t.out_features;
  const auto* zwords = t.qzeros.data();
  for (std::size_t i = i0; i < i1; ++i) {
    const std::size_t g = i / t.group_size;
    const std::uint8_t* row = qweight + 4 * (i - i0) * p.zero_words;
    const std::size_t orow = (i - i0) * p.stride;
    for (std::size_t c = 0; c < p.zero_words; ++c) {
      std::uint32_t word, zword;
      std::memcpy(&word, row + 4 * c, 4);
      std::memcpy(&zword, zwords + 4 * (g * p.zero_words + c), 4);
      const auto wv = hn::Set(du, word);
      const auto zv = hn::Set(du, zword);
      for (std::size_t s = 0; s * N < 8; ++s) {
        const std::size_t j = 8 * c + s * N;
        const auto q = hn::BitCast(di, hn::And(hn::operator>>(wv, shifts[s]), mask));
        const auto z = hn::BitCast(di, hn::And(hn::operator>>(zv, shifts[s]), mask));
        const auto scale = LoadScales(df, t.scale_dtype, t.scales.data(), g * n_out + j);
        StoreOut<kOut>(df, hn::Mul(hn::ConvertTo(df, hn::Sub(q, z)), scale), out, orow + j);
      }
    }
  }
}

template <OutType kOut>
void AwqOutIn(const AwqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
              const std::uint8_t* qweight, void* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t N = hn::Lanes(df);
  const auto mask = hn::Set(du, 0xFu);
  const std::size_t rows = i1 - i0;
  const std::size_t vec_rows = rows - rows % N;
  constexpr std::size_t kTile = 1024;  // rows per tile: 64 KiB of qweight lines
  HWY_ALIGN std::uint32_t wlane[kMaxLanes];
  HWY_ALIGN std::int32_t zlane[kMaxLanes];
  HWY_ALIGN float slane[kMaxLanes];
  for (std::size_t r0 = 0; r0 < vec_rows; r0 += kTile) {
    const std::size_t r1 = r0 + kTile < vec_rows ? r0 + kTile : vec_rows;
    for (std::size_t c = 0; c < p.zero_words; ++c) {
      // Zeros and scales of this word column's 8 outputs for the current group.
      std::size_t g_cached = ~std::size_t{0};
      std::int32_t zc[8];
      float sc[8];
      std::size_t g_next = 0;  // first row offset r of the next group
      for (std::size_t r = r0; r < r1; r += N) {
        for (std::size_t l = 0; l < N; ++l) {
          std::memcpy(&wlane[l], qweight + 4 * ((r + l) * p.zero_words + c), 4);
        }
        const auto wv = hn::Load(du, wlane);
        if (r >= g_next || g_cached == ~std::size_t{0}) {
          const std::size_t g = (i0 + r) / t.group_size;
          g_next = (g + 1) * t.group_size - i0;
          if (g != g_cached) {
            for (std::size_t o = 0; o < 8; ++o) {
              zc[o] = detail::awq_zero(t, p, g, 8 * c + o);
              sc[o] = detail::load_scale(t.scale_dtype, t.scales.data(), g * t.out_features + 8 * c + o);
            }
            g_cached = g;
          }
        }
        const bool one_group = r + N <= g_next;
        for (std::size_t o = 0; o < 8; ++o) {
          const std::size_t j = 8 * c + o;
          const auto q = hn::BitCast(di, hn::And(hn::ShiftRightSame(wv, static_cast<int>(4 * detail::kAwqNibble[o])), mask));
          hn::Vec<decltype(di)> z;
          hn::Vec<decltype(df)> scale;
          if (one_group) {
            z = hn::Set(di, zc[o]);
            scale = hn::Set(df, sc[o]);
          } else {
            for (std::size_t l = 0; l < N; ++l) {
              const std::size_t g = (i0 + r + l) / t.group_size;
              zlane[l] = detail::awq_zero(t, p, g, j);
              slane[l] = detail::load_scale(t.scale_dtype, t.scales.data(), g * t.out_features + j);
            }
            z = hn::Load(di, zlane);
            scale = hn::Load(df, slane);
          }
          StoreOut<kOut>(df, hn::Mul(hn::ConvertTo(df, hn::Sub(q, z)), scale), out, j * p.stride + r);
        }
      }
    }
  }
  for (std::size_t j = 0; j < t.out_features; ++j) {
    for (std::size_t r = vec_rows; r < rows; ++r) {
      detail::store_out(kOut, out, j * p.stride + r, detail::awq_value(t, p, qweight, i0, i0 + r, j));
    }
  }
}

}  // namespace

void DequantAwq(const AwqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
                const std::uint8_t* qweight, const MatrixOut& out) {
  WithOutType(out.type, [&]<OutType kOut>() {
    if (out.orientation == Orientation::in_out) {
      AwqInOut<kOut>(t, p, i0, i1, qweight, out.data);
    } else {
      AwqOutIn<kOut>(t, p, i0, i1, qweight, out.data);
    }
  });
}

}  // namespace mneme::kernels::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mneme::kernels::quant {

HWY_EXPORT(DequantAwq);

void dequant_awq(const AwqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                 const MatrixOut& out) {
  const detail::MatrixPlan p = detail::plan_awq(t, i0, i1, qweight, out);
  if (i0 == i1 || t.out_features == 0) return;
  HWY_DYNAMIC_DISPATCH(DequantAwq)(t, p, i0, i1, qweight, out);
}

}  // namespace mneme::kernels::quant
#endif  // HWY_ONCE
