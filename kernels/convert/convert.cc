// Highway kernels for kernels/convert, compiled once per target by
// foreach_target.h and chosen at run time by HWY_DYNAMIC_DISPATCH.
//
// Everything narrowing is integer arithmetic on the F32 bit pattern, because
// Highway 1.0.3's own conversions do not give our bits: its f32 -> bf16
// DemoteTo truncates, its non-F16C f16 emulation truncates and mishandles
// Inf/NaN, and its SCALAR/EMU128 f64 -> f32 DemoteTo clamps overflow (and Inf)
// to +-FLT_MAX. Hardware F16C (x86 AVX2 and up) is used for F32 <-> F16: it is
// exactly the IEEE round-to-nearest-even the scalar reference implements.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/convert/convert.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// Must come after foreach_target.h.
#include <hwy/cache_control.h>
#include <hwy/highway.h>
// Must come after highway.h.
#include "kernels/simd/narrow-inl.h"

#include <cstdint>
#include <cstring>

#include "kernels/convert/convert.hpp"

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Narrowing, widening and the store policy: the shared SIMD foundation.
namespace simd = mneme::kernels::simd::HWY_NAMESPACE;

// ---- F64 ---------------------------------------------------------------------

// IEEE F64 -> F32 (round to nearest even, overflow to Inf). Highway's
// SCALAR/EMU128 DemoteTo clamps to +-FLT_MAX instead, so convert lane by lane
// there (static_cast is the IEEE conversion, as in the scalar reference).
template <class D64>
HWY_INLINE hn::Vec<hn::Rebind<float, D64>> DemoteF64(D64 d64, hn::Vec<D64> v) {
  const hn::Rebind<float, D64> df;
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
  constexpr size_t kMax = HWY_MAX_BYTES / sizeof(double);
  HWY_ALIGN double wide[kMax];
  HWY_ALIGN float narrow[kMax];
  hn::Store(v, d64, wide);
  for (size_t i = 0; i < hn::Lanes(d64); ++i) narrow[i] = static_cast<float>(wide[i]);
  return hn::Load(df, narrow);
#else
  return hn::DemoteTo(df, v);
#endif
}

// F64 -> F32 bits rounded to nearest even.
template <class D64>
HWY_INLINE hn::Vec<hn::Rebind<std::uint32_t, D64>> NearestF32Bits(D64 d64, hn::Vec<D64> v) {
  const hn::Rebind<std::uint32_t, D64> du32;
  return hn::BitCast(du32, DemoteF64(d64, v));
}

// F64 -> F32 bits rounded to odd: the truncated F32 with its lsb set when the
// conversion was inexact. Rounding that once more to a format at least two
// bits narrower (BF16: 16 fewer, F16: 13 fewer, at every exponent, subnormals
// included) equals rounding the double directly: the odd lsb is a sticky bit
// that stops a second round-to-nearest from seeing a false tie.
template <class D64>
HWY_INLINE hn::Vec<hn::Rebind<std::uint32_t, D64>> RoundToOddF32Bits(D64 d64, hn::Vec<D64> v) {
  const hn::RebindToUnsigned<D64> du64;
  const hn::Rebind<std::uint32_t, D64> du32;
  const auto f = DemoteF64(d64, v);  // round to nearest even (Inf on overflow)
  const auto back = hn::PromoteTo(d64, f);
  // NaN compares unequal to itself: exclude it so its payload is left alone.
  const auto inexact = hn::And(hn::Ne(back, v), hn::Eq(v, v));
  const auto away = hn::Gt(hn::Abs(back), hn::Abs(v));  // rounded up in magnitude
  auto bits = hn::PromoteTo(du64, hn::BitCast(du32, f));
  const auto one = hn::Set(du64, 1u);
  // Truncate (step back one ulp in magnitude if it rounded away), then set the
  // lsb if inexact. If f overflowed to Inf, this yields FLT_MAX | 1 = FLT_MAX.
  bits = hn::Sub(bits, hn::IfThenElseZero(hn::RebindMask(du64, away), one));
  bits = hn::Or(bits, hn::IfThenElseZero(hn::RebindMask(du64, inexact), one));
  return hn::TruncateTo(du32, bits);
}

// ---- sources: the next Lanes(du) elements as F32 bits in u32 lanes ----------
// Every conversion goes through full vectors of F32 bits ("hub" vectors);
// a block is two of them, so 16-bit outputs are stored as one full vector.

using DU = hn::ScalableTag<std::uint32_t>;

struct FromF32 {
  using T = std::uint32_t;
  static HWY_INLINE hn::Vec<DU> Load(DU du, const T* HWY_RESTRICT p) { return hn::LoadU(du, p); }
};

