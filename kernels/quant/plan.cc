// Parameter validation for the quantized-safetensors kernels. Every value here
// comes from an untrusted header, so sizes are checked (overflow included)
// before a kernel reads a byte.
#include "kernels/quant/plan.hpp"

#include <string>

#include "kernels/quant/element.hpp"
#include "mneme/checked.hpp"
#include "mneme/error.hpp"

namespace mneme::kernels::quant {
namespace detail {
namespace {

[[noreturn]] void bad(const std::string& what) { fail(ErrorKind::parse, what); }

std::string num(std::size_t v) { return std::to_string(v); }

void check_scale_dtype(DType t, const char* who) {
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) {
    fail(ErrorKind::unsupported,
         std::string(who) + ": scale dtype " + std::string(dtype_name(t)) + " (want F32/BF16/F16)");
  }
}

void check_out_type(OutType t, const char* who) {
  if (t != OutType::f32 && t != OutType::bf16 && t != OutType::f16) {
    fail(ErrorKind::unsupported, std::string(who) + ": unknown output type");
  }
}

void check_range(std::size_t a, std::size_t b, std::size_t n, const char* who) {
  if (a > b || b > n) bad(std::string(who) + ": slice [" + num(a) + ", " + num(b) + ") outside 0.." + num(n));
}

// Resolves and checks the output stride of a [in, out] weight slice.
std::size_t out_stride(const MatrixOut& out, std::size_t i0, std::size_t i1, std::size_t n_out,
                       const char* who) {
  check_out_type(out.type, who);
  const std::size_t rows = out.orientation == Orientation::in_out ? i1 - i0 : n_out;
  const std::size_t row_len = out.orientation == Orientation::in_out ? n_out : i1 - i0;
  if (out.orientation != Orientation::in_out && out.orientation != Orientation::out_in) {
    fail(ErrorKind::unsupported, std::string(who) + ": unknown orientation");
  }
  const std::size_t stride = out.stride == 0 ? row_len : out.stride;
  if (stride < row_len) bad(std::string(who) + ": output stride " + num(stride) + " < row length " + num(row_len));
  if (rows > 0) {
    // The last element written must be addressable.
    const std::uint64_t last = checked_add(checked_mul(rows - 1, stride, who), row_len, who);
    checked_mul(last, out_size(out.type), who);
  }
  if (rows > 0 && row_len > 0 && out.data == nullptr) bad(std::string(who) + ": null output");
  return stride;
}

}  // namespace

Fp8Plan plan_fp8(const Fp8Tensor& t, std::size_t r0, std::size_t r1, const void* in,
                 const void* out) {
  static constexpr const char* who = "fp8";
  if (t.format != Fp8Format::e4m3fn && t.format != Fp8Format::e5m2) {
    fail(ErrorKind::unsupported, "fp8: unknown format");
  }
  check_scale_dtype(t.scale_dtype, who);
  const std::uint64_t n = checked_mul(checked_mul(t.rows, t.cols, who), 4, who);
  (void)n;
  check_range(r0, r1, t.rows, who);
  const std::size_t ss = scale_size(t.scale_dtype);
  if (t.scales.size() % ss != 0) bad("fp8: scale bytes " + num(t.scales.size()) + " not whole elements");
  const std::size_t count = t.scales.size() / ss;
  if (!t.scales.empty() && t.scales.data() == nullptr) bad("fp8: null scales");
  Fp8Plan p;
  switch (t.scaling) {
    case Fp8Scaling::per_tensor:
      p.unit_scale = count == 0;
      break;
    case Fp8Scaling::per_channel:
      if (count != t.rows) bad("fp8: per-channel scale count " + num(count) + " != rows " + num(t.rows));
      break;
    case Fp8Scaling::block: {
      if (t.block_rows == 0 || t.block_cols == 0) bad("fp8: zero scale block size");
      const std::size_t grid_rows = t.rows / t.block_rows + (t.rows % t.block_rows != 0);
      const std::size_t need_cols = t.cols / t.block_cols + (t.cols % t.block_cols != 0);
      if (grid_rows == 0) {
        if (count != 0 && t.cols != 0) bad("fp8: scales for an empty weight");
        break;
      }
      if (count % grid_rows != 0) {
        bad("fp8: scale count " + num(count) + " not a multiple of grid rows " + num(grid_rows));
      }
      p.grid_cols = count / grid_rows;
      if (p.grid_cols < need_cols || (need_cols == 0 && p.grid_cols != 0)) {
        bad("fp8: scale grid has " + num(p.grid_cols) + " columns, weight needs " + num(need_cols));
      }
      break;
    }
    default:
      fail(ErrorKind::unsupported, "fp8: unknown scaling");
  }
  if (r1 > r0 && t.cols > 0 && (in == nullptr || out == nullptr)) bad("fp8: null buffer");
  return p;
}

float fp8_scale(const Fp8Tensor& t, const Fp8Plan& p, std::size_t r, std::size_t cb) noexcept {
  const std::uint8_t* s = t.scales.data();
  switch (t.scaling) {
    case Fp8Scaling::per_tensor:
      return p.unit_scale ? 1.0f : load_scale(t.scale_dtype, s, 0);
    case Fp8Scaling::per_channel:
      return load_scale(t.scale_dtype, s, r);
    default:
      return load_scale(t.scale_dtype, s, (r / t.block_rows) * p.grid_cols + cb);
  }
}

MatrixPlan plan_gptq(const GptqTensor& t, std::size_t i0, std::size_t i1, const void* qweight,
                     const MatrixOut& out) {
  static constexpr const char* who = "gptq";
  if (t.bits != 4 && t.bits != 8) fail(ErrorKind::unsupported, "gptq: " + num(t.bits) + "-bit (want 4 or 8)");
  check_scale_dtype(t.scale_dtype, who);
  MatrixPlan p;
  p.pack = 32 / t.bits;
  if (t.in_features % p.pack != 0 || t.out_features % p.pack != 0) {
    bad("gptq: shape [" + num(t.in_features) + ", " + num(t.out_features) + "] not a multiple of " + num(p.pack));
  }
  checked_mul(checked_mul(t.in_features, t.out_features, who), 4, who);
  p.has_g_idx = !t.g_idx.empty();
  if (!p.has_g_idx && (t.group_size == 0 || t.in_features % t.group_size != 0)) {
    bad("gptq: group size " + num(t.group_size) + " does not divide in_features " + num(t.in_features));
  }
  const std::size_t ss = scale_size(t.scale_dtype);
  const std::uint64_t scale_row = checked_mul(t.out_features, ss, who);
  if (scale_row == 0 || t.scales.size() % scale_row != 0 || t.scales.empty()) {
    bad("gptq: scale bytes " + num(t.scales.size()) + " not whole rows of " + num(scale_row));
  }
  p.groups = t.scales.size() / scale_row;
  if (!p.has_g_idx && p.groups != t.in_features / t.group_size) {
    bad("gptq: " + num(p.groups) + " scale rows, want " + num(t.in_features / t.group_size));
  }
  p.zero_words = t.out_features / p.pack;
  if (t.qzeros.size() != checked_mul(checked_mul(p.groups, p.zero_words, who), 4, who)) {
    bad("gptq: qzeros bytes " + num(t.qzeros.size()) + " do not match " + num(p.groups) + " groups");
  }
  if (t.scales.data() == nullptr || t.qzeros.data() == nullptr) bad("gptq: null companion");
  check_range(i0, i1, t.in_features, who);
  if (i0 % p.pack != 0 || i1 % p.pack != 0) bad("gptq: slice [" + num(i0) + ", " + num(i1) + ") not on words");
  p.zero_bias = t.zeros == GptqZeros::v1 ? 1 : 0;
  if (t.zeros != GptqZeros::v1 && t.zeros != GptqZeros::v2) fail(ErrorKind::unsupported, "gptq: zero format");
  p.trivial_g_idx = true;
  if (p.has_g_idx) {
    if (t.g_idx.size() != checked_mul(t.in_features, 4, who)) {
      bad("gptq: g_idx bytes " + num(t.g_idx.size()) + " != 4 * in_features");
    }
    for (std::size_t i = i0; i < i1; ++i) {
      const std::int32_t g = load_i32(t.g_idx.data(), i);
      if (g < 0 || static_cast<std::size_t>(g) >= p.groups) {
        bad("gptq: g_idx[" + num(i) + "] = " + std::to_string(g) + " outside 0.." + num(p.groups));
      }
      if (t.group_size == 0 || static_cast<std::size_t>(g) != i / t.group_size) p.trivial_g_idx = false;
    }
  }
  // Trivial groups must also hold whole words for the word-at-a-time paths.
  if (t.group_size == 0 || t.group_size % p.pack != 0) p.trivial_g_idx = false;
  p.stride = out_stride(out, i0, i1, t.out_features, who);
  if (i1 > i0 && t.out_features > 0 && qweight == nullptr) bad("gptq: null qweight");
  return p;
}

MatrixPlan plan_awq(const AwqTensor& t, std::size_t i0, std::size_t i1, const void* qweight,
                    const MatrixOut& out) {
  static constexpr const char* who = "awq";
  if (t.bits != 4) fail(ErrorKind::unsupported, "awq: " + num(t.bits) + "-bit (only 4-bit GEMM)");
  check_scale_dtype(t.scale_dtype, who);
  MatrixPlan p;
  p.pack = 8;
  if (t.out_features % 8 != 0) bad("awq: out_features " + num(t.out_features) + " not a multiple of 8");
  checked_mul(checked_mul(t.in_features, t.out_features, who), 4, who);
  if (t.group_size == 0 || t.in_features % t.group_size != 0) {
    bad("awq: group size " + num(t.group_size) + " does not divide in_features " + num(t.in_features));
  }
  p.groups = t.in_features / t.group_size;
  p.zero_words = t.out_features / 8;
  const std::size_t ss = scale_size(t.scale_dtype);
  if (t.scales.size() != checked_mul(checked_mul(p.groups, t.out_features, who), ss, who)) {
    bad("awq: scale bytes " + num(t.scales.size()) + " do not match " + num(p.groups) + " groups");
  }
  if (t.qzeros.size() != checked_mul(checked_mul(p.groups, p.zero_words, who), 4, who)) {
    bad("awq: qzeros bytes " + num(t.qzeros.size()) + " do not match " + num(p.groups) + " groups");
  }
  if (p.groups > 0 && t.out_features > 0 && (t.scales.data() == nullptr || t.qzeros.data() == nullptr)) {
    bad("awq: null companion");
  }
  check_range(i0, i1, t.in_features, who);
  p.trivial_g_idx = true;
  p.stride = out_stride(out, i0, i1, t.out_features, who);
  if (i1 > i0 && t.out_features > 0 && qweight == nullptr) bad("awq: null qweight");
  return p;
}

Bnb4Plan plan_bnb4(const Bnb4Tensor& t, std::size_t e0, std::size_t e1, const void* in,
                   const void* out) {
  static constexpr const char* who = "bnb4";
  if (t.block_size == 0 || t.block_size % 2 != 0) bad("bnb4: block size " + num(t.block_size) + " not even");
  checked_mul(t.total_elements, 4, who);
  Bnb4Plan p;
  p.blocks = t.total_elements / t.block_size + (t.total_elements % t.block_size != 0);
  if (t.quant_map.size() != 64 || t.quant_map.data() == nullptr) {
    bad("bnb4: quant_map bytes " + num(t.quant_map.size()) + " (want 16 F32)");
  }
  if (t.double_quant) {
    if (t.absmax.size() != p.blocks) bad("bnb4: absmax bytes " + num(t.absmax.size()) + " != blocks " + num(p.blocks));
    if (t.nested_quant_map.size() != 1024 || t.nested_quant_map.data() == nullptr) {
      bad("bnb4: nested_quant_map bytes " + num(t.nested_quant_map.size()) + " (want 256 F32)");
    }
    if (t.nested_block_size == 0) bad("bnb4: nested block size is zero");
    const std::size_t nested =
        p.blocks / t.nested_block_size + (p.blocks % t.nested_block_size != 0);
    if (t.nested_absmax.size() != checked_mul(nested, 4, who) ||
        (nested > 0 && t.nested_absmax.data() == nullptr)) {
      bad("bnb4: nested_absmax bytes " + num(t.nested_absmax.size()) + ", want " + num(nested) + " F32");
    }
  } else if (t.absmax.size() != checked_mul(p.blocks, 4, who)) {
    bad("bnb4: absmax bytes " + num(t.absmax.size()) + ", want " + num(p.blocks) + " F32");
  }
  if (p.blocks > 0 && t.absmax.data() == nullptr) bad("bnb4: null absmax");
  check_range(e0, e1, t.total_elements, who);
  if (e0 % t.block_size != 0 || (e1 % t.block_size != 0 && e1 != t.total_elements)) {
    bad("bnb4: slice [" + num(e0) + ", " + num(e1) + ") not on blocks of " + num(t.block_size));
  }
  if (e1 > e0 && (in == nullptr || out == nullptr)) bad("bnb4: null buffer");
  return p;
}

float bnb4_absmax(const Bnb4Tensor& t, std::size_t block) noexcept {
  if (!t.double_quant) return load_scale(DType::f32, t.absmax.data(), block);
  const float code = load_scale(DType::f32, t.nested_quant_map.data(), t.absmax[block]);
  const float scale = load_scale(DType::f32, t.nested_absmax.data(), block / t.nested_block_size);
  const float scaled = code * scale;  // separate statements: multiply, then add
  return scaled + t.nested_offset;
}

void plan_bnb_int8(const BnbInt8Tensor& t, std::size_t r0, std::size_t r1, const void* in,
                   const void* out) {
  static constexpr const char* who = "bnb_int8";
  checked_mul(checked_mul(t.rows, t.cols, who), 4, who);
  if (t.scb.size() != checked_mul(t.rows, 4, who) || (t.rows > 0 && t.scb.data() == nullptr)) {
    bad("bnb_int8: SCB bytes " + num(t.scb.size()) + ", want " + num(t.rows) + " F32");
  }
  check_range(r0, r1, t.rows, who);
  if (r1 > r0 && t.cols > 0 && (in == nullptr || out == nullptr)) bad("bnb_int8: null buffer");
}

}  // namespace detail

void validate(const Fp8Tensor& t) {
  static const std::uint8_t dummy = 0;
  detail::plan_fp8(t, 0, 0, &dummy, &dummy);
}
void validate(const GptqTensor& t) {
  static std::uint8_t dummy = 0;
  detail::plan_gptq(t, 0, t.in_features, &dummy,
                    MatrixOut{&dummy, OutType::f32, Orientation::in_out, 0});
}
void validate(const AwqTensor& t) {
  static std::uint8_t dummy = 0;
  detail::plan_awq(t, 0, 0, &dummy, MatrixOut{&dummy, OutType::f32, Orientation::in_out, 0});
}
void validate(const Bnb4Tensor& t) {
  static const std::uint8_t dummy = 0;
  detail::plan_bnb4(t, 0, 0, &dummy, &dummy);
}
void validate(const BnbInt8Tensor& t) {
  static const std::uint8_t dummy = 0;
  detail::plan_bnb_int8(t, 0, 0, &dummy, &dummy);
}

}  // namespace mneme::kernels::quant
