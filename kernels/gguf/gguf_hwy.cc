// Highway kernels for the GGUF block types, compiled once per target by
// foreach_target.h and called through HWY_DYNAMIC_DISPATCH.
//
// Every kernel reproduces the scalar reference (gguf_scalar.cpp) bit for bit:
// quants are unpacked with byte operations into 16-lane int8 vectors, widened
// to f32, and scaled with the reference's own multiplies and adds in the same
// order (never MulAdd: that is an FMA). The IQ2/IQ3 grid types gather their
// signed grid bytes with scalar table lookups, then scale and narrow with SIMD;
// IQ1_S, IQ1_M and TQ1_0 reuse the scalar block decoder and only narrow with
// SIMD. Outputs far beyond the caches are written with non-temporal stores.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gguf/gguf_hwy.cc"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Must come after highway.h.
#include "kernels/simd/narrow-inl.h"

#include <array>
#include <cstring>
#include <string>

#include "kernels/float_bits.hpp"
#include "kernels/gguf/gguf_blocks.hpp"
#include "kernels/gguf/gguf_kernels.hpp"
#include "kernels/gguf/gguf_scalar.hpp"
#include "kernels/gguf/gguf_tables.hpp"
#include "mneme/error.hpp"

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::gguf::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
// One-lane vectors gain nothing here (and lack the 16-byte operations used
// below): this target runs the reference.
void DequantizeImpl(GgmlType t, const std::byte* blocks, std::size_t n_blocks, OutType out,
                    void* dst) {
  scalar::dequantize(t, blocks, n_blocks, out, dst);
}
#else

// f32 vectors of at most 16 lanes, so that one 16-byte vector of quants always
// covers a whole number of them (N is 4, 8 or 16 on every target we build).
using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using DU16 = hn::Rebind<std::uint16_t, DF>;
using D8 = hn::Full128<std::uint8_t>;
using DI8 = hn::Full128<std::int8_t>;
using VF = hn::Vec<DF>;
using V8 = hn::Vec<D8>;
using VI8 = hn::Vec<DI8>;

namespace simd = mneme::kernels::simd::HWY_NAMESPACE;

// ---- narrowing (kernels/simd: exactly float_bits.hpp's rules) ----

template <bool kMayNaN>
HWY_INLINE hn::Vec<DU16> Bf16Bits(VF v) {
#if MNEME_SIMD_NATIVE_BF16
  // One vector: only where the integer path would test for NaN too (without
  // that test it is as short as the instruction plus its subnormal check).
  if constexpr (kMayNaN && hn::MaxLanes(DF()) == 16) {
    __m256i codes;
    if (simd::NativeBf16(v.raw, codes)) return hn::Vec<DU16>{codes};
  }
#endif
  // A logical shift: the codes stay non-negative for the saturating demote.
  return hn::DemoteTo(
      DU16(), hn::BitCast(DI(), hn::ShiftRight<16>(simd::Bf16InUpperHalf<kMayNaN>(DF(), v))));
}

HWY_INLINE hn::Vec<DU16> F16Bits(VF v) {
  return simd::F16Codes(DF(), v);
}

// Where and how outputs are written: the output type, and whether to use
// non-temporal stores (for outputs much larger than the caches, where they
// save the read-for-ownership of every written line; dst is then aligned).
//
// kFiniteIsNormal: the block type's scales and mins are F16 values (all
// multiples of 2^-24) times integers or factors of at least 1/8, and its
// quants are integers, so every product, sum and difference is a multiple of
// 2^-27 (rounding cannot leave that grid: a float below 2^-4 with fewer than
// 24 significant bits above 2^-27 is exact): zero or normal, never
// subnormal. With finite scales BF16 narrowing may then be the bare
// AVX512_BF16 instruction. Not MXFP4 (an E8M0 scale reaches 2^-128) nor Q8_K
// (an F32 scale).
template <OutType kOutType, bool kStreamStores, bool kFiniteIsNormalType = false>
struct Sink {
  static constexpr OutType kOut = kOutType;
  static constexpr bool kStream = kStreamStores;
  static constexpr bool kFiniteIsNormal = kFiniteIsNormalType;
};
template <class S, GgmlType kType>
using SinkFor = Sink<S::kOut, S::kStream, kType != GgmlType::MXFP4 && kType != GgmlType::Q8_K>;

template <class S, class D, class T>
HWY_INLINE void Put(hn::Vec<D> v, D d, T* p) {
  simd::Put<S::kStream>(d, v, p);
}

