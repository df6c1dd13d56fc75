// AWQ INT4 GEMM dequantization, Highway kernel.
//
// [in, out] output: one word holds 8 consecutive columns of one row in
// AutoAWQ's interleaved nibble order, so a per-lane shift table unpacks it
// straight into column order (the zeros word uses the same table). [out, in]
// output (transposed): a vector of words from consecutive rows of one word
// column yields, per nibble, a run of consecutive outputs of one output row;
// blocks of 8 word columns x 32 rows are transposed through registers (8x8
// shuffles on AVX2) into a small buffer, and rows are tiled so the qweight
// lines revisited for the next block stay in cache. Each step writes 64 bytes
// of each output row it touches: whole lines for the non-temporal stores that
// large outputs use.
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

template <OutType kOut, bool kStream>
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
  const std::size_t n_words = p.zero_words;
  const std::size_t stride = p.stride;
  const auto* zwords = t.qzeros.data();
  std::size_t g_risk = ~std::size_t{0};  // the group whose scales row_risk describes
  Risk row_risk;
  for (std::size_t i = i0; i < i1; ++i) {
    const std::size_t g = i / t.group_size;
    if (g != g_risk) {
      row_risk = {};
      for (std::size_t j = 0; j < n_out; ++j) {
        row_risk.add(detail::load_scale(t.scale_dtype, t.scales.data(), g * n_out + j), 1.0f);
      }
      g_risk = g;
    }
    const std::uint8_t* row = qweight + 4 * (i - i0) * n_words;
    const std::uint8_t* zrow = zwords + 4 * g * n_words;
    const std::uint8_t* srow = t.scales.data();
    const std::size_t sbase = g * n_out;
    const std::size_t orow = (i - i0) * stride;
    // Sub-vector s of word c.
    auto value = [&](std::size_t c, std::size_t s) MNEME_QUANT_INLINE_LAMBDA {
      std::uint32_t word, zword;
      std::memcpy(&word, row + 4 * c, 4);
      std::memcpy(&zword, zrow + 4 * c, 4);
      const std::size_t j = 8 * c + s * N;
      const auto q = hn::BitCast(di, hn::And(hn::operator>>(hn::Set(du, word), shifts[s]), mask));
      const auto z = hn::BitCast(di, hn::And(hn::operator>>(hn::Set(du, zword), shifts[s]), mask));
      const auto scale = LoadScales(df, t.scale_dtype, srow, sbase + j);
      return hn::Mul(hn::ConvertTo(df, hn::Sub(q, z)), scale);
    };
    std::size_t c = 0;
    WithNarrowing<kOut, decltype(df)>(row_risk, [&]<Narrow kNaN>() {
      if (N == 8) {  // two words per store
        for (; c + 2 <= n_words; c += 2) {
          const auto a = value(c, 0);
          StoreOut2<kOut, kStream, kNaN>(df, a, value(c + 1, 0), out, orow + 8 * c);
        }
      } else {
        for (; c < n_words; ++c) {
          for (std::size_t s = 0; s * N < 8; s += 2) {
            const auto a = value(c, s);
            StoreOut2<kOut, kStream, kNaN>(df, a, value(c, s + 1), out, orow + 8 * c + s * N);
          }
        }
      }
    });
    for (; c < n_words; ++c) {
      for (std::size_t s = 0; s * N < 8; ++s) StoreOut<kOut>(df, value(c, s), out, orow + 8 * c + s * N);
    }
  }
}

#if HWY_TARGET == HWY_AVX2
constexpr bool kHaveTranspose = true;
#else
constexpr bool kHaveTranspose = false;
#endif

