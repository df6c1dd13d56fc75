// Per-target Highway helpers shared by the quant kernels: F16 widening and
// F32 -> BF16/F16 narrowing that produce exactly kernels/float_bits.hpp's bits
// on every target (Highway 1.0.3's own DemoteTo truncates to BF16, and its
// non-F16C F16 paths neither round nor handle Inf/NaN). Internal.
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

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "mneme/dtype.hpp"

// Kernels' per-vector lambdas must inline: a call per vector reloads every
// constant (measured: GPTQ [out, in] spent half its time in the call).
#ifndef MNEME_QUANT_INLINE_LAMBDA
#define MNEME_QUANT_INLINE_LAMBDA __attribute__((always_inline))
#endif

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#undef MNEME_QUANT_HAVE_F16C
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
#define MNEME_QUANT_HAVE_F16C 1
#else
#define MNEME_QUANT_HAVE_F16C 0
#endif

// IEEE binary16 bits (u16 lanes) -> f32, exact; NaN payload kept, quiet bit
// set (vcvtph2ps semantics, = f32_from_f16).
template <class DF, class V16>
HWY_INLINE hn::Vec<DF> WidenF16(DF df, V16 h) {
#if MNEME_QUANT_HAVE_F16C
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::BitCast(dh, h));
#else
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const auto b = hn::PromoteTo(du, h);
  const auto sign = hn::ShiftLeft<16>(hn::And(b, hn::Set(du, 0x8000u)));
  const auto exp = hn::And(b, hn::Set(du, 0x7C00u));
  const auto mant = hn::And(b, hn::Set(du, 0x03FFu));
  const auto normal = hn::Add(hn::ShiftLeft<13>(hn::And(b, hn::Set(du, 0x7FFFu))),
                              hn::Set(du, 112u << 23));
  // Subnormal: mant * 2^-24 (integer conversion, no denormal arithmetic).
  const auto sub = hn::BitCast(
      du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, mant)), hn::Set(df, 5.9604644775390625e-8f)));
  const auto special = hn::Or(hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(mant)),
                              hn::IfThenElseZero(hn::Ne(mant, hn::Zero(du)), hn::Set(du, 0x00400000u)));
  auto mag = hn::IfThenElse(hn::Eq(exp, hn::Zero(du)), sub, normal);
  mag = hn::IfThenElse(hn::Eq(exp, hn::Set(du, 0x7C00u)), special, mag);
  return hn::BitCast(df, hn::Or(sign, mag));
#endif
}

// f32 -> BF16 bits in the low half of i32 lanes, sign-extended (so a signed
// saturating demote keeps them): RNE, NaN kept quiet.
// kMayNaN = false skips the NaN test where the caller knows every NaN lane
// already reads as its BF16 result after rounding: a quiet NaN whose low 16
// bits are zero, which is what the kernels' products make unless a scale
// itself is NaN (integers, FP8 and F16-widened values times a non-NaN scale).
template <bool kMayNaN = true, class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> Bf16Bits(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const auto b = hn::BitCast(du, v);
  // No carry reaches bit 31 for a non-NaN input (the largest, -Inf, is 0xFF800000).
  auto r = hn::Add(hn::Add(b, hn::Set(du, 0x7FFFu)), hn::And(hn::ShiftRight<16>(b), hn::Set(du, 1u)));
  if constexpr (kMayNaN) {
    // IsNaN is an unordered compare (one instruction on x86), unlike Ne(v, v).
    r = hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), hn::Or(b, hn::Set(du, 0x00400000u)), r);
  }
  (void)df;
  return hn::ShiftRight<16>(hn::BitCast(di, r));
}

#if !MNEME_QUANT_HAVE_F16C
// f32 -> F16 bits in the low half of u32 lanes: IEEE RNE, overflow to Inf,
// gradual underflow, NaN kept quiet (= f16_from_f32).
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> F16Bits(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const auto b = hn::BitCast(du, v);
  const auto sign = hn::And(hn::ShiftRight<16>(b), hn::Set(du, 0x8000u));
  const auto absu = hn::And(b, hn::Set(du, 0x7FFFFFFFu));
  const auto abs = hn::BitCast(di, absu);
  const auto normal = hn::ShiftRight<13>(
      hn::Sub(hn::Add(hn::Add(absu, hn::Set(du, 0xFFFu)),
                      hn::And(hn::ShiftRight<13>(absu), hn::Set(du, 1u))),
              hn::Set(du, 0x38000000u)));
  // Below 2^-14: adding 0.5 lets the FPU round the significand into place
  // (round to nearest even); the result's low bits are the F16 subnormal.
  const auto sub = hn::Sub(hn::BitCast(du, hn::Add(hn::BitCast(df, absu), hn::Set(df, 0.5f))),
                           hn::Set(du, 0x3F000000u));
  auto r = hn::IfThenElse(hn::RebindMask(du, hn::Lt(abs, hn::Set(di, 0x38800000))), sub, normal);
  r = hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x477FEFFF))), hn::Set(du, 0x7C00u), r);
  const auto nan = hn::Or(hn::Set(du, 0x7E00u), hn::And(hn::ShiftRight<13>(absu), hn::Set(du, 0x3FFu)));
  r = hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x7F800000))), nan, r);
  return hn::BitCast(di, hn::Or(r, sign));
}
#endif

// Non-temporal stores (kStream) skip the read-for-ownership of every output
// line, the largest cost of a kernel whose output is well beyond the caches.
// Only on AVX2 and wider and only for whole vectors of 16 bytes or more (x86's
// Stream writes a whole register); the caller guarantees alignment.
#if HWY_TARGET <= HWY_AVX2
inline constexpr bool kCanStream = true;
#else
inline constexpr bool kCanStream = false;
#endif
// Below this many output bytes per call the consumer likely still finds the
// output cached (the GGUF kernels' threshold).
inline constexpr std::size_t kStreamMinBytes = std::size_t{8} << 20;

// Whether to stream an output of out_bytes at `out` whose contiguous runs start
// every pitch_bytes (rows, blocks): every run must start on a cache line.
HWY_INLINE bool UseStream(const void* out, std::size_t out_bytes, std::size_t pitch_bytes) {
  return kCanStream && out_bytes >= kStreamMinBytes &&
         reinterpret_cast<std::uintptr_t>(out) % 64 == 0 && pitch_bytes % 64 == 0;
}

// Calls f.template operator()<kStream>(), then orders the non-temporal stores
// before whatever follows (the pipeline hands the output to another thread).
template <class F>
HWY_INLINE void WithStream(bool stream, F&& f) {
  if (kCanStream && stream) {
    f.template operator()<kCanStream>();
    hwy::FlushStream();
  } else {
    f.template operator()<false>();
  }
}

template <bool kStream, class D>
HWY_INLINE void Put(D d, hn::Vec<D> v, hn::TFromD<D>* p) {
  if constexpr (kStream && kCanStream && hn::MaxLanes(D()) * sizeof(hn::TFromD<D>) >= 16) {
    hn::Stream(v, d, p);
  } else {
    hn::StoreU(v, d, p);
  }
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
      const hn::Rebind<std::int16_t, DF> di16;
      Put<kStream>(d16, hn::BitCast(d16, hn::DemoteTo(di16, Bf16Bits<kMayNaN>(df, v))), dst);
    } else {
#if MNEME_QUANT_HAVE_F16C
      const hn::Rebind<hwy::float16_t, DF> dh;
      Put<kStream>(d16, hn::BitCast(d16, hn::DemoteTo(dh, v)), dst);
#else
      Put<kStream>(d16, hn::DemoteTo(d16, F16Bits(df, v)), dst);
#endif
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