// Writes the Lanes(DF) values of v as outputs idx.. of dst. kNormal: no lane
// of v is subnormal (nor NaN), so BF16 narrowing may be the bare instruction.
template <class S, bool kMayNaN = true, bool kNormal = false>
HWY_INLINE void StoreOut(VF v, std::uint8_t* dst, std::size_t idx) {
#if MNEME_SIMD_NATIVE_BF16
  if constexpr (kNormal && S::kOut == OutType::bf16 && hn::MaxLanes(DF()) == 16) {
    __m256i codes;
    if (simd::NativeBf16NoSubnormal(v.raw, codes)) {
      Put<S>(hn::Vec<DU16>{codes}, DU16(), reinterpret_cast<std::uint16_t*>(dst) + idx);
      return;
    }
  }
#endif
  if constexpr (S::kOut == OutType::f32) {
    Put<S>(v, DF(), reinterpret_cast<float*>(dst) + idx);
  } else if constexpr (S::kOut == OutType::bf16) {
    Put<S>(Bf16Bits<kMayNaN>(v), DU16(), reinterpret_cast<std::uint16_t*>(dst) + idx);
  } else {
    Put<S>(F16Bits(v), DU16(), reinterpret_cast<std::uint16_t*>(dst) + idx);
  }
}

// Writes 2 * Lanes(DF) BF16 outputs from the even-indexed elements (ev) and
// the odd-indexed ones (od): one blend puts each odd element's upper half next
// to its even neighbour, with no pack or cross-lane permute.
template <class S, bool kMayNaN>
HWY_INLINE void StoreBf16EvenOdd(VF ev, VF od, std::uint8_t* dst, std::size_t idx) {
  const hn::Repartition<std::uint16_t, DF> d16;
#if MNEME_SIMD_NATIVE_BF16
  if constexpr (hn::MaxLanes(DF()) == 16) {
    __m512i codes;  // ev's 16 codes, then od's: interleave them
    if (simd::NativeBf16Pair(ev.raw, od.raw, codes)) {
      alignas(64) static constexpr std::uint16_t kInterleave[32] = {
          0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
          8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
      const __m512i idx_v = _mm512_load_si512(kInterleave);
      Put<S>(hn::Vec<decltype(d16)>{_mm512_permutexvar_epi16(idx_v, codes)}, d16,
             reinterpret_cast<std::uint16_t*>(dst) + idx);
      return;
    }
  }
#endif
  const auto lo = hn::BitCast(d16, hn::ShiftRight<16>(simd::Bf16InUpperHalf<kMayNaN>(DF(), ev)));
  const auto hi = hn::BitCast(d16, simd::Bf16InUpperHalf<kMayNaN>(DF(), od));
  Put<S>(hn::OddEven(hi, lo), d16, reinterpret_cast<std::uint16_t*>(dst) + idx);
}

// ---- scales ----

HWY_INLINE float HalfToF32(const std::uint8_t* p) {
#if MNEME_SIMD_F16C
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p))));
#else
  return f32_from_f16(load_u16(p));
#endif
}

HWY_INLINE bool Finite(float x) {
  return (f32_bits(x) & 0x7F800000u) != 0x7F800000u;
}

// ---- 16 int8 quants -> 16 outputs ----

// Widens the 16 int8 lanes of q to f32, applies op to each f32 vector and
// stores the results as outputs idx..idx+15. With finite scales (op.finite)
// no output can be NaN, so BF16 narrowing skips its NaN test.
template <class S, bool kMayNaN, class Op, class D, bool kNormal = false>
HWY_INLINE void Emit16Impl(D df, VI8 q, const Op& op, std::uint8_t* dst, std::size_t idx) {
  const hn::RebindToSigned<D> di;
  constexpr std::size_t N = hn::MaxLanes(df);
  if constexpr (S::kOut == OutType::bf16 && N <= 8) {
    // Split into even and odd elements as sign-extended i16 lanes.
    const hn::Full128<std::int16_t> d16;
    const auto v16 = hn::BitCast(d16, q);
    const auto ev = hn::ShiftRight<8>(hn::ShiftLeft<8>(v16));
    const auto od = hn::ShiftRight<8>(v16);
    if constexpr (N == 8) {
      StoreBf16EvenOdd<S, kMayNaN>(op(hn::ConvertTo(df, hn::PromoteTo(di, ev))),
                                   op(hn::ConvertTo(df, hn::PromoteTo(di, od))), dst, idx);
    } else {
      const hn::Half<decltype(d16)> dh;
      StoreBf16EvenOdd<S, kMayNaN>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::LowerHalf(dh, ev)))),
                                   op(hn::ConvertTo(df, hn::PromoteTo(di, hn::LowerHalf(dh, od)))),
                                   dst, idx);
      StoreBf16EvenOdd<S, kMayNaN>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::UpperHalf(dh, ev)))),
                                   op(hn::ConvertTo(df, hn::PromoteTo(di, hn::UpperHalf(dh, od)))),
                                   dst, idx + 8);
    }
  } else if constexpr (N == 16) {
    StoreOut<S, kMayNaN, kNormal>(op(hn::ConvertTo(df, hn::PromoteTo(di, q))), dst, idx);
  } else if constexpr (N == 8) {
    const hn::Half<DI8> dh;
    StoreOut<S, kMayNaN>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::LowerHalf(dh, q)))), dst, idx);
    StoreOut<S, kMayNaN>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::UpperHalf(dh, q)))), dst,
                         idx + 8);
  } else {
    static_assert(N == 4, "DF has 4, 8 or 16 lanes");
    const hn::Half<DI8> dh;
    const hn::Half<decltype(dh)> dq;
    const auto lo = hn::LowerHalf(dh, q);
    const auto hi = hn::UpperHalf(dh, q);
    StoreOut<S>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::LowerHalf(dq, lo)))), dst, idx);
    StoreOut<S>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::UpperHalf(dq, lo)))), dst, idx + 4);
    StoreOut<S>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::LowerHalf(dq, hi)))), dst, idx + 8);
    StoreOut<S>(op(hn::ConvertTo(df, hn::PromoteTo(di, hn::UpperHalf(dq, hi)))), dst, idx + 12);
  }
}