// Transposes 8 rows of 8 words (a[r][c]) into 8 columns of 8 rows, stored at
// col[c * col_stride]. AVX2 only (8 lanes); returns false elsewhere.
template <class DU>
HWY_INLINE bool Transpose8x8(DU du, const std::uint8_t* src, std::size_t row_bytes,
                             std::uint32_t* col, std::size_t col_stride) {
#if HWY_TARGET == HWY_AVX2
  const hn::Repartition<std::uint64_t, DU> d64;
  hn::Vec<DU> a[8];
  for (std::size_t r = 0; r < 8; ++r) {
    a[r] = hn::LoadU(du, reinterpret_cast<const std::uint32_t*>(src + r * row_bytes));
  }
  hn::Vec<DU> t[8];
  for (std::size_t k = 0; k < 4; ++k) {
    t[2 * k] = hn::InterleaveLower(du, a[2 * k], a[2 * k + 1]);      // cols 0,1 | 4,5
    t[2 * k + 1] = hn::InterleaveUpper(du, a[2 * k], a[2 * k + 1]);  // cols 2,3 | 6,7
  }
  hn::Vec<DU> u[8];  // u[4 * h + c]: rows 4h..4h+3 of columns c | c + 4
  for (std::size_t h = 0; h < 2; ++h) {
    const auto lo0 = hn::BitCast(d64, t[4 * h]), lo1 = hn::BitCast(d64, t[4 * h + 2]);
    const auto hi0 = hn::BitCast(d64, t[4 * h + 1]), hi1 = hn::BitCast(d64, t[4 * h + 3]);
    u[4 * h + 0] = hn::BitCast(du, hn::InterleaveLower(d64, lo0, lo1));
    u[4 * h + 1] = hn::BitCast(du, hn::InterleaveUpper(d64, lo0, lo1));
    u[4 * h + 2] = hn::BitCast(du, hn::InterleaveLower(d64, hi0, hi1));
    u[4 * h + 3] = hn::BitCast(du, hn::InterleaveUpper(d64, hi0, hi1));
  }
  for (std::size_t c = 0; c < 4; ++c) {
    hn::Store(hn::ConcatLowerLower(du, u[4 + c], u[c]), du, col + c * col_stride);
    hn::Store(hn::ConcatUpperUpper(du, u[4 + c], u[c]), du, col + (c + 4) * col_stride);
  }
  return true;
#else
  (void)du, (void)src, (void)row_bytes, (void)col, (void)col_stride;
  return false;
#endif
}

