// Helpers shared by the quant kernel tests: a strict fixture reader, the
// implementation loop (scalar + every Highway target), bit comparisons.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/float_bits.hpp"
#include "kernels/quant/common.hpp"
#include "test_support.hpp"

namespace mneme::quant_test {

using Buffer = std::vector<std::uint8_t>;

// Little-endian reader over a fixture; any overrun or leftover is a failure.
class Reader {
 public:
  explicit Reader(const Buffer& b) : b_(b) {}
  void magic(const char* m) {
    need(4);
    REQUIRE(std::memcmp(b_.data() + pos_, m, 4) == 0);
    pos_ += 4;
  }
  std::uint32_t u32() {
    need(4);
    const std::uint32_t v = kernels::load_u32(b_.data() + pos_);
    pos_ += 4;
    return v;
  }
  float f32() { return kernels::f32_from_bits(u32()); }
  kernels::quant::Bytes take(std::size_t n) {
    need(n);
    const kernels::quant::Bytes s(b_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  void end() const { REQUIRE(pos_ == b_.size()); }

 private:
  void need(std::size_t n) const { REQUIRE(n <= b_.size() - pos_); }
  const Buffer& b_;
  std::size_t pos_ = 0;
};

struct Impl {
  std::string name;
  bool simd = false;
};

// Runs body for the scalar reference, then for the Highway kernel forced onto
// each target the CPU supports (checking dispatch really picked it).
template <class F>
void for_each_impl(F&& body) {
  body(Impl{"scalar", false});
  struct Restore {
    ~Restore() { hwy::SetSupportedTargetsForTest(0); }
  } restore;
  const auto targets = hwy::SupportedAndGeneratedTargets();
  REQUIRE(!targets.empty());
  for (const std::int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    REQUIRE(kernels::quant::detail::dispatched_target() == target);
    body(Impl{hwy::TargetName(target), true});
  }
}

inline bool is_nan32(std::uint32_t b) { return (b & 0x7FFFFFFFu) > 0x7F800000u; }
inline bool is_nan16(std::uint16_t b, bool f16) {
  return f16 ? (b & 0x7FFFu) > 0x7C00u : (b & 0x7FFFu) > 0x7F80u;
}

// F32 bit for bit; NaN equals NaN; optionally +0 equals -0.
inline void expect_f32(const Buffer& got, const std::uint8_t* want, std::size_t n, bool zero_sign_free) {
  REQUIRE(got.size() >= 4 * n);
  std::size_t bad = 0, first = n;
  std::uint32_t got_first = 0, want_first = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t a = kernels::load_u32(got.data() + 4 * i);
    const std::uint32_t b = kernels::load_u32(want + 4 * i);
    const bool same = a == b || (is_nan32(a) && is_nan32(b)) ||
                      (zero_sign_free && ((a | b) & 0x7FFFFFFFu) == 0);
    if (!same && bad++ == 0) {
      first = i;
      got_first = a;
      want_first = b;
    }
  }
  INFO("F32 mismatches " << bad << ", first at " << first << ": got 0x" << std::hex << got_first
                         << " want 0x" << want_first);
  CHECK(bad == 0);
}

// BF16 within max_ulp; NaN equals NaN; optionally +0 equals -0.
inline void expect_bf16(const Buffer& got, const std::uint8_t* want, std::size_t n, int max_ulp,
                        bool zero_sign_free) {
  REQUIRE(got.size() >= 2 * n);
  auto ordered = [](std::uint16_t b) {
    const int mag = b & 0x7FFF;
    return (b & 0x8000) ? -mag : mag;
  };
  std::size_t bad = 0, first = n;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t a = kernels::load_u16(got.data() + 2 * i);
    const std::uint16_t b = kernels::load_u16(want + 2 * i);
    bool same = a == b || (is_nan16(a, false) && is_nan16(b, false));
    if (!same && !is_nan16(a, false) && !is_nan16(b, false)) {
      const int d = std::abs(ordered(a) - ordered(b));
      same = d <= max_ulp && (d == 0 ? zero_sign_free || ((a ^ b) & 0x8000) == 0 : true);
    }
    if (!same && bad++ == 0) first = i;
  }
  INFO("BF16 mismatches " << bad << ", first at " << first);
  CHECK(bad == 0);
}

// BF16 output must be our own F32 output rounded with bf16_from_f32.
inline void expect_bf16_of(const Buffer& got16, const Buffer& ours32, std::size_t n) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float f = kernels::f32_from_bits(kernels::load_u32(ours32.data() + 4 * i));
    if (kernels::load_u16(got16.data() + 2 * i) != kernels::bf16_from_f32(f)) ++bad;
  }
  CHECK(bad == 0);
}

// Byte-identical buffers; reports the first difference, never the buffers.
inline void expect_bytes_equal(const Buffer& got, const Buffer& want) {
  REQUIRE(got.size() == want.size());
  std::size_t first = got.size();
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      first = i;
      break;
    }
  }
  INFO("first differing byte " << first << " of " << got.size());
  CHECK(first == got.size());
}

inline Buffer transpose(const std::uint8_t* src, std::size_t rows, std::size_t cols, std::size_t es) {
  Buffer out(rows * cols * es);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      std::memcpy(out.data() + (c * rows + r) * es, src + (r * cols + c) * es, es);
    }
  }
  return out;
}

// Runs scripts/quant_expectations.py (NumPy) into the build tree once and
// returns its output folder; no NumPy is a failure, not a skip.
inline std::filesystem::path numpy_expectations() {
  static const std::filesystem::path dir = [] {
    auto d = mneme::test::scratch_dir("quant-numpy");
    std::string python = "python3";
    if (const char* env = std::getenv("MNEME_PYTHON"); env && *env) {
      python = env;
    } else if (std::filesystem::exists("/usr/bin/python3")) {
      python = "/usr/bin/python3";  // Debian's, which has python3-numpy
    }
    const std::string cmd = python + " '" MNEME_SOURCE_DIR "/scripts/quant_expectations.py' '" +
                            d.string() + "'";
    const int rc = std::system(cmd.c_str());
    INFO(cmd);
    REQUIRE(rc == 0);
    return d;
  }();
  return dir;
}

}  // namespace mneme::quant_test