template <class S, class Op>
HWY_INLINE void Emit16(VI8 q, const Op& op, std::uint8_t* dst, std::size_t idx) {
  if (op.finite) {
    Emit16Impl<S, false, Op, DF, S::kFiniteIsNormal>(DF(), q, op, dst, idx);
  } else {
    Emit16Impl<S, true>(DF(), q, op, dst, idx);
  }
}

// y = q * d
struct Scale {
  VF d;
  bool finite;
  HWY_INLINE VF operator()(VF q) const { return hn::Mul(q, d); }
};
// y = q * d + m  (Q4_1, Q5_1: the product is rounded before the add)
struct ScaleAdd {
  VF d, m;
  bool finite;
  HWY_INLINE VF operator()(VF q) const { return hn::Add(hn::Mul(q, d), m); }
};
// y = d * q - m  (K-quants with mins)
struct ScaleSub {
  VF d, m;
  bool finite;
  HWY_INLINE VF operator()(VF q) const { return hn::Sub(hn::Mul(d, q), m); }
};

// A finite scale times a finite quant is finite or infinite, never NaN; adding
// a finite min to that keeps it so.
HWY_INLINE Scale MakeScale(float d) {
  return Scale{hn::Set(DF(), d), Finite(d)};
}
HWY_INLINE ScaleAdd MakeScaleAdd(float d, float m) {
  return ScaleAdd{hn::Set(DF(), d), hn::Set(DF(), m), Finite(d) && Finite(m)};
}
HWY_INLINE ScaleSub MakeScaleSub(float d, float m) {
  return ScaleSub{hn::Set(DF(), d), hn::Set(DF(), m), Finite(d) && Finite(m)};
}

HWY_INLINE V8 Load16(const std::uint8_t* p) {
  return hn::LoadU(D8(), p);
}
HWY_INLINE VI8 AsI8(V8 v) {
  return hn::BitCast(DI8(), v);
}
HWY_INLINE V8 LowNibbles(V8 v) {
  return hn::And(v, hn::Set(D8(), 0x0F));
}
HWY_INLINE V8 HighNibbles(V8 v) {
  return hn::ShiftRight<4>(v);
}

// Bits first..first+15 of the little-endian qh at p, each as 0x10 or 0 in a
// byte (Q5_0 / Q5_1's fifth bit of those elements; first is 0 or 16). On
// AVX-512 a mask register load and one zeroing move.
HWY_INLINE V8 FifthBits(const std::uint8_t* qh, int first) {
  const D8 d8;
  return hn::IfThenElseZero(hn::LoadMaskBits(d8, qh + first / 8), hn::Set(d8, 0x10));
}

// ---- per-type kernels: one block at p, outputs from element idx ----

template <class S>
HWY_INLINE void BlockQ4_0(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScale(HalfToF32(p));
  const auto qs = Load16(p + 2);
  const auto k8 = hn::Set(DI8(), 8);
  Emit16<S>(hn::Sub(AsI8(LowNibbles(qs)), k8), s, dst, idx);
  Emit16<S>(hn::Sub(AsI8(HighNibbles(qs)), k8), s, dst, idx + 16);
}

template <class S>
HWY_INLINE void BlockQ4_1(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScaleAdd(HalfToF32(p), HalfToF32(p + 2));
  const auto qs = Load16(p + 4);
  Emit16<S>(AsI8(LowNibbles(qs)), s, dst, idx);
  Emit16<S>(AsI8(HighNibbles(qs)), s, dst, idx + 16);
}

template <class S>
HWY_INLINE void BlockQ5_0(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScale(HalfToF32(p));
  const std::uint8_t* qh = p + 2;
  const auto qs = Load16(p + 6);
  const auto k16 = hn::Set(DI8(), 16);
  Emit16<S>(hn::Sub(AsI8(hn::Or(LowNibbles(qs), FifthBits(qh, 0))), k16), s, dst, idx);
  Emit16<S>(hn::Sub(AsI8(hn::Or(HighNibbles(qs), FifthBits(qh, 16))), k16), s, dst, idx + 16);
}