struct FromBf16 {
  using T = std::uint16_t;
  static HWY_INLINE hn::Vec<DU> Load(DU du, const T* HWY_RESTRICT p) {
    const hn::Rebind<std::uint16_t, DU> du16;
    return hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, p)));
  }
};

struct FromF16 {
  using T = std::uint16_t;
  static HWY_INLINE hn::Vec<DU> Load(DU du, const T* HWY_RESTRICT p) {
    const hn::Rebind<std::uint16_t, DU> du16;
    return hn::BitCast(du, simd::WidenF16(hn::RebindToFloat<DU>(), hn::LoadU(du16, p)));
  }
};

// F64 bits with everything below the lsb of a normal F32 folded into a sticky
// bit at that lsb: truncated, lsb set if anything was cut. For |x| in F32's
// normal range (and Inf/NaN/overflow) its F32 conversion is exact and equals
// x rounded to odd, in 4 integer ops instead of RoundToOddF32Bits' dozen.
// (A NaN whose payload lies only in the cut bits stays NaN thanks to the
// sticky bit.) Below 2^-126 F32 is subnormal, its grid coarser, and the
// conversion rounds again.
template <class D64>
HWY_INLINE hn::Vec<D64> FoldSticky(D64 d64, hn::Vec<D64> v) {
  const hn::RebindToUnsigned<D64> du64;
  const auto bits = hn::BitCast(du64, v);
  const auto low = hn::Set(du64, 0x1FFFFFFFull);
  const auto exact = hn::Eq(hn::And(bits, low), hn::Zero(du64));
  const auto sticky = hn::IfThenZeroElse(exact, hn::Set(du64, 0x20000000ull));
  return hn::BitCast(d64, hn::Or(hn::AndNot(low, bits), sticky));
}

enum class F64Rounding {
  kNearest,    // F32 output
  kOddForF16,  // F16 output: below 2^-126 every value rounds to +-0 anyway
  kOddForBf16  // BF16 output: has subnormals below 2^-126, needs the exact path
};

template <F64Rounding kMode>
struct FromF64 {
  using T = double;
  template <class D64>
  static HWY_INLINE hn::Vec<hn::Rebind<std::uint32_t, D64>> Half(D64 d64, const T* HWY_RESTRICT p) {
    const auto v = hn::LoadU(d64, p);
    if constexpr (kMode == F64Rounding::kOddForBf16) {
      // Rare in weights: nonzero |x| < 2^-126 anywhere in the vector.
      const auto a = hn::Abs(v);
      const auto tiny = hn::And(hn::Gt(a, hn::Zero(d64)), hn::Lt(a, hn::Set(d64, 0x1p-126)));
      if (HWY_UNLIKELY(!hn::AllFalse(d64, tiny))) return RoundToOddF32Bits(d64, v);
    }
    if constexpr (kMode == F64Rounding::kNearest) {
      return NearestF32Bits(d64, v);
    } else {
      return NearestF32Bits(d64, FoldSticky(d64, v));
    }
  }
  static HWY_INLINE hn::Vec<DU> Load(DU du, const T* HWY_RESTRICT p) {
#if HWY_TARGET == HWY_SCALAR
    return Half(hn::Rebind<double, DU>(), p);  // one lane: nothing to combine
#else
    const hn::Repartition<double, DU> d64;  // Lanes(du) / 2 doubles
    const auto lo = Half(d64, p);
    const auto hi = Half(d64, p + hn::Lanes(d64));
    return hn::Combine(du, hi, lo);
#endif
  }
};

// ---- sinks: two hub vectors -> 2 * Lanes(du) outputs --------------------------

// (When streaming, p is vector-aligned: see Run.)
template <bool kStream, class D, class T>
HWY_INLINE void StoreVec(hn::Vec<D> v, D d, T* HWY_RESTRICT p) {
  simd::Put<kStream>(d, v, p);
}

// F32 bits (u32 lanes) -> u32 lanes whose upper halves are the BF16 codes.
HWY_INLINE hn::Vec<DU> Bf16InUpperHalf(DU du, hn::Vec<DU> bits) {
  const hn::RebindToFloat<DU> df;
  return simd::Bf16InUpperHalf(df, hn::BitCast(df, bits));
}

struct ToF32 {
  using T = std::uint32_t;
  template <bool kStream>
  static HWY_INLINE void Store2(DU du, hn::Vec<DU> a, hn::Vec<DU> b, T* HWY_RESTRICT p) {
    StoreVec<kStream>(a, du, p);
    StoreVec<kStream>(b, du, p + hn::Lanes(du));
  }
};

