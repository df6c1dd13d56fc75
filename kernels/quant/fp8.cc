// FP8 (E4M3FN, E5M2) dequantization, Highway kernel.
//
// Both formats widen through IEEE binary16, which F16C converts in hardware:
// E5M2 is the top byte of an F16; E4M3FN's exponent/mantissa bits shifted
// into an F16 (S.0EEEE.MMM0000000) are its value times 2^-8 for normals and
// subnormals alike, so one exact multiply by 256 restores it. The only E4M3FN
// code that lands on 480 is NaN (finite values stop at 448).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant/fp8.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "kernels/quant/element.hpp"
#include "kernels/quant/plan.hpp"
#include "kernels/quant/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::quant::HWY_NAMESPACE {
namespace {

// Decodes n consecutive FP8 bytes sharing one scale.
template <OutType kOut, bool kE5M2, bool kStream, Narrow kNaN>
void Fp8Run(const std::uint8_t* HWY_RESTRICT in, std::size_t n, float scale, void* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<std::uint16_t, decltype(df)> d16;
  const hn::Rebind<std::uint8_t, decltype(df)> d8;
  const std::size_t N = hn::Lanes(df);
  const auto vscale = hn::Set(df, scale);
  // Lanes(df) widened values from in + i, scaled.
  auto value = [&](std::size_t i) MNEME_QUANT_INLINE_LAMBDA {
    const auto b = hn::PromoteTo(d16, hn::LoadU(d8, in + i));
    hn::Vec<decltype(df)> w;
    if constexpr (kE5M2) {
      w = WidenF16(df, hn::ShiftLeft<8>(b));
    } else {
      const auto h = hn::Or(hn::ShiftLeft<7>(hn::And(b, hn::Set(d16, 0x7F))),
                            hn::ShiftLeft<8>(hn::And(b, hn::Set(d16, 0x80))));
      w = hn::Mul(WidenF16(df, h), hn::Set(df, 256.0f));
      const auto is_nan = hn::Eq(hn::Abs(w), hn::Set(df, 480.0f));
      const auto qnan = hn::Or(hn::And(w, hn::Set(df, -0.0f)),
                               hn::BitCast(df, hn::Set(du, 0x7FC00000u)));
      w = hn::IfThenElse(is_nan, qnan, w);
    }
    return hn::Mul(w, vscale);
  };
  std::size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = value(i);
    StoreOut2<kOut, kStream, kNaN>(df, a, value(i + N), out, i);
  }
  for (; i + N <= n; i += N) StoreOut<kOut, false, kNaN>(df, value(i), out, i);
  for (; i < n; ++i) {
    const float w = kE5M2 ? detail::f32_from_e5m2(in[i]) : detail::f32_from_e4m3(in[i]);
    detail::store_out(kOut, out, i, w * scale);
  }
}

// Only a NaN scale makes a NaN whose low bits the BF16 rounding would disturb
// (FP8 NaNs widen with zero low bits; see Bf16Bits). Non-zero FP8 values are
// at least 2^-16 (E5M2's smallest subnormal).
template <OutType kOut, bool kE5M2, bool kStream>
void Fp8Run(const std::uint8_t* HWY_RESTRICT in, std::size_t n, float scale, void* out) {
  Risk risk;
  risk.add(scale, 0x1p-16f);
  WithNarrowing<kOut, hn::ScalableTag<float>>(
      risk, [&]<Narrow kNaN>() { Fp8Run<kOut, kE5M2, kStream, kNaN>(in, n, scale, out); });
}

template <OutType kOut, bool kE5M2, bool kStream>
void Fp8Rows(const Fp8Tensor& t, const detail::Fp8Plan& p, std::size_t r0, std::size_t r1,
             const std::uint8_t* in, void* out) {
  auto* o = static_cast<std::uint8_t*>(out);
  const std::size_t osize = out_size(kOut);
  if (t.scaling == Fp8Scaling::per_tensor) {
    Fp8Run<kOut, kE5M2, kStream>(in, (r1 - r0) * t.cols, detail::fp8_scale(t, p, 0, 0), o);
    return;
  }
  for (std::size_t r = r0; r < r1; ++r) {
    const std::uint8_t* row = in + (r - r0) * t.cols;
    std::uint8_t* orow = o + (r - r0) * t.cols * osize;
    if (t.scaling == Fp8Scaling::per_channel) {
      Fp8Run<kOut, kE5M2, kStream>(row, t.cols, detail::fp8_scale(t, p, r, 0), orow);
      continue;
    }
    for (std::size_t c0 = 0, cb = 0; c0 < t.cols; c0 += t.block_cols, ++cb) {
      const std::size_t n = t.cols - c0 < t.block_cols ? t.cols - c0 : t.block_cols;
      Fp8Run<kOut, kE5M2, kStream>(row + c0, n, detail::fp8_scale(t, p, r, cb), orow + c0 * osize);
    }
  }
}

}  // namespace

void DequantFp8(const Fp8Tensor& t, const detail::Fp8Plan& p, std::size_t r0, std::size_t r1,
                const std::uint8_t* in, OutType out_type, void* out) {
  // Every run of one scale (row, block) starts on a cache line, or no streaming.
  const std::size_t osize = out_size(out_type);
  const std::size_t pitch = t.scaling == Fp8Scaling::per_tensor ? 0
                            : t.scaling == Fp8Scaling::per_channel
                                ? t.cols * osize
                            : (t.cols * osize) % 64 == 0 ? t.block_cols * osize
                                                         : 1;
  const bool stream = UseStream(out, (r1 - r0) * t.cols * osize, pitch);
  WithOutType(out_type, [&]<OutType kOut>() {
    WithStream(stream, [&]<bool kStream>() {
      if (t.format == Fp8Format::e5m2) {
        Fp8Rows<kOut, true, kStream>(t, p, r0, r1, in, out);
      } else {
        Fp8Rows<kOut, false, kStream>(t, p, r0, r1, in, out);
      }
    });
  });
}

std::int64_t DispatchedTarget() { return HWY_TARGET; }

}  // namespace mneme::kernels::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mneme::kernels::quant {

HWY_EXPORT(DequantFp8);
HWY_EXPORT(DispatchedTarget);

void dequant_fp8(const Fp8Tensor& t, std::size_t r0, std::size_t r1, const std::uint8_t* in,
                 OutType out_type, void* out) {
  const detail::Fp8Plan p = detail::plan_fp8(t, r0, r1, in, out);
  if (r0 == r1 || t.cols == 0) return;
  HWY_DYNAMIC_DISPATCH(DequantFp8)(t, p, r0, r1, in, out_type, out);
}

std::int64_t detail::dispatched_target() { return HWY_DYNAMIC_DISPATCH(DispatchedTarget)(); }

}  // namespace mneme::kernels::quant
#endif  // HWY_ONCE