template <OutType kOut, bool kStream>
void AwqOutIn(const AwqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
              const std::uint8_t* qweight, void* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const std::size_t N = hn::Lanes(df);
  // Vectors of rows per step: 64 bytes of each of the 8 output rows a word
  // column feeds, so every step writes whole cache lines.
  constexpr std::size_t kV = kOut == OutType::f32 ? 2 : 4;
  constexpr std::size_t kC = 8;  // word columns per block
  const auto mask = hn::Set(du, 0xFu);
  const std::size_t rows = i1 - i0;
  const std::size_t vec_rows = rows - rows % N;
  const std::size_t n_words = p.zero_words;
  const std::size_t stride = p.stride;
  const std::size_t row_bytes = 4 * n_words;
  const std::size_t gs = t.group_size;
  constexpr std::size_t kTile = 1024;  // rows per tile: 64 KiB of qweight lines; a multiple of kV * N
  // Words of the block's columns, transposed: wt[cc * kWt + r] = row r of column cc.
  constexpr std::size_t kWt = kV * kMaxLanes;
  HWY_ALIGN std::uint32_t wt[kC * kWt];
  HWY_ALIGN std::int32_t zlane[kMaxLanes];
  HWY_ALIGN float slane[kMaxLanes];
  for (std::size_t r0 = 0; r0 < vec_rows; r0 += kTile) {
    const std::size_t r1 = r0 + kTile < vec_rows ? r0 + kTile : vec_rows;
    for (std::size_t cb = 0; cb < n_words; cb += kC) {
      const std::size_t ncc = n_words - cb < kC ? n_words - cb : kC;
      // Zeros and scales of the block's outputs for group g_cached.
      std::size_t g_cached = ~std::size_t{0};
      std::int32_t zc[kC][8];
      float sc[kC][8];
      Risk blk_risk;  // what sc makes
      // kVec vectors of rows from r for the block's columns.
      auto step = [&]<std::size_t kVec, bool kSt, Narrow kNaN>(
                      std::size_t r) MNEME_QUANT_INLINE_LAMBDA {
        const std::size_t nr = kVec * N;
        if (kHaveTranspose && ncc == kC && nr % 8 == 0) {
          for (std::size_t r8 = 0; r8 < nr; r8 += 8) {
            Transpose8x8(du, qweight + (r + r8) * row_bytes + 4 * cb, row_bytes, wt + r8, kWt);
          }
        } else {
          for (std::size_t cc = 0; cc < ncc; ++cc) {
            for (std::size_t l = 0; l < nr; ++l) {
              std::memcpy(&wt[cc * kWt + l], qweight + (r + l) * row_bytes + 4 * (cb + cc), 4);
            }
          }
        }
        const std::size_t g_lo = (i0 + r) / gs, g_hi = (i0 + r + nr - 1) / gs;
        for (std::size_t cc = 0; cc < ncc; ++cc) {
          const std::size_t c = cb + cc;
          hn::Vec<decltype(du)> wv[kVec];
          for (std::size_t v = 0; v < kVec; ++v) wv[v] = hn::Load(du, wt + cc * kWt + v * N);
          for (std::size_t o = 0; o < 8; ++o) {
            const std::size_t j = 8 * c + o;
            const int shift = static_cast<int>(4 * detail::kAwqNibble[o]);
            hn::Vec<decltype(df)> vals[kVec];
            for (std::size_t v = 0; v < kVec; ++v) {
              const auto q = hn::BitCast(di, hn::And(hn::ShiftRightSame(wv[v], shift), mask));
              hn::Vec<decltype(di)> z;
              hn::Vec<decltype(df)> scale;
              if (g_lo == g_hi) {
                z = hn::Set(di, zc[cc][o]);
                scale = hn::Set(df, sc[cc][o]);
              } else if (const std::size_t gv = (i0 + r + v * N) / gs;
                         gv == (i0 + r + v * N + N - 1) / gs) {
                z = hn::Set(di, detail::awq_zero(t, p, gv, j));
                scale = hn::Set(df, detail::load_scale(t.scale_dtype, t.scales.data(), gv * t.out_features + j));
              } else {
                for (std::size_t l = 0; l < N; ++l) {
                  const std::size_t g = (i0 + r + v * N + l) / gs;
                  zlane[l] = detail::awq_zero(t, p, g, j);
                  slane[l] = detail::load_scale(t.scale_dtype, t.scales.data(), g * t.out_features + j);
                }
                z = hn::Load(di, zlane);
                scale = hn::Load(df, slane);
              }
              vals[v] = hn::Mul(hn::ConvertTo(df, hn::Sub(q, z)), scale);
            }
            if constexpr (kVec == 1) {
              StoreOut<kOut, false, kNaN>(df, vals[0], out, j * stride + r);
            } else {
              for (std::size_t v = 0; v < kVec; v += 2) {
                StoreOut2<kOut, kSt, kNaN>(df, vals[v], vals[v + 1], out, j * stride + r + v * N);
              }
            }
          }
        }
      };
      // Caches the zeros and scales when rows [r, r + nr) share a group;
      // returns what the step's scales make (anything, across groups).
      auto prepare = [&](std::size_t r, std::size_t nr) {
        const std::size_t g_lo = (i0 + r) / gs, g_hi = (i0 + r + nr - 1) / gs;
        if (g_lo != g_hi) return Risk{true, true};
        if (g_lo != g_cached) {
          blk_risk = {};
          for (std::size_t cc = 0; cc < ncc; ++cc) {
            for (std::size_t o = 0; o < 8; ++o) {
              const std::size_t j = 8 * (cb + cc) + o;
              zc[cc][o] = detail::awq_zero(t, p, g_lo, j);
              sc[cc][o] = detail::load_scale(t.scale_dtype, t.scales.data(), g_lo * t.out_features + j);
              blk_risk.add(sc[cc][o], 1.0f);
            }
          }
          g_cached = g_lo;
        }
        return blk_risk;
      };
      std::size_t r = r0;
      for (; r + kV * N <= r1; r += kV * N) {
        WithNarrowing<kOut, decltype(df)>(prepare(r, kV * N), [&]<Narrow kNaN>() {
          step.template operator()<kV, kStream, kNaN>(r);
        });
      }
      for (; r < r1; r += N) {
        WithNarrowing<kOut, decltype(df)>(
            prepare(r, N), [&]<Narrow kNaN>() { step.template operator()<1, false, kNaN>(r); });
      }
    }
  }
  for (std::size_t j = 0; j < t.out_features; ++j) {
    for (std::size_t r = vec_rows; r < rows; ++r) {
      detail::store_out(kOut, out, j * stride + r, detail::awq_value(t, p, qweight, i0, i0 + r, j));
    }
  }
}

}  // namespace

void DequantAwq(const AwqTensor& t, const detail::MatrixPlan& p, std::size_t i0, std::size_t i1,
                const std::uint8_t* qweight, const MatrixOut& out) {
  const std::size_t osize = out_size(out.type);
  // Every output row (in_out) or band row (out_in) is written contiguously.
  const bool stream = UseStream(out.data, (i1 - i0) * t.out_features * osize, p.stride * osize);
  WithOutType(out.type, [&]<OutType kOut>() {
    WithStream(stream, [&]<bool kStream>() {
      if (out.orientation == Orientation::in_out) {
        AwqInOut<kOut, kStream>(t, p, i0, i1, qweight, out.data);
      } else {
        AwqOutIn<kOut, kStream>(t, p, i0, i1, qweight, out.data);
      }
    });
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