// Two half vectors of 16-bit codes -> one full vector (or two lanes on SCALAR).
template <bool kStream>
HWY_INLINE void StoreHalves(hn::Vec<hn::Rebind<std::uint16_t, DU>> a,
                            hn::Vec<hn::Rebind<std::uint16_t, DU>> b,
                            std::uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<std::uint16_t, DU> du16h;
#if HWY_TARGET == HWY_SCALAR
  StoreVec<kStream>(a, du16h, p);
  StoreVec<kStream>(b, du16h, p + 1);
#else
  const hn::Repartition<std::uint16_t, DU> du16;
  StoreVec<kStream>(hn::Combine(du16, b, a), du16, p);
#endif
}

struct ToBf16 {
  using T = std::uint16_t;
  template <bool kStream>
  static HWY_INLINE void Store2(DU du, hn::Vec<DU> a, hn::Vec<DU> b, T* HWY_RESTRICT p) {
#if HWY_TARGET == HWY_SCALAR
    const hn::Rebind<std::uint16_t, DU> du16h;
    StoreHalves<kStream>(hn::TruncateTo(du16h, hn::ShiftRight<16>(Bf16InUpperHalf(du, a))),
                         hn::TruncateTo(du16h, hn::ShiftRight<16>(Bf16InUpperHalf(du, b))), p);
#else
    const hn::Repartition<std::uint16_t, DU> du16;
#if MNEME_SIMD_NATIVE_BF16
    if constexpr (hn::MaxLanes(DU()) == 16) {
      __m512i native;
      if (simd::NativeBf16Pair(_mm512_castsi512_ps(a.raw), _mm512_castsi512_ps(b.raw), native)) {
        StoreVec<kStream>(hn::Vec<decltype(du16)>{native}, du16, p);
        return;
      }
    }
#endif
    // The odd (upper) 16-bit halves of a then b, in order.
    const auto codes = hn::ConcatOdd(du16, hn::BitCast(du16, Bf16InUpperHalf(du, b)),
                                     hn::BitCast(du16, Bf16InUpperHalf(du, a)));
    StoreVec<kStream>(codes, du16, p);
#endif
  }
};

struct ToF16 {
  using T = std::uint16_t;
  template <bool kStream>
  static HWY_INLINE void Store2(DU du, hn::Vec<DU> a, hn::Vec<DU> b, T* HWY_RESTRICT p) {
    const hn::RebindToFloat<DU> df;
    StoreHalves<kStream>(simd::F16Codes(df, hn::BitCast(df, a)),
                         simd::F16Codes(df, hn::BitCast(df, b)), p);
  }
};

// ---- the driver ----------------------------------------------------------------

template <class Src, class Dst, bool kStream>
HWY_INLINE void Block(DU du, const typename Src::T* HWY_RESTRICT in,
                      typename Dst::T* HWY_RESTRICT out) {
  const size_t N = hn::Lanes(du);
  Dst::template Store2<kStream>(du, Src::Load(du, in), Src::Load(du, in + N), out);
}

// Fewer than a block: through a zero-padded block on the stack, so no load or
// store touches a byte outside [in, in + n) / [out, out + n).
template <class Src, class Dst>
HWY_NOINLINE void Partial(DU du, const typename Src::T* HWY_RESTRICT in,
                          typename Dst::T* HWY_RESTRICT out, size_t n) {
  constexpr size_t kMaxBlock = 2 * HWY_MAX_BYTES / sizeof(std::uint32_t);
  HWY_ALIGN typename Src::T block_in[kMaxBlock] = {};
  HWY_ALIGN typename Dst::T block_out[kMaxBlock];
  std::memcpy(block_in, in, n * sizeof(typename Src::T));
  Block<Src, Dst, false>(du, block_in, block_out);
  std::memcpy(out, block_out, n * sizeof(typename Dst::T));
}

// Software prefetch distance on the input. On a Xeon (AVX3, 64 MiB outputs,
// bench_kernels_convert, same-run medians of 5) prefetching 2 KiB ahead beat
// none by 4..16 % on every kernel tried, and 4 KiB beat 2 KiB by 1..17 %
// (most for the F64 sources): one core's reads are bound by the misses it
// keeps in flight, not by arithmetic.
constexpr size_t kPrefetchBytes = 4096;

template <class Src, class Dst, bool kStream>
HWY_INLINE size_t Blocks(DU du, const typename Src::T* HWY_RESTRICT src,
                         typename Dst::T* HWY_RESTRICT dst, size_t i, size_t n) {
  const size_t kBlock = 2 * hn::Lanes(du);
  const size_t ahead = kPrefetchBytes / sizeof(typename Src::T);
  for (; i + kBlock <= n; i += kBlock) {
    if (i + ahead < n) hwy::Prefetch(src + i + ahead);
    Block<Src, Dst, kStream>(du, src + i, dst + i);
  }
  return i;
}

