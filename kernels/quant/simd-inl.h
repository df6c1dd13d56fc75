// Per-target Highway helpers of the quant kernels: typed stores of F32
// results (one or two vectors) and scale loads, built on the shared SIMD
// foundation (kernels/simd/narrow-inl.h: narrowing, widening, store policy).
// Internal.
//
// Include after hwy/highway.h inside the foreach_target loop (per-target guard).
#if defined(MNEME_KERNELS_QUANT_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef MNEME_KERNELS_QUANT_SIMD_INL_H_
#undef MNEME_KERNELS_QUANT_SIMD_INL_H_
#else
#define MNEME_KERNELS_QUANT_SIMD_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "kernels/simd/narrow-inl.h"
#include "mneme/dtype.hpp"

// Kernels' per-vector lambdas must inline: a call per vector reloads every
// constant (measured: GPTQ [out, in] spent half its time in the call).
#ifndef MNEME_QUANT_INLINE_LAMBDA
#define MNEME_QUANT_INLINE_LAMBDA __attribute__((always_inline))
#endif

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace simd = mneme::kernels::simd::HWY_NAMESPACE;
using simd::kCanStream;
using simd::Put;
using simd::UseStream;
using simd::WidenF16;
using simd::WithStream;

// What the values a kernel narrows to BF16 may hold, which decides how
// (WithNarrowing picks it per run of values):
//   checked       anything: the NaN test, and the instruction only for
//                 vectors without a subnormal lane;
//   no_nan        no NaN whose low bits rounding could disturb (no NaN
//                 scale): the integer path skips its NaN test;
//   no_subnormal  no NaN scale and no subnormal value: the bare AVX512_BF16
//                 instruction (or, where a kernel's vectors are narrower,
//                 the integer path without its NaN test).
enum class Narrow { checked, no_nan, no_subnormal };

// What a run's scales let its values be. Quants are integers (GPTQ, AWQ,
// INT8) or table and FP8 values no smaller than min_quant when not zero: a
// scale that is zero, infinite, NaN, or with |s| * min_quant >= 2^-125 (2^-126
// with room for the rounding of that product and of the value's own) makes
// no subnormal.
struct Risk {
  bool nan = false;
  bool subnormal = false;
  void add(float scale, float min_quant) {
    nan |= scale != scale;
    const float a = scale < 0 ? -scale : scale;
    subnormal |= !(a == 0 || !(a <= 3.4028235e38f) || a * min_quant >= 0x1p-125f);
  }
};

// BF16 codes, sign-extended in i32 lanes (see simd::Bf16InUpperHalf for kMayNaN).
template <bool kMayNaN = true, class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> Bf16Bits(DF df, hn::Vec<DF> v) {
  return simd::Bf16Code<kMayNaN>(df, v);
}

// Stores Lanes(df) f32 results to out + i (elements of the output type).
template <OutType kOut, bool kStream = false, Narrow kNarrow = Narrow::checked, class DF>
HWY_INLINE void StoreOut(DF df, hn::Vec<DF> v, void* out, std::size_t i) {
  constexpr bool kMayNaN = kNarrow == Narrow::checked;
  if constexpr (kOut == OutType::f32) {
    Put<kStream>(df, v, static_cast<float*>(out) + i);
  } else {
    const hn::Rebind<std::uint16_t, DF> d16;
    auto* dst = static_cast<std::uint16_t*>(out) + i;
    if constexpr (kOut == OutType::bf16) {
#if MNEME_SIMD_NATIVE_BF16
      // One vector: bare, or checked only where the integer path would test
      // for NaN too.
      if constexpr (kNarrow != Narrow::no_nan && hn::MaxLanes(DF()) == 16) {
        __m256i codes;
        if (kNarrow == Narrow::no_subnormal ? simd::NativeBf16NoSubnormal(v.raw, codes)
                                            : simd::NativeBf16(v.raw, codes)) {
          Put<kStream>(d16, hn::Vec<decltype(d16)>{codes}, dst);
          return;
        }
      }
#endif
      const hn::Rebind<std::int16_t, DF> di16;
      Put<kStream>(d16, hn::BitCast(d16, hn::DemoteTo(di16, Bf16Bits<kMayNaN>(df, v))), dst);
    } else {
      Put<kStream>(d16, simd::F16Codes(df, v), dst);
    }
  }
}