template <class S>
HWY_INLINE void BlockQ5_1(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScaleAdd(HalfToF32(p), HalfToF32(p + 2));
  const std::uint8_t* qh = p + 4;
  const auto qs = Load16(p + 8);
  Emit16<S>(AsI8(hn::Or(LowNibbles(qs), FifthBits(qh, 0))), s, dst, idx);
  Emit16<S>(AsI8(hn::Or(HighNibbles(qs), FifthBits(qh, 16))), s, dst, idx + 16);
}

template <class S, std::size_t kQsOffset>
HWY_INLINE void BlockQ8(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScale(HalfToF32(p));
  Emit16<S>(AsI8(Load16(p + kQsOffset)), s, dst, idx);
  Emit16<S>(AsI8(Load16(p + kQsOffset + 16)), s, dst, idx + 16);
}

template <class S>
HWY_INLINE void BlockIQ4_NL(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScale(HalfToF32(p));
  const auto table = hn::LoadU(DI8(), detail::kValuesIq4nl);
  const auto qs = Load16(p + 2);
  Emit16<S>(hn::TableLookupBytes(table, AsI8(LowNibbles(qs))), s, dst, idx);
  Emit16<S>(hn::TableLookupBytes(table, AsI8(HighNibbles(qs))), s, dst, idx + 16);
}

template <class S>
HWY_INLINE void BlockMXFP4(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScale(f32_from_bits(detail::e8m0_half_bits(p[0])));
  const auto table = hn::LoadU(DI8(), detail::kValuesMxfp4);
  const auto qs = Load16(p + 1);
  Emit16<S>(hn::TableLookupBytes(table, AsI8(LowNibbles(qs))), s, dst, idx);
  Emit16<S>(hn::TableLookupBytes(table, AsI8(HighNibbles(qs))), s, dst, idx + 16);
}

template <class S>
HWY_INLINE void BlockIQ4_XS(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const float d = HalfToF32(p);
  const std::uint16_t scales_h = load_u16(p + 2);
  const std::uint8_t* scales_l = p + 4;
  const std::uint8_t* qs = p + 8;
  const auto table = hn::LoadU(DI8(), detail::kValuesIq4nl);
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((scales_h >> 2 * ib) & 3) << 4);
    const auto s = MakeScale(d * static_cast<float>(ls - 32));
    const auto q = Load16(qs + 16 * ib);
    Emit16<S>(hn::TableLookupBytes(table, AsI8(LowNibbles(q))), s, dst, idx + 32 * ib);
    Emit16<S>(hn::TableLookupBytes(table, AsI8(HighNibbles(q))), s, dst, idx + 32 * ib + 16);
  }
}

template <class S>
HWY_INLINE void BlockQ2_K(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const std::uint8_t* scales = p;
  const std::uint8_t* q = p + 16;
  const float d = HalfToF32(p + 80);
  const float min = HalfToF32(p + 82);
  const auto k3 = hn::Set(D8(), 3);
  int is = 0;
  for (int n = 0; n < 2; ++n) {
    const auto qa = Load16(q + 32 * n);
    const auto qb = Load16(q + 32 * n + 16);
    for (int j = 0; j < 4; ++j) {
      const int shift = 2 * j;
      const auto sa = hn::ShiftRightSame(qa, shift);
      const auto sb = hn::ShiftRightSame(qb, shift);
      std::uint8_t sc = scales[is++];
      auto s = MakeScaleSub(d * static_cast<float>(sc & 0xF), min * static_cast<float>(sc >> 4));
      Emit16<S>(AsI8(hn::And(sa, k3)), s, dst, idx);
      sc = scales[is++];
      s = MakeScaleSub(d * static_cast<float>(sc & 0xF), min * static_cast<float>(sc >> 4));
      Emit16<S>(AsI8(hn::And(sb, k3)), s, dst, idx + 16);
      idx += 32;
    }
  }
}