template <class Src, class Dst>
HWY_INLINE void Run(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  using TOut = typename Dst::T;
  const DU du;
  const auto* src = static_cast<const typename Src::T*>(in);
  auto* dst = static_cast<TOut*>(out);
  size_t i = 0;
  const auto addr = reinterpret_cast<std::uintptr_t>(dst);
  // Large outputs bypass the cache (simd::kStreamMinBytes): they cannot stay
  // cached anyway, and skipping the read-for-ownership of every destination
  // line is what lets a conversion approach memcpy's bandwidth.
  if (simd::kCanStream && n >= simd::kStreamMinBytes / sizeof(TOut) && addr % sizeof(TOut) == 0) {
    // Align the destination to whole vectors first (fewer than a block).
    const size_t vec_bytes = hn::Lanes(du) * sizeof(std::uint32_t);
    const size_t head = ((vec_bytes - addr % vec_bytes) % vec_bytes) / sizeof(TOut);
    if (head != 0) Partial<Src, Dst>(du, src, dst, head);
    i = Blocks<Src, Dst, true>(du, src, dst, head, n);
    hwy::FlushStream();  // order the streamed stores before whatever follows
  }
  i = Blocks<Src, Dst, false>(du, src, dst, i, n);
  if (i < n) Partial<Src, Dst>(du, src + i, dst + i, n - i);
}

// One exported kernel per pair, in every target namespace.
void F32ToBf16Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromF32, ToBf16>(in, out, n);
}
void F32ToF16Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromF32, ToF16>(in, out, n);
}
void F16ToF32Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromF16, ToF32>(in, out, n);
}
void Bf16ToF32Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromBf16, ToF32>(in, out, n);
}
void F16ToBf16Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromF16, ToBf16>(in, out, n);
}
void Bf16ToF16Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromBf16, ToF16>(in, out, n);
}
void F64ToF32Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromF64<F64Rounding::kNearest>, ToF32>(in, out, n);
}
void F64ToBf16Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromF64<F64Rounding::kOddForBf16>, ToBf16>(in, out, n);
}
void F64ToF16Kernel(const void* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  Run<FromF64<F64Rounding::kOddForF16>, ToF16>(in, out, n);
}

}  // namespace mneme::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mneme::kernels {
namespace {

HWY_EXPORT(F32ToBf16Kernel);
HWY_EXPORT(F32ToF16Kernel);
HWY_EXPORT(F16ToF32Kernel);
HWY_EXPORT(Bf16ToF32Kernel);
HWY_EXPORT(F16ToBf16Kernel);
HWY_EXPORT(Bf16ToF16Kernel);
HWY_EXPORT(F64ToF32Kernel);
HWY_EXPORT(F64ToBf16Kernel);
HWY_EXPORT(F64ToF16Kernel);

// Dispatch on every call rather than once in convert_fn, so the choice follows
// hwy::SetSupportedTargetsForTest (tests) and costs one table lookup per block.
#define MNEME_CONVERT_DISPATCH(Kernel) \
  [](const void* in, void* out, std::size_t n) { HWY_DYNAMIC_DISPATCH(Kernel)(in, out, n); }

template <std::size_t kBytes>
void copy(const void* in, void* out, std::size_t n) {
  if (n != 0) std::memcpy(out, in, n * kBytes);
}

}  // namespace

ConvertFn convert_fn(DType from, OutType to) noexcept {
  // Indexed by OutType: f32, f16, bf16.
  static constexpr ConvertFn kFromF64[] = {MNEME_CONVERT_DISPATCH(F64ToF32Kernel),
                                           MNEME_CONVERT_DISPATCH(F64ToF16Kernel),
                                           MNEME_CONVERT_DISPATCH(F64ToBf16Kernel)};
  static constexpr ConvertFn kFromF32[] = {copy<4>, MNEME_CONVERT_DISPATCH(F32ToF16Kernel),
                                           MNEME_CONVERT_DISPATCH(F32ToBf16Kernel)};
  static constexpr ConvertFn kFromF16[] = {MNEME_CONVERT_DISPATCH(F16ToF32Kernel), copy<2>,
                                           MNEME_CONVERT_DISPATCH(F16ToBf16Kernel)};
  static constexpr ConvertFn kFromBf16[] = {MNEME_CONVERT_DISPATCH(Bf16ToF32Kernel),
                                            MNEME_CONVERT_DISPATCH(Bf16ToF16Kernel), copy<2>};
  const auto out = static_cast<std::size_t>(to);
  if (out >= 3) return nullptr;
  switch (from) {
    case DType::f64:
      return kFromF64[out];
    case DType::f32:
      return kFromF32[out];
    case DType::f16:
      return kFromF16[out];
    case DType::bf16:
      return kFromBf16[out];
    default:
      return nullptr;
  }
}

#undef MNEME_CONVERT_DISPATCH

}  // namespace mneme::kernels
#endif  // HWY_ONCE
