// BitsAndBytes NF4/FP4 and LLM.int8() dequantization, Highway kernel.
//
// 4-bit: N/2 bytes widen to u16 lanes whose low byte is the high nibble and
// high byte the low nibble, which reinterpreted as N bytes are the codes in
// element order; the 16-entry quant map is looked up in 16/N table vectors.
// Each block's absmax (recovered through the nested quantization when double
// quantized) is one scalar per block, shared with the scalar reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant/bnb.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cstring>

#include "hwy/highway.h"
#include "kernels/quant/plan.hpp"
#include "kernels/quant/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace mneme::kernels::quant::HWY_NAMESPACE {
namespace {

inline float bnb4_element(const Bnb4Tensor& t, const std::uint8_t* in, std::size_t e0,
                          std::size_t e, float absmax) {
  const std::uint8_t byte = in[(e - e0) / 2];
  const unsigned code = (e % 2 == 0) ? (byte >> 4) : (byte & 0xFu);
  return detail::load_scale(DType::f32, t.quant_map.data(), code) * absmax;
}

template <OutType kOut, bool kStream>
void Bnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const std::uint8_t* in, void* out) {
#if HWY_TARGET == HWY_SCALAR
  for (std::size_t e = e0; e < e1; ++e) {
    const float absmax = detail::bnb4_absmax(t, e / t.block_size);
    detail::store_out(kOut, out, e - e0, bnb4_element(t, in, e0, e, absmax));
  }
#else
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Half<decltype(df)> dfh;
  const hn::Rebind<std::uint8_t, decltype(dfh)> dh8;
  const hn::Rebind<std::uint16_t, decltype(dfh)> dh16;
  const hn::Repartition<std::uint8_t, decltype(dh16)> d8;
  constexpr std::size_t kMax = HWY_MAX_BYTES / 4;
  const std::size_t N = hn::Lanes(df);
  const std::size_t n_tables = N >= 16 ? 1 : 16 / N;
  const int log2n = N >= 16 ? 4 : (N == 8 ? 3 : (N == 4 ? 2 : 1));
  HWY_ALIGN float map[16 > kMax ? 16 : kMax];
  std::memcpy(map, t.quant_map.data(), 64);
  hn::Vec<decltype(df)> tables[16];
  for (std::size_t k = 0; k < n_tables; ++k) tables[k] = hn::Load(df, map + k * N);
  // A NaN map entry keeps the NaN test on (see Bf16Bits); the smallest
  // non-zero entry bounds what an absmax can make subnormal.
  bool map_nan = false;
  float map_min = 3.4028235e38f;
  for (std::size_t k = 0; k < 16; ++k) {
    map_nan |= map[k] != map[k];
    const float a = map[k] < 0 ? -map[k] : map[k];
    if (a != 0 && a < map_min) map_min = a;
  }
  const auto lane_mask = hn::Set(di, static_cast<std::int32_t>((N >= 16 ? 16 : N) - 1));
  for (std::size_t b0 = e0; b0 < e1; b0 += t.block_size) {
    const std::size_t b1 = b0 + t.block_size < e1 ? b0 + t.block_size : e1;
    const float absmax = detail::bnb4_absmax(t, b0 / t.block_size);
    const auto vabs = hn::Set(df, absmax);
    // Lanes(df) values from element e.
    auto value = [&](std::size_t e) MNEME_QUANT_INLINE_LAMBDA {
      const auto bytes = hn::PromoteTo(dh16, hn::LoadU(dh8, in + (e - e0) / 2));
      const auto pairs = hn::Or(hn::ShiftRight<4>(bytes),
                                hn::ShiftLeft<8>(hn::And(bytes, hn::Set(dh16, 0xF))));
      const auto codes = hn::BitCast(di, hn::PromoteTo(du, hn::BitCast(d8, pairs)));
      const auto idx = hn::IndicesFromVec(df, hn::And(codes, lane_mask));
      auto v = hn::TableLookupLanes(tables[0], idx);
      for (std::size_t k = 1; k < n_tables; ++k) {
        const auto in_table = hn::RebindMask(df, hn::Eq(hn::ShiftRightSame(codes, log2n),
                                                        hn::Set(di, static_cast<std::int32_t>(k))));
        v = hn::IfThenElse(in_table, hn::TableLookupLanes(tables[k], idx), v);
      }
      return hn::Mul(v, vabs);
    };
    std::size_t e = b0;
    Risk risk;
    risk.nan = map_nan;
    risk.add(absmax, map_min);
    WithNarrowing<kOut, decltype(df)>(risk, [&]<Narrow kNaN>() {
      for (; e + 2 * N <= b1; e += 2 * N) {
        const auto a = value(e);
        StoreOut2<kOut, kStream, kNaN>(df, a, value(e + N), out, e - e0);
      }
      for (; e + N <= b1; e += N) StoreOut<kOut, false, kNaN>(df, value(e), out, e - e0);
    });
    for (; e < b1; ++e) detail::store_out(kOut, out, e - e0, bnb4_element(t, in, e0, e, absmax));
  }
#endif
}

