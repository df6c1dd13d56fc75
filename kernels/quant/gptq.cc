// GPTQ INT4/INT8 dequantization, Highway kernel.
//
// [in, out] output: a vector of qweight words along out holds `pack`
// consecutive input rows; each row is one shift + mask away. [out, in] output
// (transposed): one word expands into `pack` consecutive outputs of output row
// j, so the kernel walks j and streams each output row; word rows are tiled so
// the qweight lines it revisits for the next j stay in L1.
// Zeros and scales are per (group, column): loaded once per word while the
// whole word shares a group (no g_idx, or a g_idx equal to i / group_size),
// else per row (act-order g_idx).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant/gptq.cc"
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
void GptqInOut(const GptqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
               const std::uint8_t* qweight, void* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t N = hn::Lanes(df);
  const std::size_t n_out = t.out_features;
  const auto mask = hn::Set(du, (1u << t.bits) - 1u);
  const bool word_group = (!p.has_g_idx || p.trivial_g_idx) && t.group_size % p.pack == 0;
  // Columns are processed in tiles whose zeros (bias included) and widened
  // scales for the current group sit in two small tables, rebuilt only when
  // the group changes (every group_size rows, or per row under act-order).
  constexpr std::size_t kTile = 512;
  HWY_ALIGN std::int32_t ztab[kTile];
  HWY_ALIGN float stab[kTile];
  const std::size_t n_words = (i1 - i0) / p.pack;
  for (std::size_t j0 = 0; j0 < n_out; j0 += kTile) {
    const std::size_t jn = n_out - j0 < kTile ? n_out - j0 : kTile;
    const std::size_t vec_end = jn - jn % N;
    std::size_t g_cur = ~std::size_t{0};
    // Rebuilds the tables for group g (cheap next to group_size rows of work).
    auto load_group = [&](std::size_t g) {
      if (g == g_cur) return;
      for (std::size_t l = 0; l < jn; ++l) {
        ztab[l] = detail::gptq_zero(t, p, g, j0 + l);
        stab[l] = detail::load_scale(t.scale_dtype, t.scales.data(), g * n_out + j0 + l);
      }
      g_cur = g;
    };
    for (std::size_t pw = 0; pw < n_words; ++pw) {
      const std::size_t ibase = i0 + pw * p.pack;
      const auto* words = reinterpret_cast<const std::uint32_t*>(qweight) + pw * n_out + j0;
      const std::size_t orow = (ibase - i0) * p.stride + j0;
      if (word_group) {
        load_group(detail::gptq_group(t, p, ibase));
        for (std::size_t j = 0; j < vec_end; j += N) {
          const auto w = hn::LoadU(du, words + j);
          const auto zero = hn::Load(di, ztab + j);
          const auto scale = hn::Load(df, stab + j);
          for (std::size_t k = 0; k < p.pack; ++k) {
            const auto qv = hn::BitCast(
                di, hn::And(hn::ShiftRightSame(w, static_cast<int>(t.bits * k)), mask));
            const auto v = hn::Mul(hn::ConvertTo(df, hn::Sub(qv, zero)), scale);
            StoreOut<kOut>(df, v, out, orow + k * p.stride + j);
          }
        }
      }
      for (std::size_t k = 0; k < p.pack; ++k) {
        const int shift = static_cast<int>(t.bits * k);
        std::size_t j = vec_end;
        if (!word_group) {
          load_group(detail::gptq_group(t, p, ibase + k));
          for (j = 0; j < vec_end; j += N) {
            const auto w = hn::LoadU(du, words + j);
            const auto qv = hn::BitCast(di, hn::And(hn::ShiftRightSame(w, shift), mask));
            const auto v = hn::Mul(hn::ConvertTo(df, hn::Sub(qv, hn::Load(di, ztab + j))),
                                   hn::Load(df, stab + j));
            StoreOut<kOut>(df, v, out, orow + k * p.stride + j);
          }
        }
        for (; j < jn; ++j) {
          std::uint32_t word;
          std::memcpy(&word, words + j, 4);
          const auto q = static_cast<std::int32_t>((word >> shift) & ((1u << t.bits) - 1u));
          const float v = (static_cast<float>(q) - static_cast<float>(ztab[j])) * stab[j];
          detail::store_out(kOut, out, orow + k * p.stride + j, v);
        }
      }
    }
  }
}

