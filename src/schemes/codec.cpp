// One codec per scheme of mneme/scheme.hpp, each binding the scheme's typed
// parameters and companions to its kernel family (kernels/convert,
// kernels/gguf, kernels/quant). Adding a scheme adds one class here and one
// case to make_codec; the compiler lists every visit that misses it.
#include "src/schemes/codec.hpp"

#include <cstring>
#include <string>
#include <type_traits>
#include <variant>

#include "kernels/convert/convert.hpp"
#include "kernels/gguf/gguf_kernels.hpp"
#include "kernels/quant/awq.hpp"
#include "kernels/quant/bnb.hpp"
#include "kernels/quant/fp8.hpp"
#include "kernels/quant/gptq.hpp"
#include "mneme/checked.hpp"
#include "mneme/error.hpp"

namespace mneme {

std::uint64_t Codec::input_bytes(std::uint64_t elements) const {
  const auto& g = geometry_;
  const std::uint64_t whole = checked_mul(elements / g.unit_elements, g.unit_bytes, "input size");
  // A short last unit: its share of the unit's bytes, rounded up.
  return whole + ceil_div((elements % g.unit_elements) * g.unit_bytes, g.unit_elements);
}

namespace {

namespace q = kernels::quant;

OutType out_type(DType d) {
  return d == DType::f32 ? OutType::f32 : d == DType::f16 ? OutType::f16 : OutType::bf16;
}

[[noreturn]] void bad(const TensorInfo& t, const std::string& why) {
  fail(ErrorKind::parse, "tensor \"" + printable(t.name) + "\": " + why);
}

// Rows and columns of a 2-D tensor with both non-zero; a parse error otherwise.
std::pair<std::uint64_t, std::uint64_t> matrix(const TensorInfo& t, const char* why) {
  if (t.shape.size() != 2 || t.shape[0] == 0 || t.shape[1] == 0) {
    bad(t, why);
  }
  return {t.shape[0], t.shape[1]};
}

// Whole rows of a 2-D tensor of one-byte elements (FP8, INT8): a unit is a row.
CodecGeometry row_geometry(const TensorInfo& t) {
  const auto cols = matrix(t, "must be 2-D").second;
  return {cols, cols};
}

q::Bytes bytes_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()};
}

const std::uint8_t* u8(const std::byte* p) {
  return reinterpret_cast<const std::uint8_t*>(p);
}

class PlainCodec final : public Codec {
 public:
  PlainCodec(const TensorInfo& t, DType out, kernels::ConvertFn convert)
      : Codec(out, {1, dtype_size(t.dtype)}), convert_(convert), out_size_(dtype_size(out)) {}
  void decode(std::uint64_t, std::uint64_t count, const std::byte* input,
              std::span<std::byte> out) const override {
    if (convert_) {
      convert_(input, out.data(), count);
    } else if (count) {
      std::memcpy(out.data(), input, count * out_size_);
    }
  }
  bool copies() const override { return convert_ == nullptr; }

 private:
  kernels::ConvertFn convert_;
  std::size_t out_size_;
};

class GgufCodec final : public Codec {
 public:
  GgufCodec(kernels::gguf::GgmlType type, kernels::gguf::BlockInfo block, DType out)
      : Codec(out, {block.elements, block.bytes}), type_(type) {}
  void decode(std::uint64_t, std::uint64_t count, const std::byte* input,
              std::span<std::byte> out) const override {
    kernels::gguf::dequantize(type_, input, count / geometry().unit_elements, out_type(output()),
                              out.data());
  }

 private:
  kernels::gguf::GgmlType type_;
};

class Fp8Codec final : public Codec {
 public:
  Fp8Codec(const TensorInfo& t, const scheme::Fp8& s, DType out)
      : Codec(out, row_geometry(t)),
        scale_(s.scale.data) {
    f_.format = t.dtype == DType::f8_e5m2 ? q::Fp8Format::e5m2 : q::Fp8Format::e4m3fn;
    f_.rows = t.shape[0];
    f_.cols = t.shape[1];
    f_.scaling = s.scaling == scheme::Fp8::Scaling::block         ? q::Fp8Scaling::block
                 : s.scaling == scheme::Fp8::Scaling::per_channel ? q::Fp8Scaling::per_channel
                                                                  : q::Fp8Scaling::per_tensor;
    f_.scale_dtype = s.scale.dtype;
    f_.block_rows = s.block_rows;
    f_.block_cols = s.block_cols;
  }
  std::vector<Extent> companions() const override { return {scale_}; }
  void bind(std::span<const std::span<const std::byte>> b) override {
    f_.scales = bytes_of(b[0]);
    q::validate(f_);
  }
  void decode(std::uint64_t first, std::uint64_t count, const std::byte* input,
              std::span<std::byte> out) const override {
    const std::size_t r0 = first / f_.cols;
    q::dequant_fp8(f_, r0, r0 + count / f_.cols, u8(input), out_type(output()), out.data());
  }

