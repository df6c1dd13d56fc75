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

// BF16 codes, sign-extended in i32 lanes (see simd::Bf16InUpperHalf for kMayNaN).
template <bool kMayNaN = true, class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> Bf16Bits(DF df, hn::Vec<DF> v) {
  return simd::Bf16Code<kMayNaN>(df, v);
}

// Stores Lanes(df) f32 results to out + i (elements of the output type).
template <OutType kOut, bool kStream = false, bool kMayNaN = true, class DF>
HWY_INLINE void StoreOut(DF df, hn::Vec<DF> v, void* out, std::size_t i) {
  if constexpr (kOut == OutType::f32) {
    Put<kStream>(df, v, static_cast<float*>(out) + i);
  } else {
    const hn::Rebind<std::uint16_t, DF> d16;
    auto* dst = static_cast<std::uint16_t*>(out) + i;
    if constexpr (kOut == OutType::bf16) {
#if MNEME_SIMD_NATIVE_BF16
      // One vector: only where the integer path would test for NaN too.
      if constexpr (kMayNaN && hn::MaxLanes(DF()) == 16) {
        __m256i codes;
        if (simd::NativeBf16(v.raw, codes)) {
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
template <OutType kOut, bool kStream = false, bool kMayNaN = true, class DF>
HWY_INLINE void StoreOut2(DF df, hn::Vec<DF> a, hn::Vec<DF> b, void* out, std::size_t i) {
#if HWY_TARGET == HWY_SCALAR
  StoreOut<kOut, kStream, kMayNaN>(df, a, out, i);
  StoreOut<kOut, kStream, kMayNaN>(df, b, out, i + 1);
#else
  if constexpr (kOut == OutType::bf16) {
    const hn::Repartition<std::int16_t, DF> di16;  // 2 * Lanes(df) lanes
    const hn::RebindToUnsigned<decltype(di16)> du16;
#if MNEME_SIMD_NATIVE_BF16
    if constexpr (hn::MaxLanes(DF()) == 16) {
      __m512i codes;
      if (simd::NativeBf16Pair(a.raw, b.raw, codes)) {
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
    StoreOut<kOut, kStream, kMayNaN>(df, a, out, i);
    StoreOut<kOut, kStream, kMayNaN>(df, b, out, i + hn::Lanes(df));
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

// Calls f.template operator()<kMayNaN>() (see Bf16Bits): without the NaN test
// only for BF16 output where no scale involved is NaN.
template <OutType kOut, class F>
HWY_INLINE void WithNaN(bool scale_nan, F&& f) {
  if (kOut != OutType::bf16 || scale_nan) {
    f.template operator()<true>();
  } else {
    f.template operator()<false>();
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
