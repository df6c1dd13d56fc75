// The SIMD foundation every kernel family shares (design guide, "Kernels"):
// F32 -> BF16 / F16 narrowing and F16 -> F32 widening that give exactly
// kernels/float_bits.hpp's bits on every target, and the one store policy
// (when to use non-temporal stores). Highway 1.0.3's own conversions do not
// give those bits: its f32 -> bf16 DemoteTo truncates, and its non-F16C f16
// paths neither round nor handle Inf/NaN. x86 targets from AVX2 up have F16C,
// whose conversions are the IEEE round-to-nearest-even of the reference.
//
// Include after hwy/highway.h inside a foreach_target loop (per-target guard).
#if defined(MNEME_KERNELS_SIMD_NARROW_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef MNEME_KERNELS_SIMD_NARROW_INL_H_
#undef MNEME_KERNELS_SIMD_NARROW_INL_H_
#else
#define MNEME_KERNELS_SIMD_NARROW_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "kernels/simd/cpu.h"

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#undef MNEME_SIMD_F16C
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
#define MNEME_SIMD_F16C 1
#else
#define MNEME_SIMD_F16C 0
#endif

// ---- BF16 ---------------------------------------------------------------------

// F32 lanes -> u32 lanes whose upper 16 bits are the BF16 code, round to
// nearest even, NaN kept NaN with its quiet bit set (the lower half is
// garbage). kMayNaN = false skips the NaN test where the caller knows every
// NaN lane already reads as its BF16 result after rounding: a quiet NaN whose
// low 16 bits are zero, which is what the kernels' products make unless a
// scale itself is NaN. The NaN test is an integer compare of |bits| with
// Inf's: measured against Highway's IsNaN it keeps every GGUF and quant BF16
// kernel at its speed (IsNaN: MXFP4 -9 %, Q6_K +10 %; perf-experiments S1).
template <bool kMayNaN = true, class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> Bf16InUpperHalf(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const auto b = hn::BitCast(du, v);
  // No carry reaches bit 31 for a non-NaN input (the largest, -Inf, is 0xFF800000).
  const auto rounded =
      hn::Add(hn::Add(b, hn::Set(du, 0x7FFFu)), hn::And(hn::ShiftRight<16>(b), hn::Set(du, 1u)));
  if constexpr (!kMayNaN) {
    (void)df;
    return rounded;
  } else {
    const hn::RebindToSigned<DF> di;
    const auto abs = hn::BitCast(di, hn::And(b, hn::Set(du, 0x7FFFFFFFu)));
    const auto is_nan = hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x7F800000)));
    return hn::IfThenElse(is_nan, hn::Or(b, hn::Set(du, 0x00400000u)), rounded);
  }
}

// The BF16 codes of F32 lanes, sign-extended in i32 lanes (so a signed
// saturating demote or pack keeps them).
template <bool kMayNaN = true, class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> Bf16Code(DF df, hn::Vec<DF> v) {
  return hn::ShiftRight<16>(hn::BitCast(hn::RebindToSigned<DF>(), Bf16InUpperHalf<kMayNaN>(df, v)));
}

// ---- BF16 in one instruction (AVX512_BF16) --------------------------------------

// Where the CPU has AVX512_BF16 (kHasAvx512Bf16), VCVTNE2PS2BF16 and
// VCVTNEPS2BF16 narrow with round to nearest even and the NaN quieting above
// for every F32 input except subnormals, which they read as zero (compared
// over all 2^32 inputs; tests/test_kernels_convert.cpp checks the kernels on
// every subnormal, NaN and Inf). Vectors holding a subnormal, rare in
// decoded weights, take the integer path. Inline assembly: Highway 1.0.3 has
// no target with these instructions, and a target attribute would keep the
// kernels from inlining them. The callers: quant's StoreOut/StoreOut2,
// convert's ToBf16, gguf's StoreOut and StoreBf16EvenOdd.
#undef MNEME_SIMD_NATIVE_BF16
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define MNEME_SIMD_NATIVE_BF16 1

// The lanes of v that are subnormal: |x| - 1 < 2^23 - 1, unsigned.
HWY_INLINE __mmask16 SubnormalLanes(__m512 v) {
  const __m512i abs = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF));
  return _mm512_cmplt_epu32_mask(_mm512_sub_epi32(abs, _mm512_set1_epi32(1)),
                                 _mm512_set1_epi32(0x7FFFFF));
}