template <class S>
HWY_INLINE void BlockQ3_K(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const std::uint8_t* hmask = p;
  const std::uint8_t* q = p + 32;
  const float d_all = HalfToF32(p + 108);
  int scales[16];
  {
    // Same unpacking as the reference (kmask1/kmask2 over little-endian words).
    constexpr std::uint32_t kmask1 = 0x03030303u;
    constexpr std::uint32_t kmask2 = 0x0f0f0f0fu;
    const std::uint8_t* s = p + 96;
    std::uint32_t aux[4] = {load_u32(s), load_u32(s + 4), load_u32(s + 8), 0};
    const std::uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    for (int i = 0; i < 16; ++i) {
      const auto byte = static_cast<std::uint8_t>(aux[i / 4] >> (8 * (i % 4)));
      scales[i] = static_cast<int>(static_cast<std::int8_t>(byte)) - 32;
    }
  }
  const D8 d8;
  const auto k3 = hn::Set(d8, 3);
  const auto k4 = hn::Set(d8, 4);
  const auto hm_a = Load16(hmask);
  const auto hm_b = Load16(hmask + 16);
  int is = 0;
  for (int n = 0; n < 2; ++n) {
    const auto qa = Load16(q + 32 * n);
    const auto qb = Load16(q + 32 * n + 16);
    for (int j = 0; j < 4; ++j) {
      const int shift = 2 * j;
      const auto m = hn::Set(d8, static_cast<std::uint8_t>(1u << (4 * n + j)));
      // (q >> shift) & 3, minus 4 where the hmask bit is clear.
      const auto sub_a = hn::IfThenZeroElse(hn::TestBit(hm_a, m), k4);
      const auto sub_b = hn::IfThenZeroElse(hn::TestBit(hm_b, m), k4);
      const auto va = hn::Sub(AsI8(hn::And(hn::ShiftRightSame(qa, shift), k3)), AsI8(sub_a));
      const auto vb = hn::Sub(AsI8(hn::And(hn::ShiftRightSame(qb, shift), k3)), AsI8(sub_b));
      Emit16<S>(va, MakeScale(d_all * static_cast<float>(scales[is++])), dst, idx);
      Emit16<S>(vb, MakeScale(d_all * static_cast<float>(scales[is++])), dst, idx + 16);
      idx += 32;
    }
  }
}

template <class S>
HWY_INLINE void BlockQ4_K(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const float d = HalfToF32(p);
  const float min = HalfToF32(p + 2);
  const std::uint8_t* scales = p + 4;
  const std::uint8_t* q = p + 16;
  std::uint8_t sc, m;
  for (int is = 0; is < 8; is += 2) {
    detail::scale_min_k4(is + 0, scales, &sc, &m);
    const auto s1 = MakeScaleSub(d * static_cast<float>(sc), min * static_cast<float>(m));
    detail::scale_min_k4(is + 1, scales, &sc, &m);
    const auto s2 = MakeScaleSub(d * static_cast<float>(sc), min * static_cast<float>(m));
    const auto qa = Load16(q);
    const auto qb = Load16(q + 16);
    Emit16<S>(AsI8(LowNibbles(qa)), s1, dst, idx);
    Emit16<S>(AsI8(LowNibbles(qb)), s1, dst, idx + 16);
    Emit16<S>(AsI8(HighNibbles(qa)), s2, dst, idx + 32);
    Emit16<S>(AsI8(HighNibbles(qb)), s2, dst, idx + 48);
    q += 32;
    idx += 64;
  }
}

template <class S>
HWY_INLINE void BlockQ5_K(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const D8 d8;
  const float d = HalfToF32(p);
  const float min = HalfToF32(p + 2);
  const std::uint8_t* scales = p + 4;
  const auto qh_a = Load16(p + 16);
  const auto qh_b = Load16(p + 32);
  const std::uint8_t* ql = p + 48;
  const auto k16 = hn::Set(d8, 16);
  std::uint8_t sc, m;
  for (int is = 0; is < 8; is += 2) {
    detail::scale_min_k4(is + 0, scales, &sc, &m);
    const auto s1 = MakeScaleSub(d * static_cast<float>(sc), min * static_cast<float>(m));
    detail::scale_min_k4(is + 1, scales, &sc, &m);
    const auto s2 = MakeScaleSub(d * static_cast<float>(sc), min * static_cast<float>(m));
    const auto u1 = hn::Set(d8, static_cast<std::uint8_t>(1u << is));
    const auto u2 = hn::Set(d8, static_cast<std::uint8_t>(2u << is));
    auto bit = [&](V8 h, V8 u) { return hn::IfThenElseZero(hn::TestBit(h, u), k16); };
    const auto qa = Load16(ql);
    const auto qb = Load16(ql + 16);
    Emit16<S>(AsI8(hn::Add(LowNibbles(qa), bit(qh_a, u1))), s1, dst, idx);
    Emit16<S>(AsI8(hn::Add(LowNibbles(qb), bit(qh_b, u1))), s1, dst, idx + 16);
    Emit16<S>(AsI8(hn::Add(HighNibbles(qa), bit(qh_a, u2))), s2, dst, idx + 32);
    Emit16<S>(AsI8(hn::Add(HighNibbles(qb), bit(qh_b, u2))), s2, dst, idx + 48);
    ql += 32;
    idx += 64;
  }
}