template <OutType kOut, bool kStream>
void BnbInt8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1, const std::uint8_t* in,
             void* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<std::int8_t, decltype(df)> d8;
  const std::size_t N = hn::Lanes(df);
  const float inv127 = f32_from_bits(0x3C010204u);
  const auto vinv = hn::Set(df, inv127);
  const auto* w = reinterpret_cast<const std::int8_t*>(in);
  for (std::size_t r = r0; r < r1; ++r) {
    const float scb = detail::load_scale(DType::f32, t.scb.data(), r);
    const auto vscb = hn::Set(df, scb);
    const std::size_t base = (r - r0) * t.cols;
    auto value = [&](std::size_t c) MNEME_QUANT_INLINE_LAMBDA {
      const auto x = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, w + base + c)));
      return hn::Mul(hn::Mul(x, vscb), vinv);
    };
    std::size_t c = 0;
    Risk risk;
    risk.add(scb, inv127);  // an INT8 quant times scb, then times 1/127
    WithNarrowing<kOut, decltype(df)>(risk, [&]<Narrow kNaN>() {
      for (; c + 2 * N <= t.cols; c += 2 * N) {
        const auto a = value(c);
        StoreOut2<kOut, kStream, kNaN>(df, a, value(c + N), out, base + c);
      }
      for (; c + N <= t.cols; c += N) StoreOut<kOut, false, kNaN>(df, value(c), out, base + c);
    });
    for (; c < t.cols; ++c) {
      const float scaled = static_cast<float>(w[base + c]) * scb;
      detail::store_out(kOut, out, base + c, scaled * inv127);
    }
  }
}

}  // namespace

void DequantBnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const std::uint8_t* in,
                 OutType out_type, void* out) {
  const std::size_t osize = out_size(out_type);
  const bool stream = UseStream(out, (e1 - e0) * osize, t.block_size * osize);
  WithOutType(out_type, [&]<OutType kOut>() {
    WithStream(stream, [&]<bool kStream>() { Bnb4<kOut, kStream>(t, e0, e1, in, out); });
  });
}

void DequantBnbInt8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1,
                    const std::uint8_t* in, OutType out_type, void* out) {
  const std::size_t osize = out_size(out_type);
  const bool stream = UseStream(out, (r1 - r0) * t.cols * osize, t.cols * osize);
  WithOutType(out_type, [&]<OutType kOut>() {
    WithStream(stream, [&]<bool kStream>() { BnbInt8<kOut, kStream>(t, r0, r1, in, out); });
  });
}

}  // namespace mneme::kernels::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mneme::kernels::quant {

HWY_EXPORT(DequantBnb4);
HWY_EXPORT(DequantBnbInt8);

void dequant_bnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const std::uint8_t* in,
                  OutType out_type, void* out) {
  detail::plan_bnb4(t, e0, e1, in, out);
  if (e0 == e1) return;
  HWY_DYNAMIC_DISPATCH(DequantBnb4)(t, e0, e1, in, out_type, out);
}

void dequant_bnb_int8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1,
                      const std::uint8_t* in, OutType out_type, void* out) {
  detail::plan_bnb_int8(t, r0, r1, in, out);
  if (r0 == r1 || t.cols == 0) return;
  HWY_DYNAMIC_DISPATCH(DequantBnbInt8)(t, r0, r1, in, out_type, out);
}

}  // namespace mneme::kernels::quant
#endif  // HWY_ONCE
