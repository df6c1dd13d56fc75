// kernels/convert: the scalar references against independent truth
// (hand-derived bit patterns, the exact value formula, exhaustive sweeps of the
// midpoint of every pair of adjacent F16/BF16 values, a correct-rounding
// property check for F64), then the Highway kernels against the scalar
// references on every target this CPU supports.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <hwy/highway.h>
#include <hwy/targets.h>
#include <catch2/catch.hpp>

#include "kernels/convert/convert.hpp"
#include "kernels/simd/cpu.h"
#include "mneme/error.hpp"

namespace mneme::kernels {
namespace {

using std::uint16_t;
using std::uint32_t;
using std::uint64_t;
using std::uint8_t;

float f32(uint32_t b) {
  return std::bit_cast<float>(b);
}
uint32_t bits_of(float x) {
  return std::bit_cast<uint32_t>(x);
}
double f64(uint64_t b) {
  return std::bit_cast<double>(b);
}
uint64_t bits_of(double x) {
  return std::bit_cast<uint64_t>(x);
}

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

// ---- the narrow formats ------------------------------------------------------

enum class Fmt { f16, bf16 };
constexpr Fmt kFmts[] = {Fmt::f16, Fmt::bf16};

struct FmtInfo {
  uint16_t max_finite;  // largest finite positive code; max_finite + 1 is +Inf
  uint16_t inf;
  uint16_t quiet;   // quiet-NaN bit
  int emax;         // max_finite < 2^(emax + 1)
  int mant_bits;    // explicit significand bits
  int min_sub_exp;  // smallest subnormal = 2^min_sub_exp
};
FmtInfo info(Fmt f) {
  return f == Fmt::f16 ? FmtInfo{0x7BFF, 0x7C00, 0x0200, 15, 10, -24}
                       : FmtInfo{0x7F7F, 0x7F80, 0x0040, 127, 7, -133};
}
const char* fmt_name(Fmt f) {
  return f == Fmt::f16 ? "f16" : "bf16";
}
OutType out_type(Fmt f) {
  return f == Fmt::f16 ? OutType::f16 : OutType::bf16;
}

float widen(Fmt f, uint16_t c) {
  return f == Fmt::f16 ? scalar::f16_to_f32(c) : scalar::bf16_to_f32(c);
}
uint16_t narrow(Fmt f, float x) {
  return f == Fmt::f16 ? scalar::f32_to_f16(x) : scalar::f32_to_bf16(x);
}
uint16_t narrow(Fmt f, double x) {
  return f == Fmt::f16 ? scalar::f64_to_f16(x) : scalar::f64_to_bf16(x);
}

// The value of a finite code from the format's definition alone.
double value_by_formula(Fmt f, uint16_t c) {
  const FmtInfo fi = info(f);
  const int m = c & ((1 << fi.mant_bits) - 1);
  const int e = (c & 0x7FFF) >> fi.mant_bits;
  const double mag = e == 0 ? std::ldexp(m, fi.min_sub_exp)
                            : std::ldexp(1.0 + std::ldexp(m, -fi.mant_bits),
                                         e - (fi.emax));  // bias == emax
  return (c & 0x8000) ? -mag : mag;
}

// ---- midpoint sweeps -----------------------------------------------------------
// For every pair of adjacent finite values c, c+1 (c = max_finite pairs it with
// 2^(emax+1), the overflow boundary, whose code is +Inf = max_finite + 1), the
// exact midpoint and its two neighbours in the source type, with the correctly
// rounded result: below -> c, above -> c+1, the tie -> the even code. "One
// source ulp off a tie" is exactly where rounding twice goes wrong.

template <class T>
struct Case {
  T x;
  uint16_t expect;
};

template <class T>
std::vector<Case<T>> midpoint_cases(Fmt f) {
  const FmtInfo fi = info(f);
  std::vector<Case<T>> cases;
  const T inf = std::numeric_limits<T>::infinity();
  for (uint32_t c = 0; c <= fi.max_finite; ++c) {
    const double lo = value_by_formula(f, static_cast<uint16_t>(c));
    const double hi = c == fi.max_finite ? std::ldexp(1.0, fi.emax + 1)
                                         : value_by_formula(f, static_cast<uint16_t>(c + 1));
    const T mid = static_cast<T>((lo + hi) / 2);  // exact in F32 and F64
    const auto lower = static_cast<uint16_t>(c);
    const auto upper = static_cast<uint16_t>(c + 1);
    for (const T sign : {T(1), T(-1)}) {
      const uint16_t s = sign < 0 ? 0x8000 : 0;
      cases.push_back({sign * std::nextafter(mid, T(0)), static_cast<uint16_t>(s | lower)});
      cases.push_back({sign * mid, static_cast<uint16_t>(s | ((lower & 1) ? upper : lower))});
      cases.push_back({sign * std::nextafter(mid, inf), static_cast<uint16_t>(s | upper)});
    }
  }
  return cases;
}

// ---- scalar references against independent truth ---------------------------------

TEST_CASE("scalar f32 -> bf16 hand-derived bit patterns", "[convert][scalar]") {
  CHECK(scalar::f32_to_bf16(1.0f) == 0x3F80);
  CHECK(scalar::f32_to_bf16(-2.0f) == 0xC000);
  CHECK(scalar::f32_to_bf16(3.14159274f) == 0x4049);      // 0x40490FDB rounds down
  CHECK(scalar::f32_to_bf16(f32(0x3F808000)) == 0x3F80);  // tie -> even (down)
  CHECK(scalar::f32_to_bf16(f32(0x3F818000)) == 0x3F82);  // tie -> even (up)
  CHECK(scalar::f32_to_bf16(f32(0x3F808001)) == 0x3F81);  // just above a tie
  CHECK(scalar::f32_to_bf16(f32(0x3F817FFF)) == 0x3F81);  // just below a tie
  CHECK(scalar::f32_to_bf16(0.0f) == 0x0000);
  CHECK(scalar::f32_to_bf16(-0.0f) == 0x8000);
  CHECK(scalar::f32_to_bf16(f32(0x00000001)) == 0x0000);  // min F32 subnormal
  CHECK(scalar::f32_to_bf16(f32(0x00008000)) == 0x0000);  // tie at 2^-134 -> 0
  CHECK(scalar::f32_to_bf16(f32(0x00008001)) == 0x0001);
  CHECK(scalar::f32_to_bf16(f32(0x00018000)) == 0x0002);  // subnormal tie -> even
  CHECK(scalar::f32_to_bf16(f32(0x007FFFFF)) == 0x0080);  // rounds up to min normal
  CHECK(scalar::f32_to_bf16(f32(0x7F7F7FFF)) == 0x7F7F);  // max bf16, just below tie
  CHECK(scalar::f32_to_bf16(f32(0x7F7F8000)) == 0x7F80);  // tie at the top -> Inf
  CHECK(scalar::f32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);
  CHECK(scalar::f32_to_bf16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(scalar::f32_to_bf16(f32(0x7FC00000)) == 0x7FC0);
  CHECK(scalar::f32_to_bf16(f32(0x7F800001)) == 0x7FC0);  // sNaN: quieted, not Inf
  CHECK(scalar::f32_to_bf16(f32(0x7FFFFFFF)) == 0x7FFF);  // would carry into the sign
  CHECK(scalar::f32_to_bf16(f32(0xFFFFFFFF)) == 0xFFFF);
  CHECK(scalar::f32_to_bf16(f32(0xFF812345)) == 0xFFC1);  // payload top bits kept
}

TEST_CASE("scalar f32 <-> f16 hand-derived bit patterns", "[convert][scalar]") {
  CHECK(scalar::f32_to_f16(1.0f) == 0x3C00);
  CHECK(scalar::f32_to_f16(-2.0f) == 0xC000);
  CHECK(scalar::f32_to_f16(0.1f) == 0x2E66);
  CHECK(scalar::f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(scalar::f32_to_f16(65519.996f) == 0x7BFF);
  CHECK(scalar::f32_to_f16(65520.0f) == 0x7C00);  // tie at the top -> Inf
  CHECK(scalar::f32_to_f16(1e10f) == 0x7C00);
  CHECK(scalar::f32_to_f16(std::ldexp(1.0f, -14)) == 0x0400);  // min normal
  CHECK(scalar::f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);  // min subnormal
  CHECK(scalar::f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);  // tie -> 0
  CHECK(scalar::f32_to_f16(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(scalar::f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);     // tie 1.5 ulp -> even
  CHECK(scalar::f32_to_f16(std::ldexp(1023.5f, -24)) == 0x0400);  // rounds into normal
  CHECK(scalar::f32_to_f16(f32(0x00000001)) == 0x0000);
  CHECK(scalar::f32_to_f16(-0.0f) == 0x8000);
  CHECK(scalar::f32_to_f16(-std::ldexp(1.0f, -30)) == 0x8000);
  CHECK(scalar::f32_to_f16(f32(0x7FC00000)) == 0x7E00);
  CHECK(scalar::f32_to_f16(f32(0x7F800001)) == 0x7E00);  // payload below F16's: quiet only
  CHECK(scalar::f32_to_f16(f32(0xFFFFE000)) == 0xFFFF);

  CHECK(bits_of(scalar::f16_to_f32(0x3C00)) == 0x3F800000);
  CHECK(bits_of(scalar::f16_to_f32(0x0001)) == 0x33800000);  // 2^-24
  CHECK(bits_of(scalar::f16_to_f32(0x03FF)) == 0x387FC000);  // 1023 * 2^-24
  CHECK(bits_of(scalar::f16_to_f32(0x7BFF)) == 0x477FE000);  // 65504
  CHECK(bits_of(scalar::f16_to_f32(0x8000)) == 0x80000000);
  CHECK(bits_of(scalar::f16_to_f32(0xFC00)) == 0xFF800000);
  CHECK(bits_of(scalar::f16_to_f32(0x7C01)) == 0x7FC02000);  // sNaN quieted, payload kept
  CHECK(bits_of(scalar::f16_to_f32(0xFE00)) == 0xFFC00000);
  CHECK(bits_of(scalar::bf16_to_f32(0x7F81)) == 0x7F810000);  // bf16 widening is a shift
}

TEST_CASE("scalar widening equals the format's value formula, all 65536 codes",
          "[convert][scalar]") {
  for (const Fmt f : kFmts) {
    INFO(fmt_name(f));
    const FmtInfo fi = info(f);
    for (uint32_t c = 0; c < 0x10000; ++c) {
      const auto code = static_cast<uint16_t>(c);
      const float w = widen(f, code);
      if ((c & 0x7FFF) > fi.inf) {
        REQUIRE(std::isnan(w));
        REQUIRE(std::signbit(w) == ((c & 0x8000) != 0));
        if (f == Fmt::f16) {
          REQUIRE((bits_of(w) & 0x00400000u) != 0);  // quieted, as F16C does
        } else {
          REQUIRE(bits_of(w) == c << 16);  // BF16 widening is the bare shift
        }
      } else if ((c & 0x7FFF) == fi.inf) {
        REQUIRE(std::isinf(w));
        REQUIRE(std::signbit(w) == ((c & 0x8000) != 0));
      } else {
        REQUIRE(static_cast<double>(w) == value_by_formula(f, code));
        REQUIRE(std::signbit(w) == ((c & 0x8000) != 0));
        // Every finite code survives the round trip.
        REQUIRE(narrow(f, w) == code);
        REQUIRE(narrow(f, static_cast<double>(w)) == code);
      }
    }
  }
}

TEST_CASE("scalar narrowing rounds every midpoint correctly (F32 and F64 sources)",
          "[convert][scalar]") {
  for (const Fmt f : kFmts) {
    INFO(fmt_name(f));
    for (const auto& c : midpoint_cases<float>(f)) {
      INFO("x = " << hex(bits_of(c.x)));
      REQUIRE(narrow(f, c.x) == c.expect);
    }
    for (const auto& c : midpoint_cases<double>(f)) {
      INFO("x = " << hex(bits_of(c.x)));
      REQUIRE(narrow(f, c.x) == c.expect);
    }
  }
}

TEST_CASE("scalar f64 -> f16/bf16 rounds once, never through F32", "[convert][scalar]") {
  // Each x lies one hair off a tie of the narrow format, close enough that the
  // F32 rounding lands exactly on the tie; rounding that tie again goes wrong.
  struct Trap {
    Fmt f;
    double x;
    uint16_t once;   // correctly rounded from the double
    uint16_t twice;  // what rounding through F32 would give
  };
  const Trap traps[] = {
      {Fmt::bf16, 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30), 0x3F81, 0x3F80},
      {Fmt::bf16, 1.0 + std::ldexp(3.0, -8) - std::ldexp(1.0, -30), 0x3F81, 0x3F82},
      {Fmt::bf16, -(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)), 0xBF81, 0xBF80},
      {Fmt::bf16, std::ldexp(1.0, -134) + std::ldexp(1.0, -160), 0x0001, 0x0000},
      {Fmt::bf16, std::ldexp(2.0 - std::ldexp(1.0, -8), 127) - std::ldexp(1.0, 90), 0x7F7F, 0x7F80},
      {Fmt::f16, 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), 0x3C01, 0x3C00},
      {Fmt::f16, std::ldexp(1.0, -25) + std::ldexp(1.0, -60), 0x0001, 0x0000},
      {Fmt::f16, 65520.0 - std::ldexp(1.0, -20), 0x7BFF, 0x7C00},
      {Fmt::f16, -(65520.0 - std::ldexp(1.0, -20)), 0xFBFF, 0xFC00},
  };
  for (const auto& t : traps) {
    INFO(fmt_name(t.f) << " x = " << hex(bits_of(t.x)));
    CHECK(narrow(t.f, t.x) == t.once);
    CHECK(narrow(t.f, static_cast<float>(t.x)) == t.twice);  // the trap is real
  }
  CHECK(scalar::f64_to_bf16(std::ldexp(2.0 - std::ldexp(1.0, -8), 127)) == 0x7F80);  // tie
  CHECK(scalar::f64_to_f16(65520.0) == 0x7C00);
  CHECK(scalar::f64_to_f16(1e300) == 0x7C00);
  CHECK(scalar::f64_to_bf16(-1e300) == 0xFF80);
  CHECK(scalar::f64_to_bf16(f64(0x0000000000000001)) == 0x0000);  // F64 subnormal
  CHECK(scalar::f64_to_f16(-f64(0x000FFFFFFFFFFFFF)) == 0x8000);
  CHECK(scalar::f64_to_f16(std::numeric_limits<double>::infinity()) == 0x7C00);
  CHECK(scalar::f64_to_bf16(f64(0x7FF8000000000000)) == 0x7FC0);
  CHECK(scalar::f64_to_bf16(f64(0x7FF0000000000001)) == 0x7FC0);  // sNaN quieted
  CHECK(scalar::f64_to_bf16(f64(0xFFF5A00000000000)) == 0xFFED);  // top 7 payload bits, quieted
  CHECK(scalar::f64_to_f16(f64(0x7FF5A40000000000)) == 0x7F69);   // top 10 payload bits
  // The NaN rule matches the hardware F64 -> F32 followed by the F32 rule.
  for (const uint64_t nan : {0x7FF0000000000001ull, 0xFFF123456789ABCDull, 0x7FFFFFFFFFFFFFFFull}) {
    CHECK(scalar::f64_to_bf16(f64(nan)) == scalar::f32_to_bf16(static_cast<float>(f64(nan))));
    CHECK(scalar::f64_to_f16(f64(nan)) == scalar::f32_to_f16(static_cast<float>(f64(nan))));
  }
  CHECK(bits_of(scalar::f64_to_f32(1e39)) == 0x7F800000);
  CHECK(bits_of(scalar::f64_to_f32(-std::numeric_limits<double>::infinity())) == 0xFF800000);
  CHECK(bits_of(scalar::f64_to_f32(std::ldexp(1.0, -150))) == 0x00000000);  // tie -> 0
  CHECK(bits_of(scalar::f64_to_f32(std::ldexp(1.5, -150))) == 0x00000001);
}

// Correct rounding as a property: the result is finite and no farther from x
// than either neighbour (ties to the even code), or it is Inf and |x| reaches
// the overflow threshold max_finite + half an ulp.
void check_correctly_rounded(Fmt f, double x) {
  const FmtInfo fi = info(f);
  const uint16_t r = narrow(f, x);
  INFO(fmt_name(f) << " x = " << hex(bits_of(x)) << " -> " << hex(r));
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  REQUIRE((r & 0x8000) == sign);
  const uint16_t mag = r & 0x7FFF;
  if (std::isnan(x)) {
    REQUIRE(mag > fi.inf);
    REQUIRE((mag & fi.quiet) != 0);
    return;
  }
  const long double ax = std::fabs(static_cast<long double>(x));
  const long double threshold = (static_cast<long double>(value_by_formula(f, fi.max_finite)) +
                                 std::ldexp(1.0L, fi.emax + 1)) /
                                2;
  if (mag == fi.inf) {
    REQUIRE(ax >= threshold);
    return;
  }
  REQUIRE(mag < fi.inf);
  REQUIRE(ax < threshold);
  const long double v = value_by_formula(f, mag);
  const long double d = std::fabs(ax - v);
  if (mag + 1 <= fi.max_finite) {
    const long double dn = std::fabs(ax - value_by_formula(f, static_cast<uint16_t>(mag + 1)));
    REQUIRE(d <= dn);
    if (d == dn) REQUIRE((mag & 1) == 0);
  }
  if (mag > 0) {
    const long double dp = std::fabs(ax - value_by_formula(f, static_cast<uint16_t>(mag - 1)));
    REQUIRE(d <= dp);
    if (d == dp) REQUIRE((mag & 1) == 0);
  }
}

TEST_CASE("scalar f64 -> f16/bf16 is correctly rounded on random doubles", "[convert][scalar]") {
  std::mt19937_64 rng(0xF64);
  for (int i = 0; i < 400000; ++i) {
    const uint64_t r = rng();
    double x;
    switch (i % 3) {
      case 0:  // any bit pattern
        x = f64(r);
        break;
      case 1: {  // exponent where the formats live (incl. subnormals and overflow)
        const uint64_t e = 1023 - 160 + (r >> 53) % 300;
        x = f64((r & 0x800FFFFFFFFFFFFFull) | (e << 52));
        break;
      }
      default: {  // a few F64 ulps from a random F16/BF16 midpoint
        const Fmt f = (r & 1) ? Fmt::f16 : Fmt::bf16;
        const auto c = static_cast<uint16_t>((r >> 1) % info(f).max_finite);
        const double mid = (value_by_formula(f, c) + value_by_formula(f, c + 1)) / 2;
        x = f64(bits_of(mid) + static_cast<int64_t>((r >> 20) % 9) - 4);
        break;
      }
    }
    check_correctly_rounded(Fmt::f16, x);
    check_correctly_rounded(Fmt::bf16, x);
  }
}

TEST_CASE("scalar convert covers every pair and rejects other dtypes", "[convert][scalar]") {
  const double in64[3] = {1.0, -0.5, 65504.0};
  uint16_t out16[3];
  scalar::convert(DType::f64, OutType::f16, in64, out16, 3);
  CHECK(out16[0] == 0x3C00);
  CHECK(out16[1] == 0xB800);
  CHECK(out16[2] == 0x7BFF);
  const uint16_t nan16[2] = {0x7C01, 0xFD55};  // copies keep signalling payloads
  uint16_t copy16[2];
  scalar::convert(DType::f16, OutType::f16, nan16, copy16, 2);
  CHECK(copy16[0] == 0x7C01);
  CHECK(copy16[1] == 0xFD55);
  CHECK_THROWS_AS(scalar::convert(DType::i32, OutType::f32, in64, out16, 1), mneme::Error);
  CHECK_THROWS_AS(scalar::convert(DType::f8_e4m3, OutType::f32, in64, out16, 1), mneme::Error);
}

// ---- the Highway kernels against the scalar references ---------------------------

struct Pair {
  DType from;
  OutType to;
};
constexpr Pair kPairs[] = {
    {DType::f64, OutType::f32},  {DType::f64, OutType::f16},  {DType::f64, OutType::bf16},
    {DType::f32, OutType::f32},  {DType::f32, OutType::f16},  {DType::f32, OutType::bf16},
    {DType::f16, OutType::f32},  {DType::f16, OutType::f16},  {DType::f16, OutType::bf16},
    {DType::bf16, OutType::f32}, {DType::bf16, OutType::f16}, {DType::bf16, OutType::bf16},
};

std::string pair_name(Pair p) {
  return std::string(dtype_name(p.from)) + "->" + std::string(dtype_name(to_dtype(p.to)));
}

// Runs the body once per Highway target the CPU supports (and the library was
// built for), with dispatch pinned to it; restores normal dispatch afterwards.
template <class Body>
void for_each_target(Body&& body) {
  struct Restore {
    ~Restore() { hwy::SetSupportedTargetsForTest(0); }
  } restore;
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  REQUIRE(!targets.empty());
  for (const int64_t t : targets) {
    hwy::SetSupportedTargetsForTest(t);
    INFO("target " << hwy::TargetName(t));
    body();
  }
}

// Buffers with a known misalignment off a 64-byte boundary and guard bytes
// around the output, to catch any write outside [out, out + n).
constexpr std::size_t kGuard = 64;
constexpr uint8_t kGuardByte = 0xA5;

struct Buffer {
  std::vector<uint8_t> storage;
  uint8_t* p;
  Buffer(std::size_t bytes, std::size_t misalign, uint8_t fill)
      : storage(bytes + 2 * kGuard + 128, fill) {
    const auto addr = reinterpret_cast<std::uintptr_t>(storage.data()) + kGuard;
    p = storage.data() + kGuard + ((64 - addr % 64) % 64) + misalign;
  }
};

// "" when the dispatched kernel reproduces `expect` exactly and leaves the
// guards alone; otherwise a description of the first difference.
std::string run_and_compare(Pair p, const std::vector<uint8_t>& input,
                            const std::vector<uint8_t>& expect, std::size_t in_misalign,
                            std::size_t out_misalign) {
  const std::size_t isz = dtype_size(p.from);
  const std::size_t osz = out_size(p.to);
  const std::size_t n = input.size() / isz;
  Buffer in(input.size(), in_misalign, 0);
  if (!input.empty()) std::memcpy(in.p, input.data(), input.size());
  Buffer out(n * osz, out_misalign, kGuardByte);
  const ConvertFn fn = convert_fn(p.from, p.to);
  if (fn == nullptr) return "no kernel";
  fn(in.p, out.p, n);
  for (std::size_t i = 0; i < n; ++i) {
    if (std::memcmp(out.p + i * osz, expect.data() + i * osz, osz) != 0) {
      uint64_t x = 0, got = 0, want = 0;
      std::memcpy(&x, input.data() + i * isz, isz);
      std::memcpy(&got, out.p + i * osz, osz);
      std::memcpy(&want, expect.data() + i * osz, osz);
      return pair_name(p) + " n=" + std::to_string(n) + " i=" + std::to_string(i) +
             " in=" + hex(x) + " got=" + hex(got) + " want=" + hex(want);
    }
  }
  const uint8_t* first = out.storage.data();
  const uint8_t* last = out.storage.data() + out.storage.size();
  const uint8_t* begin = out.p;
  const uint8_t* end = out.p + n * osz;
  const bool guards_ok = std::all_of(first, begin, [](uint8_t b) { return b == kGuardByte; }) &&
                         std::all_of(end, last, [](uint8_t b) { return b == kGuardByte; });
  if (!guards_ok) return pair_name(p) + " n=" + std::to_string(n) + " wrote outside the output";
  return "";
}

std::vector<uint8_t> scalar_reference(Pair p, const std::vector<uint8_t>& input) {
  const std::size_t n = input.size() / dtype_size(p.from);
  std::vector<uint8_t> out(n * out_size(p.to));
  scalar::convert(p.from, p.to, input.data(), out.data(), n);
  return out;
}

template <class T>
void append(std::vector<uint8_t>& v, T x) {
  const auto at = v.size();
  v.resize(at + sizeof(T));
  std::memcpy(v.data() + at, &x, sizeof(T));
}

// Random inputs biased towards what is hard: raw bit patterns (NaN payloads,
// subnormals, Inf), ties and near-ties of both narrow formats, and exponents in
// the narrow formats' range (overflow and underflow boundaries).
void append_random(DType from, std::mt19937_64& rng, std::size_t n, std::vector<uint8_t>& v) {
  static constexpr uint32_t kLow16[] = {0x8000, 0x7FFF, 0x8001, 0x0000, 0xFFFF, 0x7FFE};
  static constexpr uint32_t kLow13[] = {0x1000, 0x0FFF, 0x1001, 0x0000, 0x1FFF};
  for (std::size_t i = 0; i < n; ++i) {
    const uint64_t r = rng();
    switch (from) {
      case DType::f16:
      case DType::bf16:
        append(v, static_cast<uint16_t>(r));
        break;
      case DType::f32: {
        auto b = static_cast<uint32_t>(r);
        switch ((r >> 32) % 4) {
          case 0:
            break;
          case 1:
            b = (b & ~0xFFFFu) | kLow16[(r >> 40) % 6];
            break;
          case 2: {  // F16 range (subnormals to overflow), near an F16 rounding point
            const uint32_t e = 100 + (r >> 40) % 45;
            b = (b & 0x807FE000u) | (e << 23) | kLow13[(r >> 48) % 5];
            break;
          }
          default: {  // low exponent bits only: tiny values near BF16 subnormal ties
            b = (b & 0x80FFFFFFu) & ~0x7F000000u;
            break;
          }
        }
        append(v, f32(b));
        break;
      }
      case DType::f64: {
        uint64_t b = r;
        switch (i % 4) {
          case 0:
            break;
          case 1: {
            const uint64_t e = 1023 - 160 + (r >> 53) % 300;
            b = (r & 0x800FFFFFFFFFFFFFull) | (e << 52);
            break;
          }
          default: {  // near a midpoint of F16 or BF16: the double-rounding traps
            const Fmt f = (r & 1) ? Fmt::f16 : Fmt::bf16;
            const auto c = static_cast<uint16_t>((r >> 1) % (info(f).max_finite + 1u));
            const double hi = c == info(f).max_finite ? std::ldexp(1.0, info(f).emax + 1)
                                                      : value_by_formula(f, c + 1);
            const double mid = (value_by_formula(f, c) + hi) / 2;
            const int64_t off = static_cast<int64_t>((r >> 20) % 9) - 4;
            b = (bits_of(mid) + off) | ((r >> 63) << 63);
            break;
          }
        }
        append(v, f64(b));
        break;
      }
      default:
        FAIL("unexpected dtype");
    }
  }
}

// Every special value of every format, expressed in `from`.
std::vector<uint8_t> edge_values(DType from) {
  std::vector<uint8_t> v;
  const uint16_t codes16[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x007F, 0x0080,
                              0x3C00, 0x3F80, 0x7BFF, 0x7F7F, 0x7C00, 0xFC00, 0x7F80, 0xFF80,
                              0x7C01, 0x7DFF, 0x7E00, 0x7FFF, 0xFFFF, 0x7F81, 0x7FC0, 0xFE01};
  const uint32_t codes32[] = {
      0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x00008000,
      0x00008001, 0x00018000, 0x33000000, 0x33000001, 0x337FFFFF, 0x33800000, 0x387FC000,
      0x387FEFFF, 0x387FF000, 0x38800000, 0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001,
      0x3F817FFF, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x7F7F7FFF, 0x7F7F8000,
      0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7F800001, 0x7FBFFFFF, 0x7FC00000,
      0x7FFFFFFF, 0xFFFFFFFF, 0xFF812345, 0x7F802000, 0x7F801FFF};
  const uint64_t codes64[] = {
      0x0000000000000000, 0x8000000000000000, 0x0000000000000001, 0x800FFFFFFFFFFFFF,
      0x0010000000000000, 0x3FF0000000000000, 0x47EFFFFFE0000000, 0x47EFFFFFF0000000,
      0x47EFFFFFEFFFFFFF, 0x47F0000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF,
      0x7FF0000000000000, 0xFFF0000000000000, 0x7FF0000000000001, 0x7FF8000000000000,
      0xFFFFFFFFFFFFFFFF, 0x7FF5A40000000000, 0x36A0000000000000, 0x36A0000000000001,
      0x3690000000000001, 0x3E60000000000001, 0x3E70000000000000, 0x40EFFE0000000000,
      0x40EFFDFFFFFFFFFF, 0x40EFFC0000000000};
  switch (from) {
    case DType::f16:
    case DType::bf16:
      for (auto c : codes16) append(v, c);
      break;
    case DType::f32:
      for (auto c : codes32) append(v, f32(c));
      for (auto c : codes16) append(v, scalar::f16_to_f32(c));
      for (auto c : codes16) append(v, scalar::bf16_to_f32(c));
      break;
    case DType::f64:
      for (auto c : codes64) append(v, f64(c));
      for (auto c : codes32) append(v, static_cast<double>(f32(c)));
      for (auto c : codes16) append(v, static_cast<double>(scalar::f16_to_f32(c)));
      for (auto c : codes16) append(v, static_cast<double>(scalar::bf16_to_f32(c)));
      break;
    default:
      FAIL("unexpected dtype");
  }
  return v;
}

TEST_CASE("the dispatch targets under test", "[convert][simd][targets]") {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  REQUIRE(!targets.empty());
  std::string names;
  for (const int64_t t : targets) names += std::string(" ") + hwy::TargetName(t);
  WARN("Highway targets supported and compiled:" << names);
}

TEST_CASE("convert_fn covers the float pairs and nothing else", "[convert][simd]") {
  for (const Pair p : kPairs) CHECK(convert_fn(p.from, p.to) != nullptr);
  for (const DType t : {DType::bool_, DType::u8, DType::i8, DType::u16, DType::i16, DType::u32,
                        DType::i32, DType::u64, DType::i64, DType::f8_e4m3, DType::f8_e5m2}) {
    CHECK(convert_fn(t, OutType::f32) == nullptr);
    CHECK(convert_fn(t, OutType::bf16) == nullptr);
  }
}

TEST_CASE("kernels match scalar on edge values", "[convert][simd]") {
  for (const Pair p : kPairs) {
    const auto input = edge_values(p.from);
    const auto expect = scalar_reference(p, input);
    for_each_target([&] { REQUIRE(run_and_compare(p, input, expect, 0, 0) == ""); });
  }
}

TEST_CASE("kernels match scalar exhaustively on all 65536 F16/BF16 inputs", "[convert][simd]") {
  std::vector<uint8_t> all;
  for (uint32_t c = 0; c < 0x10000; ++c) append(all, static_cast<uint16_t>(c));
  for (const Pair p : kPairs) {
    if (p.from != DType::f16 && p.from != DType::bf16) continue;
    const auto expect = scalar_reference(p, all);
    for_each_target([&] { REQUIRE(run_and_compare(p, all, expect, 0, 0) == ""); });
  }
}

TEST_CASE("kernels round every midpoint correctly (F32 and F64 sources)", "[convert][simd]") {
  for (const Fmt f : kFmts) {
    for (const DType from : {DType::f32, DType::f64}) {
      std::vector<uint8_t> input;
      std::vector<uint8_t> expect;
      if (from == DType::f32) {
        for (const auto& c : midpoint_cases<float>(f)) append(input, c.x), append(expect, c.expect);
      } else {
        for (const auto& c : midpoint_cases<double>(f))
          append(input, c.x), append(expect, c.expect);
      }
      const Pair p{from, out_type(f)};
      // The independent expectation, not only the scalar reference.
      REQUIRE(scalar_reference(p, input) == expect);
      for_each_target([&] { REQUIRE(run_and_compare(p, input, expect, 0, 0) == ""); });
    }
  }
}

TEST_CASE("kernels match scalar on millions of random inputs", "[convert][simd]") {
  std::mt19937_64 rng(20240601);
  // Not a multiple of any vector, and above the 4 MiB of output from which the
  // kernels switch to non-temporal stores (after aligning the output).
  const std::size_t n = (std::size_t{1} << 21) + 13;
  for (const Pair p : kPairs) {
    std::vector<uint8_t> input;
    append_random(p.from, rng, n, input);
    const auto expect = scalar_reference(p, input);
    for_each_target([&] {
      // Output misaligned by 1: regular stores throughout. By 4: an unaligned
      // head, then streaming. By 0: streaming from the first element.
      REQUIRE(run_and_compare(p, input, expect, 3, 1) == "");
      REQUIRE(run_and_compare(p, input, expect, 1, 4) == "");
      REQUIRE(run_and_compare(p, input, expect, 0, 0) == "");
    });
  }
}

TEST_CASE("kernels narrow every F32 subnormal, NaN and Inf to BF16 as the reference does",
          "[convert][simd][bf16]") {
  // Issue 15, item 3: on a CPU with AVX512_BF16 the AVX-512 targets narrow
  // with VCVTNE2PS2BF16, which reads subnormals as zero: a vector holding one
  // must take the integer path. Every subnormal, NaN and Inf of both signs,
  // in order (vectors of one kind) and shuffled among normal values (vectors
  // mixing them), plus the smallest and largest normal exponents.
  WARN("AVX512_BF16 narrowing " << (kernels::simd::kHasAvx512Bf16 ? "in use" : "not available"));
  const Pair p{DType::f32, OutType::bf16};
  std::mt19937 rng(15);
  for (const std::uint32_t exponent : {0u, 255u, 1u, 254u}) {
    for (const std::uint32_t sign : {0u, 1u}) {
      for (std::uint32_t from = 0; from < (1u << 23); from += 1u << 20) {
        std::vector<std::uint32_t> bits;
        for (std::uint32_t m = from; m < from + (1u << 20); ++m)
          bits.push_back(sign << 31 | exponent << 23 | m);
        if (exponent == 0 && from == 0) {  // mixed vectors: subnormals among normal values
          for (std::size_t k = 0; k < bits.size(); k += 3)
            bits[k] = 0x3F800000u + static_cast<std::uint32_t>(k);
          std::shuffle(bits.begin(), bits.end(), rng);
        }
        std::vector<uint8_t> input(bits.size() * 4);
        std::memcpy(input.data(), bits.data(), input.size());
        const auto expect = scalar_reference(p, input);
        for_each_target([&] {
          INFO("exponent " << exponent << " sign " << sign << " from " << from);
          REQUIRE(run_and_compare(p, input, expect, 0, 0) == "");
        });
      }
    }
  }
}

TEST_CASE("kernels handle every length 0..100 at every misalignment", "[convert][simd]") {
  std::mt19937_64 rng(7);
  for (const Pair p : kPairs) {
    for (std::size_t n = 0; n <= 100; ++n) {
      std::vector<uint8_t> input;
      append_random(p.from, rng, n, input);
      const auto expect = scalar_reference(p, input);
      for_each_target([&] {
        for (const std::size_t in_mis : {0, 1, 2, 4, 7}) {
          for (const std::size_t out_mis : {0, 1, 2, 3}) {
            INFO("in+" << in_mis << " out+" << out_mis);
            REQUIRE(run_and_compare(p, input, expect, in_mis, out_mis) == "");
          }
        }
      });
    }
  }
}

TEST_CASE("kernels convert F64 overflow to Inf on every target", "[convert][simd]") {
  // Highway's own SCALAR/EMU128 DemoteTo would clamp these to FLT_MAX.
  const double in[4] = {1e300, -std::numeric_limits<double>::infinity(), 3.4028235677973366e38,
                        -1e39};
  float out[4];
  uint16_t out16[4];
  for_each_target([&] {
    convert_fn(DType::f64, OutType::f32)(in, out, 4);
    CHECK(bits_of(out[0]) == 0x7F800000);
    CHECK(bits_of(out[1]) == 0xFF800000);
    CHECK(bits_of(out[2]) == 0x7F800000);  // FLT_MAX + half ulp: tie to even -> Inf
    CHECK(bits_of(out[3]) == 0xFF800000);
    convert_fn(DType::f64, OutType::bf16)(in, out16, 4);
    CHECK(out16[0] == 0x7F80);
    CHECK(out16[1] == 0xFF80);
    CHECK(out16[2] == 0x7F80);
    CHECK(out16[3] == 0xFF80);
  });
}

}  // namespace
}  // namespace mneme::kernels