template <class S>
HWY_INLINE void BlockQ6_K(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const D8 d8;
  const float d = HalfToF32(p + 208);
  const std::uint8_t* ql = p;
  const std::uint8_t* qh = p + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(p + 192);
  const auto k3 = hn::Set(d8, 3);
  const auto k32 = hn::Set(DI8(), 32);
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 2; ++c) {
      const auto la = Load16(ql + 16 * c);
      const auto lb = Load16(ql + 32 + 16 * c);
      const auto h = Load16(qh + 16 * c);
      const auto h0 = hn::ShiftLeft<4>(hn::And(h, k3));
      const auto h1 = hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), k3));
      const auto h2 = hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), k3));
      const auto h3 = hn::ShiftLeft<4>(hn::ShiftRight<6>(h));
      const auto q1 = hn::Sub(AsI8(hn::Or(LowNibbles(la), h0)), k32);
      const auto q2 = hn::Sub(AsI8(hn::Or(LowNibbles(lb), h1)), k32);
      const auto q3 = hn::Sub(AsI8(hn::Or(HighNibbles(la), h2)), k32);
      const auto q4 = hn::Sub(AsI8(hn::Or(HighNibbles(lb), h3)), k32);
      const std::size_t o = idx + 16 * c;
      Emit16<S>(q1, MakeScale(d * static_cast<float>(sc[c + 0])), dst, o);
      Emit16<S>(q2, MakeScale(d * static_cast<float>(sc[c + 2])), dst, o + 32);
      Emit16<S>(q3, MakeScale(d * static_cast<float>(sc[c + 4])), dst, o + 64);
      Emit16<S>(q4, MakeScale(d * static_cast<float>(sc[c + 6])), dst, o + 96);
    }
    idx += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

template <class S>
HWY_INLINE void BlockQ8_K(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  // y = d * q with an f32 d.
  const auto s = MakeScale(f32_from_bits(load_u32(p)));
  for (int j = 0; j < 16; ++j) Emit16<S>(AsI8(Load16(p + 4 + 16 * j)), s, dst, idx + 16 * j);
}

template <class S>
HWY_INLINE void BlockTQ2_0(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const auto s = MakeScale(HalfToF32(p + 64));
  const auto k3 = hn::Set(D8(), 3);
  const auto k1 = hn::Set(DI8(), 1);
  for (int j = 0; j < 64; j += 32) {
    const auto qa = Load16(p + j);
    const auto qb = Load16(p + j + 16);
    for (int l = 0; l < 4; ++l) {
      const auto va = hn::Sub(AsI8(hn::And(hn::ShiftRightSame(qa, 2 * l), k3)), k1);
      const auto vb = hn::Sub(AsI8(hn::And(hn::ShiftRightSame(qb, 2 * l), k3)), k1);
      Emit16<S>(va, s, dst, idx);
      Emit16<S>(vb, s, dst, idx + 16);
      idx += 32;
    }
  }
}

// ---- grid types (IQ2_*, IQ3_*): gather signed int8 values, scale with SIMD ----

// kSignBytes[s]: byte j is 0xFF where bit j of s is set.
constexpr auto kSignBytes = [] {
  std::array<std::uint64_t, 256> t{};
  for (unsigned s = 0; s < 256; ++s) {
    for (unsigned j = 0; j < 8; ++j) {
      if (s >> j & 1) t[s] |= std::uint64_t{0xFF} << (8 * j);
    }
  }
  return t;
}();

// Eight grid bytes with the bytes whose sign bit is set negated, as int8. The
// reference computes (db * g) * -1; negating g first gives the same value
// because rounding is symmetric in sign. Grid values are 1..62, so the +1 of
// the two's complement never carries into the next byte.
HWY_INLINE std::uint64_t SignedGrid8(std::uint64_t g, std::uint8_t signs) {
  const std::uint64_t m = kSignBytes[signs];
  return (g ^ m) + (m & 0x0101010101010101ull);
}

template <std::size_t K>
HWY_INLINE std::uint64_t Row8(const std::array<std::uint8_t, K>& row) {
  static_assert(K == 8);
  std::uint64_t v;
  std::memcpy(&v, row.data(), 8);
  return v;
}
HWY_INLINE std::uint64_t Row4x2(const std::array<std::uint8_t, 4>& a,
                                const std::array<std::uint8_t, 4>& b) {
  std::uint32_t lo, hi;
  std::memcpy(&lo, a.data(), 4);
  std::memcpy(&hi, b.data(), 4);
  return lo | (std::uint64_t{hi} << 32);
}

// Emits 32 gathered int8 values (v) with scale db0 for the first 16 and db1
// for the last 16.
template <class S>
HWY_INLINE void Emit32(const std::uint8_t* v, float db0, float db1, std::uint8_t* dst,
                       std::size_t idx) {
  Emit16<S>(AsI8(Load16(v)), MakeScale(db0), dst, idx);
  Emit16<S>(AsI8(Load16(v + 16)), MakeScale(db1), dst, idx + 16);
}

