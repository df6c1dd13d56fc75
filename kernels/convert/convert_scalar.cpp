// Scalar references for kernels/convert. The F32/F16/BF16 rules are the shared
// helpers of kernels/float_bits.hpp; F64 -> F16/BF16 is rounded here directly
// from the double's bits with integer arithmetic, deliberately unlike the
// SIMD path (round-to-odd into F32), so the differential tests compare two
// independent derivations.
#include <bit>
#include <cstring>
#include <string>

#include "kernels/convert/convert.hpp"
#include "kernels/float_bits.hpp"
#include "mneme/error.hpp"

namespace mneme::kernels::scalar {
namespace {

// A binary float format narrower than F64: `mant_bits` explicit significand
// bits and exponent bias `bias` (emin = 1 - bias, all-ones exponent = Inf/NaN).
struct Narrow {
  int mant_bits;
  int exp_bits;
  int bias;
};
constexpr Narrow kBF16{7, 8, 127};
constexpr Narrow kF16{10, 5, 15};

// Round the double with bits `b` to format `f`, round to nearest even.
std::uint16_t round_f64(std::uint64_t b, Narrow f) noexcept {
  const auto sign = static_cast<std::uint16_t>((b >> 63) << 15);
  const std::uint64_t biased = (b >> 52) & 0x7FFu;
  const std::uint64_t frac = b & ((std::uint64_t{1} << 52) - 1);
  const std::uint32_t inf = ((1u << f.exp_bits) - 1u) << f.mant_bits;
  if (biased == 0x7FF) {
    if (frac == 0) return static_cast<std::uint16_t>(sign | inf);
    // NaN: the top payload bits, quiet bit set (what F64 -> F32 -> narrow gives).
    const auto payload = static_cast<std::uint32_t>(frac >> (52 - f.mant_bits));
    return static_cast<std::uint16_t>(sign | inf | payload | (1u << (f.mant_bits - 1)));
  }
  // F64 subnormals (< 2^-1022) are far below half the smallest subnormal of
  // either target format (2^-134 for BF16, 2^-25 for F16): they round to zero.
  if (biased == 0) return sign;
  const int e = static_cast<int>(biased) - 1023;  // value = m * 2^(e - 52)
  const std::uint64_t m = frac | (std::uint64_t{1} << 52);
  const int emin = 1 - f.bias;
  // The target's quantum at this magnitude is 2^(max(e, emin) - mant_bits).
  const int shift = 52 - f.mant_bits + (e < emin ? emin - e : 0);
  std::uint64_t q;  // value in quanta, rounded to nearest even
  if (shift > 54) {
    q = 0;  // below half a quantum: m < 2^53 <= half
  } else {
    const std::uint64_t half = std::uint64_t{1} << (shift - 1);
    const std::uint64_t rem = m & ((std::uint64_t{1} << shift) - 1);
    q = m >> shift;
    if (rem > half || (rem == half && (q & 1))) ++q;
  }
  // Normal results: q carries the implicit bit, so adding it to the exponent
  // field one below lets a round-up into the next binade carry naturally.
  std::int64_t code = static_cast<std::int64_t>(q);
  if (e >= emin) code += static_cast<std::int64_t>(e + f.bias - 1) << f.mant_bits;
  if (code >= static_cast<std::int64_t>(inf)) return static_cast<std::uint16_t>(sign | inf);
  return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(code));
}

template <class In, class Out, class Fn>
void convert_each(const void* in, void* out, std::size_t n, Fn fn) {
  const auto* src = static_cast<const unsigned char*>(in);
  auto* dst = static_cast<unsigned char*>(out);
  for (std::size_t i = 0; i < n; ++i) {
    In x;
    std::memcpy(&x, src + i * sizeof(In), sizeof(In));
    const Out y = fn(x);
    std::memcpy(dst + i * sizeof(Out), &y, sizeof(Out));
  }
}

template <class In>
void convert_from(OutType to, const void* in, void* out, std::size_t n, float (*widen)(In)) {
  switch (to) {
    case OutType::f32:
      return convert_each<In, float>(in, out, n, widen);
    case OutType::f16:
      return convert_each<In, std::uint16_t>(in, out, n,
                                             [&](In x) { return f16_from_f32(widen(x)); });
    case OutType::bf16:
      return convert_each<In, std::uint16_t>(in, out, n,
                                             [&](In x) { return bf16_from_f32(widen(x)); });
  }
}

}  // namespace

std::uint16_t f32_to_bf16(float x) noexcept {
  return bf16_from_f32(x);
}
float bf16_to_f32(std::uint16_t x) noexcept {
  return f32_from_bf16(x);
}
std::uint16_t f32_to_f16(float x) noexcept {
  return f16_from_f32(x);
}
float f16_to_f32(std::uint16_t x) noexcept {
  return f32_from_f16(x);
}
// IEEE 754 (Annex F, which GCC/Clang on x86 and ARM follow): out-of-range
// doubles become +-Inf, NaN stays NaN with its top payload bits, quieted.
float f64_to_f32(double x) noexcept {
  return static_cast<float>(x);
}
std::uint16_t f64_to_bf16(double x) noexcept {
  return round_f64(std::bit_cast<std::uint64_t>(x), kBF16);
}
std::uint16_t f64_to_f16(double x) noexcept {
  return round_f64(std::bit_cast<std::uint64_t>(x), kF16);
}
std::uint16_t f16_to_bf16(std::uint16_t x) noexcept {
  return bf16_from_f32(f32_from_f16(x));
}
std::uint16_t bf16_to_f16(std::uint16_t x) noexcept {
  return f16_from_f32(f32_from_bf16(x));
}

void convert(DType from, OutType to, const void* in, void* out, std::size_t n) {
  if (from == to_dtype(to)) {  // a copy keeps every bit, NaN payloads included
    if (n != 0) std::memcpy(out, in, n * out_size(to));
    return;
  }
  switch (from) {
    case DType::f32:
      return convert_from<float>(to, in, out, n, [](float x) { return x; });
    case DType::f16:
      return convert_from<std::uint16_t>(to, in, out, n, f32_from_f16);
    case DType::bf16:
      return convert_from<std::uint16_t>(to, in, out, n, f32_from_bf16);
    case DType::f64:
      switch (to) {
        case OutType::f32:
          return convert_each<double, float>(in, out, n, f64_to_f32);
        case OutType::f16:
          return convert_each<double, std::uint16_t>(in, out, n, f64_to_f16);
        case OutType::bf16:
          return convert_each<double, std::uint16_t>(in, out, n, f64_to_bf16);
      }
      break;
    default:
      break;
  }
  fail(ErrorKind::unsupported,
       "convert: no float conversion from " + std::string(dtype_name(from)));
}

}  // namespace mneme::kernels::scalar