 private:
  Extent scale_;
  q::Fp8Tensor f_;
};

// GPTQ packs 32 / bits consecutive input rows of one column per I32 word:
// a unit is those rows across every column.
CodecGeometry gptq_geometry(const TensorInfo& t, const scheme::Gptq& s) {
  const auto [out, in] = matrix(t, "not a 4/8-bit [out, in] matrix");
  if (s.bits != 4 && s.bits != 8) {
    bad(t, "not a 4/8-bit [out, in] matrix");
  }
  return {checked_mul(out, 32 / s.bits, "unit"), checked_mul(out, 4, "unit"), false, true};
}

class GptqCodec final : public Codec {
 public:
  GptqCodec(const TensorInfo& t, const scheme::Gptq& s, DType out)
      : Codec(out, gptq_geometry(t, s)), s_(s) {
    g_.bits = s.bits;
    g_.out_features = t.shape[0];
    g_.in_features = t.shape[1];
    g_.group_size = s.group_size;
    g_.scale_dtype = s.scales.dtype;
    g_.zeros = s.v2 ? q::GptqZeros::v2 : q::GptqZeros::v1;
  }
  std::vector<Extent> companions() const override {
    std::vector<Extent> c{s_.scales.data, s_.qzeros.data};
    if (s_.g_idx) {
      c.push_back(s_.g_idx->data);
    }
    return c;
  }
  void bind(std::span<const std::span<const std::byte>> b) override {
    g_.scales = bytes_of(b[0]);
    g_.qzeros = bytes_of(b[1]);
    g_.g_idx = s_.g_idx ? bytes_of(b[2]) : q::Bytes{};
    q::validate(g_);
  }
  void decode(std::uint64_t first, std::uint64_t count, const std::byte* input,
              std::span<std::byte> out) const override {
    const std::size_t n_out = g_.out_features, i0 = first / n_out;
    const std::size_t esz = dtype_size(output());
    q::dequant_gptq(g_, i0, i0 + count / n_out, u8(input),
                    {out.data() + i0 * esz, out_type(output()), q::Orientation::out_in,
                     g_.in_features});
  }

 private:
  scheme::Gptq s_;
  q::GptqTensor g_;
};

// AWQ packs eight columns of one input row per I32 word: a unit is one input row.
CodecGeometry awq_geometry(const TensorInfo& t) {
  const auto [out, in] = matrix(t, "not a 4-bit [out, in] matrix");
  if (out % 8 != 0) {
    bad(t, "not a 4-bit [out, in] matrix");
  }
  return {out, out / 2, false, true};
}

class AwqCodec final : public Codec {
 public:
  AwqCodec(const TensorInfo& t, const scheme::Awq& s, DType out)
      : Codec(out, awq_geometry(t)), s_(s) {
    a_.bits = s.bits;
    a_.out_features = t.shape[0];
    a_.in_features = t.shape[1];
    a_.group_size = s.group_size;
    a_.scale_dtype = s.scales.dtype;
  }
  std::vector<Extent> companions() const override { return {s_.scales.data, s_.qzeros.data}; }
  void bind(std::span<const std::span<const std::byte>> b) override {
    a_.scales = bytes_of(b[0]);
    a_.qzeros = bytes_of(b[1]);
    q::validate(a_);
  }
  void decode(std::uint64_t first, std::uint64_t count, const std::byte* input,
              std::span<std::byte> out) const override {
    const std::size_t n_out = a_.out_features, i0 = first / n_out;
    const std::size_t esz = dtype_size(output());
    q::dequant_awq(a_, i0, i0 + count / n_out, u8(input),
                   {out.data() + i0 * esz, out_type(output()), q::Orientation::out_in,
                    a_.in_features});
  }

 private:
  scheme::Awq s_;
  q::AwqTensor a_;
};

// Two codes per byte in blocks of block_size values; the last block may be short.
CodecGeometry bnb4_geometry(const TensorInfo& t, const scheme::Bnb4& s) {
  if (s.block_size == 0 || s.block_size % 2 != 0) {
    bad(t, "odd bitsandbytes block size");
  }
  return {s.block_size, s.block_size / 2, true, false};
}