// Stores 2 * Lanes(df) f32 results (a, then b) to out + i. BF16 narrows both
// vectors in one signed pack (one shuffle fewer per vector, one store).
template <OutType kOut, bool kStream = false, Narrow kNarrow = Narrow::checked, class DF>
HWY_INLINE void StoreOut2(DF df, hn::Vec<DF> a, hn::Vec<DF> b, void* out, std::size_t i) {
#if HWY_TARGET == HWY_SCALAR
  StoreOut<kOut, kStream, kNarrow>(df, a, out, i);
  StoreOut<kOut, kStream, kNarrow>(df, b, out, i + 1);
#else
  constexpr bool kMayNaN = kNarrow == Narrow::checked;
  if constexpr (kOut == OutType::bf16) {
    const hn::Repartition<std::int16_t, DF> di16;  // 2 * Lanes(df) lanes
    const hn::RebindToUnsigned<decltype(di16)> du16;
#if MNEME_SIMD_NATIVE_BF16
    if constexpr (hn::MaxLanes(DF()) == 16) {
      __m512i codes;
      if (kNarrow == Narrow::no_subnormal ? simd::NativeBf16PairNoSubnormal(a.raw, b.raw, codes)
                                          : simd::NativeBf16Pair(a.raw, b.raw, codes)) {
        Put<kStream>(du16, hn::Vec<decltype(du16)>{codes}, static_cast<std::uint16_t*>(out) + i);
        return;
      }
    }
#endif
    auto packed = hn::ReorderDemote2To(di16, Bf16Bits<kMayNaN>(df, a), Bf16Bits<kMayNaN>(df, b));
    // x86 packs within 128-bit blocks: put a's blocks before b's.
    if constexpr (hn::MaxLanes(decltype(di16)()) * 2 > 16) {
#if HWY_TARGET == HWY_AVX2
      packed = decltype(packed){_mm256_permute4x64_epi64(packed.raw, 0xD8)};
#else
      const hn::Repartition<std::uint64_t, DF> d64;
      constexpr std::size_t n64 = hn::MaxLanes(decltype(d64)());
      HWY_ALIGN std::uint64_t idx[n64];
      for (std::size_t l = 0; l < n64; ++l) idx[l] = l < n64 / 2 ? 2 * l : 2 * (l - n64 / 2) + 1;
      packed = hn::BitCast(
          di16, hn::TableLookupLanes(hn::BitCast(d64, packed), hn::SetTableIndices(d64, idx)));
#endif
    }
    Put<kStream>(du16, hn::BitCast(du16, packed), static_cast<std::uint16_t*>(out) + i);
  } else {
    StoreOut<kOut, kStream, kNarrow>(df, a, out, i);
    StoreOut<kOut, kStream, kNarrow>(df, b, out, i + hn::Lanes(df));
  }
#endif
}

// Loads Lanes(df) consecutive F32/BF16/F16 scales starting at element idx.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadScales(DF df, DType t, const std::uint8_t* base, std::size_t idx) {
  if (t == DType::f32) return hn::LoadU(df, reinterpret_cast<const float*>(base) + idx);
  const hn::Rebind<std::uint16_t, DF> d16;
  const auto h = hn::LoadU(d16, reinterpret_cast<const std::uint16_t*>(base) + idx);
  if (t == DType::bf16) {
    const hn::RebindToUnsigned<DF> du;
    return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, h)));
  }
  return WidenF16(df, h);
}

// Calls f.template operator()<kNarrow>() with the narrowing a run of values
// whose scales make `risk` needs, for a kernel storing vectors of DF (only
// BF16 output distinguishes; the bare instruction only where the CPU has it,
// for kernels of 16-lane vectors: offered to narrower ones, the third
// instantiation of their loops cost 0.7x, perf-experiments P14).
template <OutType kOut, class DF, class F>
HWY_INLINE void WithNarrowing(const Risk& risk, F&& f) {
  if constexpr (kOut != OutType::bf16) {
    f.template operator()<Narrow::checked>();
  } else {
#if MNEME_SIMD_NATIVE_BF16
    if constexpr (hn::MaxLanes(DF()) == 16) {
      if (!risk.nan && !risk.subnormal && mneme::kernels::simd::kHasAvx512Bf16) {
        f.template operator()<Narrow::no_subnormal>();
        return;
      }
    }
#endif
    if (risk.nan) {
      f.template operator()<Narrow::checked>();
    } else {
      f.template operator()<Narrow::no_nan>();
    }
  }
}

// Calls f.template operator()<kOut>() for the runtime output type.
template <class F>
HWY_INLINE void WithOutType(OutType t, F&& f) {
  switch (t) {
    case OutType::f32:
      f.template operator()<OutType::f32>();
      break;
    case OutType::bf16:
      f.template operator()<OutType::bf16>();
      break;
    case OutType::f16:
      f.template operator()<OutType::f16>();
      break;
  }
}

}  // namespace mneme::kernels::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
