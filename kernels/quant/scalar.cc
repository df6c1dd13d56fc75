// Scalar references of the quantized-safetensors kernels: plain C++ in the
// reference libraries' exact evaluation order (PyTorch fp8 cast, GPTQModel,
// AutoAWQ, bitsandbytes' CUDA kernels). The Highway kernels must match these
// bit for bit.
#include "kernels/quant/element.hpp"
#include "kernels/quant/plan.hpp"

namespace mneme::kernels::quant::scalar {
namespace {

// Output index of logical element (i - i0, j) of a [in, out] slice.
inline std::size_t out_index(const MatrixOut& out, std::size_t stride, std::size_t di,
                             std::size_t j) noexcept {
  return out.orientation == Orientation::in_out ? di * stride + j : j * stride + di;
}

}  // namespace

void dequant_fp8(const Fp8Tensor& t, std::size_t r0, std::size_t r1, const std::uint8_t* in,
                 OutType out_type, void* out) {
  const detail::Fp8Plan p = detail::plan_fp8(t, r0, r1, in, out);
  std::size_t k = 0;
  for (std::size_t r = r0; r < r1; ++r) {
    for (std::size_t c = 0; c < t.cols; ++c, ++k) {
      const std::size_t cb = t.scaling == Fp8Scaling::block ? c / t.block_cols : 0;
      const float scale = detail::fp8_scale(t, p, r, cb);
      const float w = t.format == Fp8Format::e4m3fn ? detail::f32_from_e4m3(in[k])
                                                    : detail::f32_from_e5m2(in[k]);
      detail::store_out(out_type, out, k, w * scale);
    }
  }
}

void dequant_gptq(const GptqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                  const MatrixOut& out) {
  const detail::MatrixPlan p = detail::plan_gptq(t, i0, i1, qweight, out);
  const std::uint32_t mask = (1u << t.bits) - 1u;
  for (std::size_t i = i0; i < i1; ++i) {
    const std::size_t g = p.has_g_idx ? static_cast<std::size_t>(detail::load_i32(t.g_idx.data(), i))
                                      : i / t.group_size;
    const unsigned qshift = t.bits * static_cast<unsigned>(i % p.pack);
    for (std::size_t j = 0; j < t.out_features; ++j) {
      const std::uint32_t word = load_u32(qweight + 4 * (((i - i0) / p.pack) * t.out_features + j));
      const auto q = static_cast<std::int32_t>((word >> qshift) & mask);
      const std::uint32_t zword = load_u32(t.qzeros.data() + 4 * (g * p.zero_words + j / p.pack));
      const unsigned zshift = t.bits * static_cast<unsigned>(j % p.pack);
      const std::int32_t zero = static_cast<std::int32_t>((zword >> zshift) & mask) + p.zero_bias;
      const float scale = detail::load_scale(t.scale_dtype, t.scales.data(), g * t.out_features + j);
      const float v = (static_cast<float>(q) - static_cast<float>(zero)) * scale;
      detail::store_out(out.type, out.data, out_index(out, p.stride, i - i0, j), v);
    }
  }
}

void dequant_awq(const AwqTensor& t, std::size_t i0, std::size_t i1, const std::uint8_t* qweight,
                 const MatrixOut& out) {
  const detail::MatrixPlan p = detail::plan_awq(t, i0, i1, qweight, out);
  for (std::size_t i = i0; i < i1; ++i) {
    const std::size_t g = i / t.group_size;
    for (std::size_t j = 0; j < t.out_features; ++j) {
      const unsigned shift = 4 * detail::kAwqNibble[j % 8];
      const std::uint32_t word = load_u32(qweight + 4 * ((i - i0) * p.zero_words + j / 8));
      const std::uint32_t zword = load_u32(t.qzeros.data() + 4 * (g * p.zero_words + j / 8));
      const auto q = static_cast<std::int32_t>((word >> shift) & 0xFu);
      const auto z = static_cast<std::int32_t>((zword >> shift) & 0xFu);
      const float scale = detail::load_scale(t.scale_dtype, t.scales.data(), g * t.out_features + j);
      const float v = (static_cast<float>(q) - static_cast<float>(z)) * scale;
      detail::store_out(out.type, out.data, out_index(out, p.stride, i - i0, j), v);
    }
  }
}

void dequant_bnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const std::uint8_t* in,
                  OutType out_type, void* out) {
  detail::plan_bnb4(t, e0, e1, in, out);
  for (std::size_t e = e0; e < e1; ++e) {
    const std::uint8_t byte = in[(e - e0) / 2];
    const unsigned code = (e % 2 == 0) ? (byte >> 4) : (byte & 0xFu);
    const float q = detail::load_scale(DType::f32, t.quant_map.data(), code);
    const float absmax = detail::bnb4_absmax(t, e / t.block_size);
    detail::store_out(out_type, out, e - e0, q * absmax);
  }
}

void dequant_bnb_int8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1,
                      const std::uint8_t* in, OutType out_type, void* out) {
  detail::plan_bnb_int8(t, r0, r1, in, out);
  const float inv127 = f32_from_bits(0x3C010204u);  // bitsandbytes' 7.874015718698502e-3f
  std::size_t k = 0;
  for (std::size_t r = r0; r < r1; ++r) {
    const float scb = detail::load_scale(DType::f32, t.scb.data(), r);
    for (std::size_t c = 0; c < t.cols; ++c, ++k) {
      const float w = static_cast<float>(static_cast<std::int8_t>(in[k]));
      const float scaled = w * scb;
      detail::store_out(out_type, out, k, scaled * inv127);
    }
  }
}

}  // namespace mneme::kernels::quant::scalar