template <class S>
HWY_INLINE void BlockIQ2_XXS(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const float d = HalfToF32(p);
  HWY_ALIGN std::uint8_t v[32];
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const std::uint8_t* aux8 = p + 2 + 8 * ib32;
    const std::uint32_t aux1 = load_u32(aux8 + 4);
    const float db = d * (0.5f + static_cast<float>(aux1 >> 28)) * 0.25f;
    for (int l = 0; l < 4; ++l) {
      const std::uint64_t q = SignedGrid8(Row8(detail::kGridIq2xxs[aux8[l]]),
                                          detail::kSignsIq2xs[(aux1 >> 7 * l) & 127]);
      std::memcpy(v + 8 * l, &q, 8);
    }
    Emit32<S>(v, db, db, dst, idx + 32 * ib32);
  }
}

template <class S>
HWY_INLINE void BlockIQ2_XS(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const float d = HalfToF32(p);
  const std::uint8_t* scales = p + 66;
  HWY_ALIGN std::uint8_t v[32];
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const float db0 = d * (0.5f + static_cast<float>(scales[ib32] & 0xF)) * 0.25f;
    const float db1 = d * (0.5f + static_cast<float>(scales[ib32] >> 4)) * 0.25f;
    for (int l = 0; l < 4; ++l) {
      const std::uint16_t q = load_u16(p + 2 + 2 * (4 * ib32 + l));
      const std::uint64_t g =
          SignedGrid8(Row8(detail::kGridIq2xs[q & 511]), detail::kSignsIq2xs[q >> 9]);
      std::memcpy(v + 8 * l, &g, 8);
    }
    Emit32<S>(v, db0, db1, dst, idx + 32 * ib32);
  }
}

template <class S>
HWY_INLINE void BlockIQ2_S(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const float d = HalfToF32(p);
  const std::uint8_t* qs = p + 2;
  const std::uint8_t* signs = p + 34;
  const std::uint8_t* qh = p + 66;
  const std::uint8_t* scales = p + 74;
  HWY_ALIGN std::uint8_t v[32];
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const float db0 = d * (0.5f + static_cast<float>(scales[ib32] & 0xF)) * 0.25f;
    const float db1 = d * (0.5f + static_cast<float>(scales[ib32] >> 4)) * 0.25f;
    for (int l = 0; l < 4; ++l) {
      const auto& row = detail::kGridIq2s[qs[l] | ((qh[ib32] << (8 - 2 * l)) & 0x300)];
      const std::uint64_t g = SignedGrid8(Row8(row), signs[l]);
      std::memcpy(v + 8 * l, &g, 8);
    }
    Emit32<S>(v, db0, db1, dst, idx + 32 * ib32);
    qs += 4;
    signs += 4;
  }
}

template <class S>
HWY_INLINE void BlockIQ3_XXS(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const float d = HalfToF32(p);
  const std::uint8_t* qs = p + 2;
  const std::uint8_t* scales_and_signs = p + 66;
  HWY_ALIGN std::uint8_t v[32];
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const std::uint32_t aux32 = load_u32(scales_and_signs + 4 * ib32);
    const float db = d * (0.5f + static_cast<float>(aux32 >> 28)) * 0.5f;
    for (int l = 0; l < 4; ++l) {
      const std::uint64_t g =
          SignedGrid8(Row4x2(detail::kGridIq3xxs[qs[2 * l]], detail::kGridIq3xxs[qs[2 * l + 1]]),
                      detail::kSignsIq2xs[(aux32 >> 7 * l) & 127]);
      std::memcpy(v + 8 * l, &g, 8);
    }
    Emit32<S>(v, db, db, dst, idx + 32 * ib32);
    qs += 8;
  }
}

template <class S>
HWY_INLINE void BlockIQ3_S(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  const float d = HalfToF32(p);
  const std::uint8_t* qs = p + 2;
  const std::uint8_t* qh = p + 66;
  const std::uint8_t* signs = p + 74;
  const std::uint8_t* scales = p + 106;
  HWY_ALIGN std::uint8_t v[32];
  for (int ib32 = 0; ib32 < 8; ++ib32) {
    const std::uint8_t sc = scales[ib32 / 2];
    const float db = d * static_cast<float>(1 + 2 * ((ib32 % 2) ? (sc >> 4) : (sc & 0xF)));
    const std::uint8_t h = qh[ib32];
    for (int l = 0; l < 4; ++l) {
      const auto& g1 = detail::kGridIq3s[qs[2 * l + 0] | ((h << (8 - 2 * l)) & 256)];
      const auto& g2 = detail::kGridIq3s[qs[2 * l + 1] | ((h << (7 - 2 * l)) & 256)];
      const std::uint64_t g = SignedGrid8(Row4x2(g1, g2), signs[l]);
      std::memcpy(v + 8 * l, &g, 8);
    }
    Emit32<S>(v, db, db, dst, idx + 32 * ib32);
    qs += 8;
    signs += 4;
  }
}