// Transposed: vectors of PACK lanes at most, so one word fills whole vectors.
template <OutType kOut, std::size_t kPack>
void GptqOutIn(const GptqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
               const std::uint8_t* qweight, void* out) {
  const hn::CappedTag<float, kPack> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t N = hn::Lanes(df);  // divides kPack
  constexpr unsigned kBits = 32 / kPack;
  const std::size_t n_out = t.out_features;
  const auto mask = hn::Set(du, (1u << kBits) - 1u);
  // Lane l of sub-vector s holds row offset s * N + l of the word.
  hn::Vec<decltype(du)> shifts[kPack];
  for (std::size_t s = 0; s * N < kPack; ++s) {
    shifts[s] = hn::Mul(hn::Iota(du, static_cast<std::uint32_t>(s * N)), hn::Set(du, kBits));
  }
  const bool word_group = (!p.has_g_idx || p.trivial_g_idx) && t.group_size % kPack == 0;
  const std::size_t n_words = (i1 - i0) / kPack;
  constexpr std::size_t kTile = 256;  // word rows per tile: 256 cache lines
  HWY_ALIGN std::int32_t zlane[kMaxLanes];
  HWY_ALIGN float slane[kMaxLanes];
  std::size_t wgroup[kTile];  // group of each word row of the tile (word_group)
  const auto* words = reinterpret_cast<const std::uint32_t*>(qweight);
  for (std::size_t pw0 = 0; pw0 < n_words; pw0 += kTile) {
    const std::size_t pw1 = pw0 + kTile < n_words ? pw0 + kTile : n_words;
    if (word_group) {
      for (std::size_t pw = pw0; pw < pw1; ++pw) wgroup[pw - pw0] = detail::gptq_group(t, p, i0 + pw * kPack);
    }
    for (std::size_t j = 0; j < n_out; ++j) {
      const std::size_t row = j * p.stride;
      std::size_t g_cur = ~std::size_t{0};
      hn::Vec<decltype(di)> zero = hn::Zero(di);
      hn::Vec<decltype(df)> scale = hn::Zero(df);
      for (std::size_t pw = pw0; pw < pw1; ++pw) {
        std::uint32_t word;
        std::memcpy(&word, words + pw * n_out + j, 4);
        const auto wv = hn::Set(du, word);
        const std::size_t ibase = i0 + pw * kPack;
        for (std::size_t s = 0; s * N < kPack; ++s) {
          const auto qv = hn::BitCast(di, hn::And(hn::operator>>(wv, shifts[s]), mask));
          if (word_group) {
            const std::size_t g = wgroup[pw - pw0];
            if (g != g_cur) {
              zero = hn::Set(di, detail::gptq_zero(t, p, g, j));
              scale = hn::Set(df, detail::load_scale(t.scale_dtype, t.scales.data(), g * n_out + j));
              g_cur = g;
            }
          } else {
            for (std::size_t l = 0; l < N; ++l) {
              const std::size_t g = detail::gptq_group(t, p, ibase + s * N + l);
              zlane[l] = detail::gptq_zero(t, p, g, j);
              slane[l] = detail::load_scale(t.scale_dtype, t.scales.data(), g * n_out + j);
            }
            zero = hn::Load(di, zlane);
            scale = hn::Load(df, slane);
          }
          const auto v = hn::Mul(hn::ConvertTo(df, hn::Sub(qv, zero)), scale);
          StoreOut<kOut>(df, v, out, row + (ibase - i0) + s * N);
        }
      }
    }
  }
}

}  // namespace

void DequantGptq(const GptqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
                 const std::uint8_t* qweight, const MatrixOut& out) {
  WithOutType(out.type, [&]<OutType kOut>() {
    if (out.orientation == Orientation::in_out) {
      GptqInOut<kOut>(t, p, i0, i1, qweight, out.data);
    } else if (t.bits == 4) {
      GptqOutIn<kOut, 8>(t, p, i0, i1, qweight, out.data);
    } else {
      GptqOutIn<kOut, 4>(t, p, i0, i1, qweight, out.data);
    }
  });
}

}  // namespace mneme::kernels::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mneme::kernels::quant {

HWY_EXPORT(DequantGptq);

void dequant_gptq(const GptqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                  const MatrixOut& out) {
  const detail::MatrixPlan p = detail::plan_gptq(t, i0, i1, qweight, out);
  if (i0 == i1 || t.out_features == 0) return;
  HWY_DYNAMIC_DISPATCH(DequantGptq)(t, p, i0, i1, qweight, out);
}

}  // namespace mneme::kernels::quant
#endif  // HWY_ONCE
