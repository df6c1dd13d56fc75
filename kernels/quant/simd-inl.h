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

#include "hwy/highway.h"
#include "mneme/dtype.hpp"

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

// f32 -> BF16 bits in the low half of u32 lanes: RNE, NaN kept quiet.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> Bf16Bits(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const auto b = hn::BitCast(du, v);
  const auto hi = hn::ShiftRight<16>(b);
  const auto rounded =
      hn::ShiftRight<16>(hn::Add(hn::Add(b, hn::Set(du, 0x7FFFu)), hn::And(hi, hn::Set(du, 1u))));
  const auto abs = hn::BitCast(di, hn::And(b, hn::Set(du, 0x7FFFFFFFu)));
  const auto is_nan = hn::Gt(abs, hn::Set(di, 0x7F800000));
  return hn::BitCast(di, hn::IfThenElse(hn::RebindMask(du, is_nan),
                                        hn::Or(hi, hn::Set(du, 0x40u)), rounded));
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

// Stores Lanes(df) f32 results to out + i (elements of the output type).
template <OutType kOut, class DF>
HWY_INLINE void StoreOut(DF df, hn::Vec<DF> v, void* out, std::size_t i) {
  if constexpr (kOut == OutType::f32) {
    hn::StoreU(v, df, static_cast<float*>(out) + i);
  } else {
    const hn::Rebind<std::uint16_t, DF> d16;
    auto* dst = static_cast<std::uint16_t*>(out) + i;
    if constexpr (kOut == OutType::bf16) {
      hn::StoreU(hn::DemoteTo(d16, Bf16Bits(df, v)), d16, dst);
    } else {
#if MNEME_QUANT_HAVE_F16C
      const hn::Rebind<hwy::float16_t, DF> dh;
      hn::StoreU(hn::BitCast(d16, hn::DemoteTo(dh, v)), d16, dst);
#else
      hn::StoreU(hn::DemoteTo(d16, F16Bits(df, v)), d16, dst);
#endif
    }
  }
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