// Table-bound types: the scalar decoder fills one block, SIMD narrows it.
template <class S>
HWY_INLINE void BlockViaScalar(detail::BlockDecodeFn decode, std::size_t qk, const std::uint8_t* p,
                               std::uint8_t* dst, std::size_t idx) {
  const DF df;
  HWY_ALIGN float y[detail::kMaxBlockElements];
  decode(p, y);
  for (std::size_t i = 0; i < qk; i += hn::Lanes(df)) {
    StoreOut<S>(hn::Load(df, y + i), dst, idx + i);
  }
}

template <class Block>
HWY_INLINE void RunBlocks(const Block& block, const std::uint8_t* in, std::size_t n_blocks,
                          std::size_t bytes, std::size_t qk, std::uint8_t* dst) {
  for (std::size_t b = 0; b < n_blocks; ++b) block(in + b * bytes, dst, b * qk);
}

// Block kernels named after their type, as the dispatch below expects: the
// Q8 pair share one kernel; types without a SIMD kernel decode each block
// with the scalar reference and narrow it with SIMD.
template <class S>
HWY_INLINE void BlockQ8_0(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  BlockQ8<S, 2>(p, dst, idx);
}
template <class S>
HWY_INLINE void BlockQ8_1(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {
  BlockQ8<S, 4>(p, dst, idx);
}
#define MNEME_GGUF_VIA_SCALAR(name)                                                          \
  template <class S>                                                                         \
  HWY_INLINE void Block##name(const std::uint8_t* p, std::uint8_t* dst, std::size_t idx) {   \
    BlockViaScalar<S>(detail::scalar_block_decoder(GgmlType::name),                          \
                      block_info(static_cast<std::uint32_t>(GgmlType::name))->elements, p, \
                      dst, idx);                                                             \
  }
MNEME_GGUF_VIA_SCALAR(IQ1_S)
MNEME_GGUF_VIA_SCALAR(IQ1_M)
MNEME_GGUF_VIA_SCALAR(TQ1_0)
#undef MNEME_GGUF_VIA_SCALAR

template <class S>
void DequantizeOut(GgmlType t, const std::uint8_t* in, std::size_t n, std::uint8_t* dst) {
  const auto info = block_info(static_cast<std::uint32_t>(t));
  const std::size_t bytes = info->bytes;
  const std::size_t qk = info->elements;
  switch (t) {
#define MNEME_GGUF_DISPATCH(name, ...)                                                 \
  case GgmlType::name:                                                                 \
    RunBlocks([](const std::uint8_t* p, std::uint8_t* o,                               \
                 std::size_t i) { Block##name<SinkFor<S, GgmlType::name>>(p, o, i); }, \
              in, n, bytes, qk, dst);                                                  \
    return;
    MNEME_GGUF_BLOCK_TYPES(MNEME_GGUF_DISPATCH)
#undef MNEME_GGUF_DISPATCH
    default:
      break;
  }
}

template <OutType kOut>
void DequantizeTo(GgmlType t, const std::uint8_t* in, std::size_t n_blocks, std::uint8_t* o) {
  const std::size_t out_bytes =
      n_blocks * block_info(static_cast<std::uint32_t>(t))->elements * out_size(kOut);
  // The output is one contiguous run: only its start must be line-aligned.
  simd::WithStream(simd::UseStream(o, out_bytes, 64), [&]<bool kStream>() {
    DequantizeOut<Sink<kOut, kStream> >(t, in, n_blocks, o);
  });
}

void DequantizeImpl(GgmlType t, const std::byte* blocks, std::size_t n_blocks, OutType out,
                    void* dst) {
  const auto* in = reinterpret_cast<const std::uint8_t*>(blocks);
  auto* o = static_cast<std::uint8_t*>(dst);
  switch (out) {
    case OutType::f32:
      return DequantizeTo<OutType::f32>(t, in, n_blocks, o);
    case OutType::bf16:
      return DequantizeTo<OutType::bf16>(t, in, n_blocks, o);
    case OutType::f16:
      return DequantizeTo<OutType::f16>(t, in, n_blocks, o);
  }
}

#endif  // HWY_TARGET == HWY_SCALAR

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace mneme::kernels::gguf::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mneme::kernels::gguf {

HWY_EXPORT(DequantizeImpl);

void dequantize(GgmlType t, const std::byte* blocks, std::size_t n_blocks, OutType out, void* dst) {
  if (!is_quantized(static_cast<std::uint32_t>(t))) {
    fail(ErrorKind::unsupported,
         "gguf: not a block-quantized type: " + std::to_string(static_cast<std::uint32_t>(t)));
  }
  HWY_DYNAMIC_DISPATCH(DequantizeImpl)(t, blocks, n_blocks, out, dst);
}

}  // namespace mneme::kernels::gguf
#endif  // HWY_ONCE