// The 32 codes of a then b, for a and b the caller knows hold no subnormal
// lane; false only where the CPU lacks the feature.
HWY_INLINE bool NativeBf16PairNoSubnormal(__m512 a, __m512 b, __m512i& out) {
  if (!kHasAvx512Bf16) return false;
  __asm__("vcvtne2ps2bf16 %1, %2, %0" : "=v"(out) : "v"(a), "v"(b));
  return true;
}

// The 16 codes of v, for a v the caller knows holds no subnormal lane; false
// only where the CPU lacks the feature.
HWY_INLINE bool NativeBf16NoSubnormal(__m512 v, __m256i& out) {
  if (!kHasAvx512Bf16) return false;
  __asm__("vcvtneps2bf16 %1, %0" : "=v"(out) : "v"(v));
  return true;
}

// The 32 BF16 codes of a then b in `out`; false (out untouched) where the
// integer path must narrow them.
HWY_INLINE bool NativeBf16Pair(__m512 a, __m512 b, __m512i& out) {
  return kHasAvx512Bf16 && (SubnormalLanes(a) | SubnormalLanes(b)) == 0 &&
         NativeBf16PairNoSubnormal(a, b, out);
}

// The 16 BF16 codes of v in `out`; false as above.
HWY_INLINE bool NativeBf16(__m512 v, __m256i& out) {
  return kHasAvx512Bf16 && SubnormalLanes(v) == 0 && NativeBf16NoSubnormal(v, out);
}

#else
#define MNEME_SIMD_NATIVE_BF16 0
#endif

// ---- F16 ----------------------------------------------------------------------

// F32 bits -> the F16 code in the low 16 bits of u32 lanes (f16_from_f32):
// IEEE round to nearest even, overflow to Inf, gradual underflow, NaN kept
// quiet. The subnormal range uses one float add under the default rounding
// mode (round to nearest even), which nothing in mneme changes; FTZ/DAZ do not
// matter (see below). An all-integer variable-shift version cost 8 s more to
// compile per kernel family for the same bits.
template <class DU>
HWY_INLINE hn::Vec<DU> F16Code(DU du, hn::Vec<DU> bits) {
  const hn::RebindToSigned<DU> di;
  const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000u));
  const auto abs = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
  const auto iabs = hn::BitCast(di, abs);
  // (Highway 1.0.3 lacks signed >= on SSE4, hence Gt(x, c - 1) for x >= c.)
  // Normal F16: add half an F16 ulp minus one plus the kept lsb, rebias.
  // (Wraps for abs < 0x38000000, where the subnormal branch is selected.)
  const auto lsb = hn::And(hn::ShiftRight<13>(abs), hn::Set(du, 1u));
  const auto normal = hn::ShiftRight<13>(
      hn::Sub(hn::Add(abs, hn::Add(hn::Set(du, 0xFFFu), lsb)), hn::Set(du, 0x38000000u)));
  // Subnormal F16 (below 2^-14): adding 0.5f aligns the F16 subnormal ulp
  // (2^-24) with the F32 ulp, so the FPU's round to nearest even rounds the
  // significand into place; F32 subnormals (flushed or not) give zero.
  const hn::RebindToFloat<DU> df;
  const auto sub = hn::Sub(hn::BitCast(du, hn::Add(hn::BitCast(df, abs), hn::Set(df, 0.5f))),
                           hn::Set(du, 0x3F000000u));
  const auto nan =
      hn::Or(hn::Set(du, 0x7E00u), hn::And(hn::ShiftRight<13>(abs), hn::Set(du, 0x3FFu)));

  auto code =
      hn::IfThenElse(hn::RebindMask(du, hn::Gt(iabs, hn::Set(di, 0x387FFFFF))), normal, sub);
  code = hn::IfThenElse(hn::RebindMask(du, hn::Gt(iabs, hn::Set(di, 0x477FEFFF))),
                        hn::Set(du, 0x7C00u), code);
  code = hn::IfThenElse(hn::RebindMask(du, hn::Gt(iabs, hn::Set(di, 0x7F800000))), nan, code);
  return hn::Or(code, sign);
}

