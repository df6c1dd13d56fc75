#include "pipeline/decoder.hpp"

#include <cstring>
#include <string>

#include "mneme/error.hpp"

namespace mneme::pipeline {

void Decoder::init(const TensorInfo& t, const OutputTensor& o) {
  encoding = t.encoding;
  data_offset = t.data.offset;
  out = o.dtype == DType::f32 ? OutType::f32 : o.dtype == DType::f16 ? OutType::f16 : OutType::bf16;
  if (t.encoding == Encoding::gguf_blocks) {
    gguf_type = static_cast<kernels::gguf::GgmlType>(t.gguf_type);
    block_elements = kernels::gguf::block_info(t.gguf_type)->elements;
  }
  if (t.encoding != Encoding::plain || t.dtype == o.dtype) {
    return;
  }
  convert = kernels::convert_fn(t.dtype, out);
  if (!convert) {
    fail(ErrorKind::unsupported, "no kernel converts " + std::string(dtype_name(t.dtype)) + " to " +
                                     std::string(dtype_name(o.dtype)));
  }
}

// Companions are small (GPTQ's scales and zeros are ~1/50 of its 4-bit
// weights at group 128): read whole, synchronously, on the decode thread.
bool Decoder::needs_companion(const Companion& c) {
  return c.role != "quant_state" && c.role != "weight_format";  // those served detection
}

void Decoder::load_scheme(const TensorInfo& t) {
  Decoder& d = *this;
  namespace q = kernels::quant;
  if (t.encoding == Encoding::plain || t.encoding == Encoding::gguf_blocks) {
    return;
  }
  const QuantInfo& qi = t.quant;
  d.companions.resize(qi.companions.size());
  const auto bytes = [&](std::string_view role) -> q::Bytes {
    for (std::size_t i = 0; i < qi.companions.size(); ++i) {
      if (qi.companions[i].role == role) {
        return {reinterpret_cast<const std::uint8_t*>(d.companions[i].data()),
                d.companions[i].size()};
      }
    }
    return {};
  };
  const auto dtype_of = [&](std::string_view role) {
    const Companion* comp = qi.companion(role);
    if (!comp) {
      fail(ErrorKind::parse,
           "tensor \"" + printable(t.name) + "\": no " + std::string(role) + " companion");
    }
    return comp->dtype;
  };
  switch (t.encoding) {
    case Encoding::fp8_scaled: {
      q::Fp8Tensor f;
      f.format = t.dtype == DType::f8_e5m2 ? q::Fp8Format::e5m2 : q::Fp8Format::e4m3fn;
      f.rows = t.shape.at(0);
      f.cols = t.shape.at(1);
      f.scaling = qi.fp8_scaling == QuantInfo::Fp8Scaling::block ? q::Fp8Scaling::block
                  : qi.fp8_scaling == QuantInfo::Fp8Scaling::per_channel
                      ? q::Fp8Scaling::per_channel
                      : q::Fp8Scaling::per_tensor;
      f.scale_dtype = dtype_of("scale");
      f.scales = bytes("scale");
      f.block_rows = qi.block_rows;
      f.block_cols = qi.block_cols;
      q::validate(f);
      d.fp8 = f;
      break;
    }
    case Encoding::gptq: {
      q::GptqTensor g;
      g.bits = qi.bits;
      g.out_features = t.shape.at(0);
      g.in_features = t.shape.at(1);
      g.group_size = qi.group_size;
      g.scale_dtype = dtype_of("scales");
      g.scales = bytes("scales");
      g.qzeros = bytes("qzeros");
      g.g_idx = bytes("g_idx");
      g.zeros = qi.gptq_v2 ? q::GptqZeros::v2 : q::GptqZeros::v1;
      q::validate(g);
      d.gptq = g;
      break;
    }
    case Encoding::awq: {
      q::AwqTensor a;
      a.bits = qi.bits;
      a.out_features = t.shape.at(0);
      a.in_features = t.shape.at(1);
      a.group_size = qi.group_size;
      a.scale_dtype = dtype_of("scales");
      a.scales = bytes("scales");
      a.qzeros = bytes("qzeros");
      q::validate(a);
      d.awq = a;
      break;
    }
    case Encoding::bnb4: {
      q::Bnb4Tensor b;
      b.total_elements = t.element_count();
      b.block_size = qi.block_size;
      b.quant_map = bytes("quant_map");
      b.absmax = bytes("absmax");
      b.double_quant = qi.double_quant;
      b.nested_absmax = bytes("nested_absmax");
      b.nested_quant_map = bytes("nested_quant_map");
      b.nested_offset = qi.nested_offset;
      if (qi.double_quant) {
        b.nested_block_size = qi.nested_block_size;
      }
      q::validate(b);
      d.bnb4 = b;
      break;
    }
    case Encoding::bnb_int8: {
      q::BnbInt8Tensor b;
      b.rows = t.shape.at(0);
      b.cols = t.shape.at(1);
      b.scb = bytes("SCB");
      q::validate(b);
      d.int8 = b;
      break;
    }
    default:
      break;
  }
}

void Decoder::decode(const Chunk& c, const std::byte* input, std::span<std::byte> dst) const {
  namespace q = kernels::quant;
  const Decoder& d = *this;
  const auto* in = reinterpret_cast<const std::uint8_t*>(input);
  const std::uint64_t at = c.input.offset - d.data_offset;  // byte position in the stored tensor
  const std::size_t esz = out_size(d.out);
  switch (d.encoding) {
    case Encoding::gguf_blocks:
      kernels::gguf::dequantize(d.gguf_type, input, c.elements / d.block_elements, d.out,
                                dst.data());
      break;
    case Encoding::fp8_scaled: {
      const std::size_t r0 = at / d.fp8->cols;
      q::dequant_fp8(*d.fp8, r0, r0 + c.elements / d.fp8->cols, in, d.out, dst.data());
      break;
    }
    case Encoding::gptq: {  // input rows [i0, i1) are columns [i0, i1) of the [out, in] output
      const std::size_t n_out = d.gptq->out_features, i0 = at / (4 * n_out) * (32 / d.gptq->bits);
      q::dequant_gptq(*d.gptq, i0, i0 + c.elements / n_out, in,
                      {dst.data() + i0 * esz, d.out, q::Orientation::out_in, d.gptq->in_features});
      break;
    }
    case Encoding::awq: {
      const std::size_t n_out = d.awq->out_features, i0 = at / (n_out / 2);
      q::dequant_awq(*d.awq, i0, i0 + c.elements / n_out, in,
                     {dst.data() + i0 * esz, d.out, q::Orientation::out_in, d.awq->in_features});
      break;
    }
    case Encoding::bnb4:
      q::dequant_bnb4(*d.bnb4, 2 * at, 2 * at + c.elements, in, d.out, dst.data());
      break;
    case Encoding::bnb_int8: {
      const std::size_t r0 = at / d.int8->cols;
      q::dequant_bnb_int8(*d.int8, r0, r0 + c.elements / d.int8->cols, in, d.out, dst.data());
      break;
    }
    case Encoding::plain:
      if (d.convert) {
        d.convert(input, dst.data(), c.elements);
      } else if (c.out_bytes) {
        std::memcpy(dst.data(), input, c.out_bytes);
      }
      break;
  }
}

void Decoder::release_companions() {
  companions.clear();
  companions.shrink_to_fit();
}

}  // namespace mneme::pipeline
