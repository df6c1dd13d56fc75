// GPTQ INT4/INT8 dequantization, Highway kernel.
//
// [in, out] output: a vector of qweight words along out holds `pack`
// consecutive input rows; each row is one shift + mask away. [out, in] output
// (transposed): one word expands into `pack` consecutive outputs of output row
// j, so the kernel walks j and streams each output row; word rows are tiled so
// the qweight lines it revisits for the next j stay in L1 (and prefetched a
// line ahead), and each tile is cut into runs of word rows sharing a group,
// whose zero and scale are set once per run.
// Zeros and scales are per (group, column): loaded once per word while the
// whole word shares a group (no g_idx, or a g_idx equal to i / group_size),
// else per row (act-order g_idx).
// Large outputs are written with non-temporal stores, whole cache lines at a
// time, and BF16 skips its NaN test where no scale is NaN (simd-inl.h).
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

template <OutType kOut, bool kStream, unsigned kBits>
void GptqInOut(const GptqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
               const std::uint8_t* qweight, void* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t N = hn::Lanes(df);
  constexpr std::size_t kPack = 32 / kBits;
  // Vectors of columns per step: 64 bytes of each of the pack rows on AVX2, so
  // a step writes whole cache lines (what non-temporal stores need). Even.
  constexpr std::size_t kV = kOut == OutType::f32 ? 2 : 4;
  const std::size_t n_out = t.out_features;
  const std::size_t stride = p.stride;
  const auto mask = hn::Set(du, (1u << kBits) - 1u);
  const bool word_group = (!p.has_g_idx || p.trivial_g_idx) && t.group_size % kPack == 0;
  // Columns are processed in tiles whose zeros (bias included) and widened
  // scales for the current group sit in two small tables, rebuilt only when
  // the group changes (every group_size rows, or per row under act-order).
  constexpr std::size_t kTile = 512;  // a multiple of every step (kV * N)
  HWY_ALIGN std::int32_t ztab[kTile];
  HWY_ALIGN float stab[kTile];
  const std::size_t n_words = (i1 - i0) / kPack;
  // Row k of the word's kV vectors at column j.
  auto value = [&](const std::uint32_t* words, std::size_t j, unsigned shift) MNEME_QUANT_INLINE_LAMBDA {
    const auto qv = hn::BitCast(di, hn::And(hn::ShiftRightSame(hn::LoadU(du, words + j),
                                                                 static_cast<int>(shift)), mask));
    return hn::Mul(hn::ConvertTo(df, hn::Sub(qv, hn::Load(di, ztab + j))), hn::Load(df, stab + j));
  };
  for (std::size_t j0 = 0; j0 < n_out; j0 += kTile) {
    const std::size_t jn = n_out - j0 < kTile ? n_out - j0 : kTile;
    const std::size_t step_end = jn - jn % (kV * N);
    const std::size_t vec_end = jn - jn % N;
    std::size_t g_cur = ~std::size_t{0};
    Risk tab_risk;  // what the tables' scales make
    // Rebuilds the tables for group g (cheap next to group_size rows of work).
    auto load_group = [&](std::size_t g) {
      if (g == g_cur) return;
      tab_risk = {};
      for (std::size_t l = 0; l < jn; ++l) {
        ztab[l] = detail::gptq_zero(t, p, g, j0 + l);
        stab[l] = detail::load_scale(t.scale_dtype, t.scales.data(), g * n_out + j0 + l);
        tab_risk.add(stab[l], 1.0f);
      }
      g_cur = g;
    };
    for (std::size_t pw = 0; pw < n_words; ++pw) {
      const std::size_t ibase = i0 + pw * kPack;
      const auto* words = reinterpret_cast<const std::uint32_t*>(qweight) + pw * n_out + j0;
      const std::size_t orow = (ibase - i0) * stride + j0;
      if (word_group) {
        load_group(detail::gptq_group(t, p, ibase));
        WithNarrowing<kOut, decltype(df)>(tab_risk, [&]<Narrow kNaN>() {
          for (std::size_t j = 0; j < step_end; j += kV * N) {
            for (std::size_t k = 0; k < kPack; ++k) {
              for (std::size_t v = 0; v < kV; v += 2) {
                StoreOut2<kOut, kStream, kNaN>(df, value(words, j + v * N, kBits * k),
                                               value(words, j + (v + 1) * N, kBits * k), out,
                                               orow + k * stride + j + v * N);
              }
            }
          }
        });
        for (std::size_t j = step_end; j < vec_end; j += N) {
          for (std::size_t k = 0; k < kPack; ++k) {
            StoreOut<kOut>(df, value(words, j, kBits * k), out, orow + k * stride + j);
          }
        }
      }
      for (std::size_t k = 0; k < kPack; ++k) {
        const unsigned shift = kBits * static_cast<unsigned>(k);
        std::size_t j = vec_end;
        if (!word_group) {
          load_group(detail::gptq_group(t, p, ibase + k));
          WithNarrowing<kOut, decltype(df)>(tab_risk, [&]<Narrow kNaN>() {
            for (std::size_t jj = 0; jj < step_end; jj += kV * N) {
              for (std::size_t v = 0; v < kV; v += 2) {
                StoreOut2<kOut, kStream, kNaN>(df, value(words, jj + v * N, shift),
                                               value(words, jj + (v + 1) * N, shift), out,
                                               orow + k * stride + jj + v * N);
              }
            }
          });
          j = step_end;
          for (; j < vec_end; j += N) StoreOut<kOut>(df, value(words, j, shift), out, orow + k * stride + j);
        }
        for (; j < jn; ++j) {
          std::uint32_t word;
          std::memcpy(&word, words + j, 4);
          const auto q = static_cast<std::int32_t>((word >> shift) & ((1u << kBits) - 1u));
          const float v = (static_cast<float>(q) - static_cast<float>(ztab[j])) * stab[j];
          detail::store_out(kOut, out, orow + k * stride + j, v);
        }
      }
    }
  }
}