// F32 lanes -> their F16 codes in u16 lanes (F16C where the target has it).
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<std::uint16_t, DF>> F16Codes(DF df, hn::Vec<DF> v) {
  const hn::Rebind<std::uint16_t, DF> d16;
#if MNEME_SIMD_F16C
  (void)df;
  return hn::BitCast(d16, hn::DemoteTo(hn::Rebind<hwy::float16_t, DF>(), v));
#else
  const hn::RebindToUnsigned<DF> du;
  return hn::TruncateTo(d16, F16Code(du, hn::BitCast(du, v)));
#endif
}

// F16 codes (zero-extended in u32 lanes) -> exact F32 bits (f32_from_f16:
// NaN payload kept, quiet bit set).
template <class DU>
HWY_INLINE hn::Vec<DU> F32BitsFromF16(DU du, hn::Vec<DU> h) {
  const hn::RebindToSigned<DU> di;
  const hn::RebindToFloat<DU> df;
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const auto em = hn::And(h, hn::Set(du, 0x7FFFu));
  const auto iem = hn::BitCast(di, em);
  const auto normal = hn::Add(hn::ShiftLeft<13>(em), hn::Set(du, 112u << 23));
  // mant * 2^-24: both factors and the product are exact normal floats, so
  // neither the rounding mode nor FTZ/DAZ can change it. Zero stays zero.
  const auto sub =
      hn::BitCast(du, hn::Mul(hn::ConvertTo(df, iem), hn::Set(df, 1.0f / 16777216.0f)));
  const auto is_nan = hn::RebindMask(du, hn::Gt(iem, hn::Set(di, 0x7C00)));
  const auto special = hn::Or(hn::Or(hn::ShiftLeft<13>(em), hn::Set(du, 0x7F800000u)),
                              hn::IfThenElseZero(is_nan, hn::Set(du, 0x400000u)));
  auto bits = hn::IfThenElse(hn::RebindMask(du, hn::Lt(iem, hn::Set(di, 0x400))), sub, normal);
  bits = hn::IfThenElse(hn::RebindMask(du, hn::Gt(iem, hn::Set(di, 0x7BFF))), special, bits);
  return hn::Or(bits, sign);
}

// F16 codes in u16 lanes -> F32, exact (F16C where the target has it).
template <class DF, class V16>
HWY_INLINE hn::Vec<DF> WidenF16(DF df, V16 h) {
#if MNEME_SIMD_F16C
  return hn::PromoteTo(df, hn::BitCast(hn::Rebind<hwy::float16_t, DF>(), h));
#else
  const hn::RebindToUnsigned<DF> du;
  return hn::BitCast(df, F32BitsFromF16(du, hn::PromoteTo(du, h)));
#endif
}

// ---- the store policy ---------------------------------------------------------

// Non-temporal stores skip the read-for-ownership of every output line, the
// largest cost of a kernel whose output is well beyond the caches. Only on
// AVX2 and wider (x86's Stream writes a whole register of 16 bytes or more),
// only for outputs of at least kStreamMinBytes per call (below that the
// consumer likely still finds the output cached), and only where every
// contiguous run of output starts on a cache line.
#if HWY_TARGET <= HWY_AVX2
inline constexpr bool kCanStream = true;
#else
inline constexpr bool kCanStream = false;
#endif
inline constexpr std::size_t kStreamMinBytes = std::size_t{8} << 20;

// Whether to stream an output of out_bytes at `out` whose contiguous runs
// start every pitch_bytes (rows, blocks).
HWY_INLINE bool UseStream(const void* out, std::size_t out_bytes, std::size_t pitch_bytes) {
  return kCanStream && out_bytes >= kStreamMinBytes &&
         reinterpret_cast<std::uintptr_t>(out) % 64 == 0 && pitch_bytes % 64 == 0;
}

// One vector to p: a non-temporal store when kStream (and the target and the
// vector allow it), else an unaligned store.
template <bool kStream, class D>
HWY_INLINE void Put(D d, hn::Vec<D> v, hn::TFromD<D>* p) {
  if constexpr (kStream && kCanStream && hn::MaxLanes(D()) * sizeof(hn::TFromD<D>) >= 16) {
    hn::Stream(v, d, p);
  } else {
    hn::StoreU(v, d, p);
  }
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

}  // namespace mneme::kernels::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