class Bnb4Codec final : public Codec {
 public:
  Bnb4Codec(const TensorInfo& t, const scheme::Bnb4& s, DType out)
      : Codec(out, bnb4_geometry(t, s)), s_(s) {
    b_.total_elements = t.element_count();
    b_.block_size = s.block_size;
    b_.double_quant = s.nested.has_value();
    if (s.nested) {
      b_.nested_block_size = s.nested->block_size;
      b_.nested_offset = s.nested->offset;
    }
  }
  std::vector<Extent> companions() const override {
    std::vector<Extent> c{s_.absmax.data, s_.quant_map.data};
    if (s_.nested) {
      c.push_back(s_.nested->absmax.data);
      c.push_back(s_.nested->quant_map.data);
    }
    return c;
  }
  void bind(std::span<const std::span<const std::byte>> b) override {
    b_.absmax = bytes_of(b[0]);
    b_.quant_map = bytes_of(b[1]);
    if (s_.nested) {
      b_.nested_absmax = bytes_of(b[2]);
      b_.nested_quant_map = bytes_of(b[3]);
    }
    q::validate(b_);
  }
  void decode(std::uint64_t first, std::uint64_t count, const std::byte* input,
              std::span<std::byte> out) const override {
    q::dequant_bnb4(b_, first, first + count, u8(input), out_type(output()), out.data());
  }

 private:
  scheme::Bnb4 s_;
  q::Bnb4Tensor b_;
};

class BnbInt8Codec final : public Codec {
 public:
  BnbInt8Codec(const TensorInfo& t, const scheme::BnbInt8& s, DType out)
      : Codec(out, row_geometry(t)),
        scb_(s.scb.data) {
    b_.rows = t.shape[0];
    b_.cols = t.shape[1];
  }
  std::vector<Extent> companions() const override { return {scb_}; }
  void bind(std::span<const std::span<const std::byte>> b) override {
    b_.scb = bytes_of(b[0]);
    q::validate(b_);
  }
  void decode(std::uint64_t first, std::uint64_t count, const std::byte* input,
              std::span<std::byte> out) const override {
    const std::size_t r0 = first / b_.cols;
    q::dequant_bnb_int8(b_, r0, r0 + count / b_.cols, u8(input), out_type(output()), out.data());
  }

 private:
  Extent scb_;
  q::BnbInt8Tensor b_;
};

bool convertible_float(DType t) {
  return t == DType::f64 || t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

std::unique_ptr<Codec> plain_codec(const TensorInfo& t, std::optional<OutType> to) {
  const DType out = to && convertible_float(t.dtype) ? to_dtype(*to) : t.dtype;
  kernels::ConvertFn convert = nullptr;
  if (out != t.dtype) {
    convert = kernels::convert_fn(t.dtype, *to);
    if (!convert) {
      fail(ErrorKind::unsupported, "no kernel converts " + std::string(dtype_name(t.dtype)) +
                                       " to " + std::string(dtype_name(out)));
    }
  }
  return std::make_unique<PlainCodec>(t, out, convert);
}

}  // namespace

std::unique_ptr<Codec> make_codec(const TensorInfo& t, std::optional<OutType> to) {
  const DType out = to_dtype(to.value_or(OutType::bf16));  // quantized schemes always decode
  return visit_scheme(
      [&](const auto& s) -> std::unique_ptr<Codec> {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, scheme::Plain>) {
          return plain_codec(t, to);
        } else if constexpr (std::is_same_v<S, scheme::GgufBlocks>) {
          const auto block = kernels::gguf::block_info(s.type);
          if (!block || !kernels::gguf::is_quantized(s.type)) {
            bad(t, "unknown GGUF type");
          }
          return std::make_unique<GgufCodec>(static_cast<kernels::gguf::GgmlType>(s.type), *block,
                                             out);
        } else if constexpr (std::is_same_v<S, scheme::Fp8>) {
          return std::make_unique<Fp8Codec>(t, s, out);
        } else if constexpr (std::is_same_v<S, scheme::Gptq>) {
          return std::make_unique<GptqCodec>(t, s, out);
        } else if constexpr (std::is_same_v<S, scheme::Awq>) {
          return std::make_unique<AwqCodec>(t, s, out);
        } else if constexpr (std::is_same_v<S, scheme::Bnb4>) {
          return std::make_unique<Bnb4Codec>(t, s, out);
        } else {
          static_assert(std::is_same_v<S, scheme::BnbInt8>, "a scheme without a codec");
          return std::make_unique<BnbInt8Codec>(t, s, out);
        }
      },
      t.scheme);
}

}  // namespace mneme