// Transposed: vectors of PACK lanes at most, so one word fills whole vectors;
// two words at a time make one BF16 store.
template <OutType kOut, bool kStream, std::size_t kPack>
void GptqOutIn(const GptqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
               const std::uint8_t* qweight, void* out) {
  const hn::CappedTag<float, kPack> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t N = hn::Lanes(df);  // divides kPack
  constexpr unsigned kBits = 32 / kPack;
  const std::size_t n_out = t.out_features;
  const std::size_t stride = p.stride;
  const auto mask = hn::Set(du, (1u << kBits) - 1u);
  // Lane l of sub-vector s holds row offset s * N + l of the word.
  hn::Vec<decltype(du)> shifts[kPack];
  for (std::size_t s = 0; s * N < kPack; ++s) {
    shifts[s] = hn::Mul(hn::Iota(du, static_cast<std::uint32_t>(s * N)), hn::Set(du, kBits));
  }
  const bool word_group = (!p.has_g_idx || p.trivial_g_idx) && t.group_size % kPack == 0;
  const std::size_t n_words = (i1 - i0) / kPack;
  constexpr std::size_t kTile = 256;  // word rows per tile: 256 cache lines (even)
  HWY_ALIGN std::int32_t zlane[kMaxLanes];
  HWY_ALIGN float slane[kMaxLanes];
  std::size_t wgroup[kTile];  // group of each word row of the tile (word_group)
  std::size_t seg[kTile + 1];
  const auto* words = reinterpret_cast<const std::uint32_t*>(qweight);
  for (std::size_t pw0 = 0; pw0 < n_words; pw0 += kTile) {
    const std::size_t pw1 = pw0 + kTile < n_words ? pw0 + kTile : n_words;
    if (word_group) {
      for (std::size_t pw = pw0; pw < pw1; ++pw) wgroup[pw - pw0] = detail::gptq_group(t, p, i0 + pw * kPack);
    }
    // Runs of word rows sharing a group (word_group): [seg[k], seg[k + 1]).
    std::size_t n_seg = 0;
    if (word_group) {
      for (std::size_t pw = pw0; pw < pw1; ++pw) {
        if (pw == pw0 || wgroup[pw - pw0] != wgroup[pw - pw0 - 1]) seg[n_seg++] = pw;
      }
      seg[n_seg] = pw1;
    }
    for (std::size_t j = 0; j < n_out; ++j) {
      const std::size_t row = j * stride;
      // The next 16 columns of every word row of the tile: a line each, read
      // after this one (no hardware prefetcher follows 256 strided streams).
      if (j % 16 == 0 && j + 16 < n_out) {
        for (std::size_t pw = pw0; pw < pw1; ++pw) hwy::Prefetch(words + pw * n_out + j + 16);
      }
      // Word pw's kPack values (sub-vector s) with the given zero and scale.
      auto value = [&](std::uint32_t word, std::size_t s, hn::Vec<decltype(di)> zero,
                       hn::Vec<decltype(df)> scale) MNEME_QUANT_INLINE_LAMBDA {
        const auto qv = hn::BitCast(di, hn::And(hn::operator>>(hn::Set(du, word), shifts[s]), mask));
        return hn::Mul(hn::ConvertTo(df, hn::Sub(qv, zero)), scale);
      };
      if (!word_group) {
        for (std::size_t pw = pw0; pw < pw1; ++pw) {
          std::uint32_t w0;
          std::memcpy(&w0, words + pw * n_out + j, 4);
          const std::size_t ibase = i0 + pw * kPack;
          for (std::size_t s = 0; s * N < kPack; ++s) {
            for (std::size_t l = 0; l < N; ++l) {
              const std::size_t g = detail::gptq_group(t, p, ibase + s * N + l);
              zlane[l] = detail::gptq_zero(t, p, g, j);
              slane[l] = detail::load_scale(t.scale_dtype, t.scales.data(), g * n_out + j);
            }
            StoreOut<kOut>(df, value(w0, s, hn::Load(di, zlane), hn::Load(df, slane)), out,
                           row + pw * kPack + s * N);
          }
        }
        continue;
      }
      for (std::size_t k = 0; k < n_seg; ++k) {
        const std::size_t g = wgroup[seg[k] - pw0];
        const float sf = detail::load_scale(t.scale_dtype, t.scales.data(), g * n_out + j);
        const auto zero = hn::Set(di, detail::gptq_zero(t, p, g, j));
        const auto scale = hn::Set(df, sf);
        Risk risk;
        risk.add(sf, 1.0f);
        WithNarrowing<kOut, decltype(df)>(risk, [&]<Narrow kNaN>() {
          // One word: kPack outputs at row + pw * kPack, aligned to their size.
          auto one = [&](std::size_t pw) MNEME_QUANT_INLINE_LAMBDA {
            std::uint32_t w0;
            std::memcpy(&w0, words + pw * n_out + j, 4);
            for (std::size_t s = 0; s * N < kPack; ++s) {
              StoreOut<kOut, kStream, kNaN>(df, value(w0, s, zero, scale), out, row + pw * kPack + s * N);
            }
          };
          std::size_t pw = seg[k];
          const std::size_t end = seg[k + 1];
          if (pw % 2 != 0) one(pw++);
          for (; pw + 2 <= end; pw += 2) {
            std::uint32_t w0, w1;
            std::memcpy(&w0, words + pw * n_out + j, 4);
            std::memcpy(&w1, words + (pw + 1) * n_out + j, 4);
            const std::size_t o = row + pw * kPack;  // 2 * kPack outputs from here
            if (N == kPack) {
              StoreOut2<kOut, kStream, kNaN>(df, value(w0, 0, zero, scale), value(w1, 0, zero, scale),
                                             out, o);
            } else {
              for (std::size_t s = 0; s * N < kPack; s += 2) {
                StoreOut2<kOut, kStream, kNaN>(df, value(w0, s, zero, scale),
                                               value(w0, s + 1, zero, scale), out, o + s * N);
              }
              for (std::size_t s = 0; s * N < kPack; s += 2) {
                StoreOut2<kOut, kStream, kNaN>(df, value(w1, s, zero, scale),
                                               value(w1, s + 1, zero, scale), out, o + kPack + s * N);
              }
            }
          }
          if (pw < end) one(pw);
        });
      }
    }
  }
}

}  // namespace

void DequantGptq(const GptqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
                 const std::uint8_t* qweight, const MatrixOut& out) {
  const std::size_t osize = out_size(out.type);
  // Every output row (in_out) or band row (out_in) is written contiguously.
  const bool stream = UseStream(out.data, (i1 - i0) * t.out_features * osize, p.stride * osize);
  WithOutType(out.type, [&]<OutType kOut>() {
    WithStream(stream, [&]<bool kStream>() {
      if (out.orientation == Orientation::in_out) {
        if (t.bits == 4) {
          GptqInOut<kOut, kStream, 4>(t, p, i0, i1, qweight, out.data);
        } else {
          GptqInOut<kOut, kStream, 8>(t, p, i0, i1, qweight, out.data);
        }
      } else if (t.bits == 4) {
        GptqOutIn<kOut, kStream, 8>(t, p, i0, i1, qweight, out.data);
      } else {
        GptqOutIn<kOut, kStream, 4>(t, p, i0, i1, qweight, out.data);
      }
    });
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
