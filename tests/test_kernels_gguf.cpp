// GGUF block kernels: golden fixtures (fixtures/gguf, fixtures/ollama) through
// the scalar reference and the Highway kernel on every supported target, the
// IQ grid tables, and random differential tests scalar vs Highway.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/float_bits.hpp"
#include "kernels/gguf/gguf_kernels.hpp"
#include "kernels/gguf/gguf_tables.hpp"
#include "mneme/error.hpp"
#include "test_support.hpp"

namespace gg = mneme::kernels::gguf;
using mneme::OutType;
using mneme::kernels::bf16_from_f32;
using mneme::kernels::f16_from_f32;

namespace {

const gg::GgmlType kQuantTypes[] = {
    gg::GgmlType::Q4_0,    gg::GgmlType::Q4_1,   gg::GgmlType::Q5_0,  gg::GgmlType::Q5_1,
    gg::GgmlType::Q8_0,    gg::GgmlType::Q8_1,   gg::GgmlType::Q2_K,  gg::GgmlType::Q3_K,
    gg::GgmlType::Q4_K,    gg::GgmlType::Q5_K,   gg::GgmlType::Q6_K,  gg::GgmlType::Q8_K,
    gg::GgmlType::IQ2_XXS, gg::GgmlType::IQ2_XS, gg::GgmlType::IQ2_S, gg::GgmlType::IQ3_XXS,
    gg::GgmlType::IQ3_S,   gg::GgmlType::IQ1_S,  gg::GgmlType::IQ1_M, gg::GgmlType::IQ4_NL,
    gg::GgmlType::IQ4_XS,  gg::GgmlType::TQ1_0,  gg::GgmlType::TQ2_0, gg::GgmlType::MXFP4,
};

std::uint32_t u32_at(const std::vector<std::uint8_t>& b, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

std::string type_label(gg::GgmlType t) {
  return std::string(gg::type_name(static_cast<std::uint32_t>(t)));
}

// Every Highway target this binary was built for and this CPU runs.
std::vector<std::int64_t> supported_targets() {
  std::vector<std::int64_t> out;
  for (const std::int64_t t : hwy::SupportedAndGeneratedTargets()) out.push_back(t);
  return out;
}

// Runs f once per supported target with dispatch pinned to it.
template <class F>
void for_each_target(F&& f) {
  for (const std::int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    f(std::string(hwy::TargetName(target)));
  }
  hwy::SetSupportedTargetsForTest(0);
}

using Dequant = void (*)(gg::GgmlType, const std::byte*, std::size_t, OutType, void*);

std::vector<std::uint16_t> run16(Dequant fn, gg::GgmlType t, const std::uint8_t* raw,
                                 std::size_t n_blocks, std::size_t n, OutType out) {
  std::vector<std::uint16_t> v(n);
  fn(t, reinterpret_cast<const std::byte*>(raw), n_blocks, out, v.data());
  return v;
}
std::vector<std::uint32_t> run32(Dequant fn, gg::GgmlType t, const std::uint8_t* raw,
                                 std::size_t n_blocks, std::size_t n) {
  std::vector<std::uint32_t> v(n);
  fn(t, reinterpret_cast<const std::byte*>(raw), n_blocks, OutType::f32, v.data());
  return v;
}

// Index of the first difference, or -1.
template <class T>
long first_diff(const std::vector<T>& a, const T* b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return static_cast<long>(i);
  }
  return -1;
}

bool is_nan32(std::uint32_t b) {
  return (b & 0x7FFFFFFFu) > 0x7F800000u;
}
bool is_nan16(std::uint16_t b, OutType t) {
  return t == OutType::bf16 ? (b & 0x7FFFu) > 0x7F80u : (b & 0x7FFFu) > 0x7C00u;
}

// Bits equal, or both NaN: NaN sign and payload depend on operand order and on
// whether the compiler turns a multiply by -1 into a sign flip.
long first_mismatch32(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && !(is_nan32(a[i]) && is_nan32(b[i]))) return static_cast<long>(i);
  }
  return -1;
}
long first_mismatch16(const std::vector<std::uint16_t>& a, const std::vector<std::uint16_t>& b,
                      OutType t) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && !(is_nan16(a[i], t) && is_nan16(b[i], t))) return static_cast<long>(i);
  }
  return -1;
}

struct Fixture {
  std::string name;
  std::uint32_t type_id = 0;
  std::size_t n_elements = 0;
  std::vector<std::uint8_t> raw;
  std::vector<std::uint16_t> bf16;  // golden
  std::vector<std::uint32_t> f32;   // golden; empty for the ollama layout
};

// Checks one fixture's goldens against `fn` (the scalar reference or the
// dispatched Highway kernel); `where` names the path in failure messages.
void check_fixture(const Fixture& fx, Dequant fn, const std::string& where) {
  INFO(fx.name << " via " << where);
  const auto info = gg::block_info(fx.type_id);
  REQUIRE(info.has_value());
  const auto t = static_cast<gg::GgmlType>(fx.type_id);
  const std::size_t n_blocks = fx.n_elements / info->elements;

  const auto bf16 = run16(fn, t, fx.raw.data(), n_blocks, fx.n_elements, OutType::bf16);
  CHECK(first_diff(bf16, fx.bf16.data()) == -1);

  const auto f32 = run32(fn, t, fx.raw.data(), n_blocks, fx.n_elements);
  if (!fx.f32.empty()) CHECK(first_diff(f32, fx.f32.data()) == -1);

  // No golden for F16: our own F32 narrowed with f16_from_f32.
  const auto f16 = run16(fn, t, fx.raw.data(), n_blocks, fx.n_elements, OutType::f16);
  std::vector<std::uint16_t> want(fx.n_elements);
  for (std::size_t i = 0; i < want.size(); ++i) {
    want[i] = f16_from_f32(std::bit_cast<float>(f32[i]));
  }
  CHECK(first_diff(f16, want.data()) == -1);
}

// Parses an AMNG (v2) file; fails the test on anything unexpected.
Fixture load_amng(const std::filesystem::path& path) {
  Fixture fx;
  fx.name = path.filename().string();
  const auto bytes = mneme::test::read_file(path);
  INFO(fx.name);
  REQUIRE(bytes.size() >= 28);
  REQUIRE(std::memcmp(bytes.data(), "AMNG", 4) == 0);
  REQUIRE(u32_at(bytes, 4) == 2);
  fx.type_id = u32_at(bytes, 8);
  fx.n_elements = u32_at(bytes, 12);
  const std::size_t raw_len = u32_at(bytes, 16);
  const std::size_t bf16_len = u32_at(bytes, 20);
  const std::size_t f32_len = u32_at(bytes, 24);
  REQUIRE(bytes.size() == 28 + raw_len + bf16_len + f32_len);
  const auto info = gg::block_info(fx.type_id);
  REQUIRE(info.has_value());  // an unknown type id is a failure, not a skip
  REQUIRE(gg::is_quantized(fx.type_id));
  REQUIRE(fx.n_elements % info->elements == 0);
  REQUIRE(raw_len == fx.n_elements / info->elements * info->bytes);
  REQUIRE(bf16_len == fx.n_elements * 2);
  REQUIRE(f32_len == fx.n_elements * 4);
  fx.raw.assign(bytes.begin() + 28, bytes.begin() + 28 + static_cast<long>(raw_len));
  fx.bf16.resize(fx.n_elements);
  std::memcpy(fx.bf16.data(), bytes.data() + 28 + raw_len, bf16_len);
  fx.f32.resize(fx.n_elements);
  std::memcpy(fx.f32.data(), bytes.data() + 28 + raw_len + bf16_len, f32_len);
  return fx;
}

// Parses the older Ollama layout: type, n_elements, raw_len, golden_len (BF16).
Fixture load_ollama(const std::filesystem::path& path) {
  Fixture fx;
  fx.name = path.filename().string();
  const auto bytes = mneme::test::read_file(path);
  INFO(fx.name);
  REQUIRE(bytes.size() >= 16);
  fx.type_id = u32_at(bytes, 0);
  fx.n_elements = u32_at(bytes, 4);
  const std::size_t raw_len = u32_at(bytes, 8);
  const std::size_t golden_len = u32_at(bytes, 12);
  REQUIRE(bytes.size() == 16 + raw_len + golden_len);
  const auto info = gg::block_info(fx.type_id);
  REQUIRE(info.has_value());
  REQUIRE(gg::is_quantized(fx.type_id));
  REQUIRE(fx.n_elements % info->elements == 0);
  REQUIRE(raw_len == fx.n_elements / info->elements * info->bytes);
  REQUIRE(golden_len == fx.n_elements * 2);
  fx.raw.assign(bytes.begin() + 16, bytes.begin() + 16 + static_cast<long>(raw_len));
  fx.bf16.resize(fx.n_elements);
  std::memcpy(fx.bf16.data(), bytes.data() + 16 + raw_len, golden_len);
  return fx;
}

void check_all_paths(const Fixture& fx) {
  check_fixture(fx, gg::scalar::dequantize, "scalar");
  for_each_target([&](const std::string& target) { check_fixture(fx, gg::dequantize, target); });
}

}  // namespace

TEST_CASE("gguf: type table", "[gguf]") {
  CHECK(gg::block_info(2)->elements == 32);
  CHECK(gg::block_info(2)->bytes == 18);
  CHECK(gg::block_info(12)->bytes == 144);
  CHECK(gg::block_info(39)->bytes == 17);
  CHECK(gg::block_info(30)->bytes == 2);
  for (std::uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u, 0xFFFFFFFFu}) {
    CHECK_FALSE(gg::block_info(id).has_value());
    CHECK(gg::type_name(id).empty());
    CHECK_FALSE(gg::is_quantized(id));
  }
  CHECK(gg::type_name(29) == "IQ1_M");
  for (std::uint32_t id : {0u, 1u, 24u, 25u, 26u, 27u, 28u, 30u}) {
    CHECK(gg::block_info(id)->elements == 1);
    CHECK_FALSE(gg::is_quantized(id));
  }
  for (auto t : kQuantTypes) CHECK(gg::is_quantized(static_cast<std::uint32_t>(t)));
  std::uint16_t out[32];
  const std::byte in[4] = {};
  CHECK_THROWS_AS(gg::dequantize(gg::GgmlType::F32, in, 1, OutType::f32, out), mneme::Error);
  CHECK_THROWS_AS(gg::scalar::dequantize(gg::GgmlType::BF16, in, 1, OutType::f32, out),
                  mneme::Error);
}

TEST_CASE("gguf: IQ grid tables decode as ggml's", "[gguf]") {
  namespace d = mneme::kernels::gguf::detail;
  // Spot values from ggml-common.h (little-endian u64 / u32 rows).
  auto row64 = [](const auto& row) {
    std::uint64_t v = 0;
    for (int k = 7; k >= 0; --k) v = (v << 8) | static_cast<std::uint8_t>(row[k]);
    return v;
  };
  auto row32 = [](const auto& row) {
    std::uint32_t v = 0;
    for (int k = 3; k >= 0; --k) v = (v << 8) | row[k];
    return v;
  };
  CHECK(row64(d::kGridIq2xxs[0]) == 0x0808080808080808ull);
  CHECK(row64(d::kGridIq2xxs[1]) == 0x080808080808082bull);
  CHECK(row64(d::kGridIq2xxs[252]) == 0x2b2b082b08080808ull);
  CHECK(row64(d::kGridIq2xxs[255]) == 0x2b2b2b1908081908ull);
  CHECK(row64(d::kGridIq2xs[511]) == 0x2b2b2b2b2b2b2b2bull);
  CHECK(row64(d::kGridIq2s[1023]) == 0x2b2b2b2b2b2b2b2bull);
  CHECK(row32(d::kGridIq3xxs[0]) == 0x04040404u);
  CHECK(row32(d::kGridIq3xxs[1]) == 0x04040414u);
  CHECK(row32(d::kGridIq3s[0]) == 0x01010101u);
  CHECK(row64(d::kGridIq1s[0]) == 0xffffffffffffffffull);
  CHECK(row64(d::kGridIq1s[1]) == 0xffffffffffffff01ull);
  CHECK(row64(d::kGridIq1s[2047]) == 0x0101010101010101ull);
  CHECK(d::kSignsIq2xs[1] == 129);
  CHECK(d::kSignsIq2xs[3] == 3);
  CHECK(d::kSignsIq2xs[127] == 255);
  // Rows are stored in increasing order of their packed indices, so a slip in
  // transcription shows up as a non-increasing pair.
  auto packed = [](const auto& grid, auto levels, int bits, int stride) {
    std::vector<unsigned> out;
    for (const auto& row : grid) {
      unsigned v = 0;
      for (std::size_t k = 0; k < row.size(); ++k) {
        unsigned idx = 0;
        while (levels[idx] != row[k]) ++idx;
        v |= idx << (stride * k);
      }
      out.push_back(v);
      (void)bits;
    }
    return out;
  };
  auto increasing = [](const std::vector<unsigned>& v) {
    for (std::size_t i = 1; i < v.size(); ++i) {
      if (v[i - 1] >= v[i]) return false;
    }
    return true;
  };
  CHECK(increasing(packed(d::kGridIq2xxs, d::kLevelsIq2, 2, 2)));
  CHECK(increasing(packed(d::kGridIq2xs, d::kLevelsIq2, 2, 2)));
  CHECK(increasing(packed(d::kGridIq2s, d::kLevelsIq2, 2, 2)));
  CHECK(increasing(packed(d::kGridIq3xxs, d::kLevelsIq3xxs, 3, 4)));
  CHECK(increasing(packed(d::kGridIq3s, d::kLevelsIq3s, 3, 4)));
  CHECK(increasing(packed(d::kGridIq1s, d::kLevelsIq1, 2, 2)));
}

TEST_CASE("gguf: fixtures decode to their goldens (scalar and every target)", "[gguf][fixtures]") {
  const auto files = mneme::test::fixture_files("gguf");
  REQUIRE(files.size() >= 22);
  for (const auto& path : files) {
    const Fixture fx = load_amng(path);
    check_all_paths(fx);
  }
}

TEST_CASE("gguf: ollama fixtures decode to their goldens", "[gguf][fixtures]") {
  const auto files = mneme::test::fixture_files("ollama");
  REQUIRE_FALSE(files.empty());
  for (const auto& path : files) {
    const Fixture fx = load_ollama(path);
    check_all_paths(fx);
  }
}

TEST_CASE("gguf: at least one SIMD target is tested", "[gguf]") {
  CHECK(supported_targets().size() >= 2);
}

namespace {

// f16 bit patterns worth hitting: NaN (several payloads), +-Inf, +-0,
// subnormals, the largest finite values, and ordinary scales.
std::uint16_t interesting_half(std::mt19937& rng) {
  static const std::uint16_t kSpecial[] = {0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D55, 0xFFFF,
                                           0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0200, 0x0400,
                                           0x7BFF, 0xFBFF, 0x3C00, 0x0010, 0x8123, 0x7800};
  const unsigned pick = rng() % 8;
  if (pick == 0) return kSpecial[rng() % (sizeof(kSpecial) / sizeof(kSpecial[0]))];
  if (pick == 1) return static_cast<std::uint16_t>(rng() & 0x83FF);  // subnormal or zero
  if (pick == 2) return static_cast<std::uint16_t>(rng());           // anything
  // Typical small positive / negative scales (exponents around 2^-10..2^0).
  const std::uint16_t exp = static_cast<std::uint16_t>(5 + rng() % 11);
  return static_cast<std::uint16_t>((rng() & 0x8000) | (exp << 10) | (rng() & 0x3FF));
}

// Offsets of the f16 fields of each type's block (where a random byte would
// rarely hit the edge cases, so they are overwritten with interesting halves).
std::vector<std::size_t> half_offsets(gg::GgmlType t) {
  switch (t) {
    case gg::GgmlType::Q4_0:
    case gg::GgmlType::Q5_0:
    case gg::GgmlType::Q8_0:
    case gg::GgmlType::IQ4_NL:
    case gg::GgmlType::IQ4_XS:
    case gg::GgmlType::IQ2_XXS:
    case gg::GgmlType::IQ2_XS:
    case gg::GgmlType::IQ2_S:
    case gg::GgmlType::IQ3_XXS:
    case gg::GgmlType::IQ3_S:
    case gg::GgmlType::IQ1_S:
      return {0};
    case gg::GgmlType::Q4_1:
    case gg::GgmlType::Q5_1:
    case gg::GgmlType::Q8_1:
    case gg::GgmlType::Q4_K:
    case gg::GgmlType::Q5_K:
      return {0, 2};
    case gg::GgmlType::Q2_K:
      return {80, 82};
    case gg::GgmlType::Q3_K:
      return {108};
    case gg::GgmlType::Q6_K:
      return {208};
    case gg::GgmlType::TQ1_0:
      return {52};
    case gg::GgmlType::TQ2_0:
      return {64};
    default:
      return {};  // Q8_K (f32 d), IQ1_M (scattered scale), MXFP4 (E8M0)
  }
}

}  // namespace

TEST_CASE("gguf: Highway matches scalar on random blocks (every target)", "[gguf][random]") {
  std::mt19937 rng(20240611);
  constexpr std::size_t kBlocks = 3000;
  for (const auto t : kQuantTypes) {
    const auto info = *gg::block_info(static_cast<std::uint32_t>(t));
    std::vector<std::uint8_t> raw(kBlocks * info.bytes);
    for (auto& b : raw) b = static_cast<std::uint8_t>(rng());
    const auto offsets = half_offsets(t);
    for (std::size_t b = 0; b < kBlocks; ++b) {
      std::uint8_t* blk = raw.data() + b * info.bytes;
      // Leave a quarter of the blocks fully random; give the rest interesting
      // scales (and, for Q8_K, interesting f32 ones).
      if (b % 4 == 0) continue;
      for (std::size_t off : offsets) {
        const std::uint16_t h = interesting_half(rng);
        std::memcpy(blk + off, &h, 2);
      }
      if (t == gg::GgmlType::Q8_K && b % 4 == 1) {
        static const std::uint32_t kF32[] = {0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u,
                                             0x00000001u, 0x80000000u, 0x7F7FFFFFu, 0x00800000u};
        std::memcpy(blk, &kF32[rng() % 8], 4);
      }
    }
    const std::size_t n = kBlocks * info.elements;
    const auto want32 = run32(gg::scalar::dequantize, t, raw.data(), kBlocks, n);
    const auto want_bf16 = run16(gg::scalar::dequantize, t, raw.data(), kBlocks, n, OutType::bf16);
    const auto want_f16 = run16(gg::scalar::dequantize, t, raw.data(), kBlocks, n, OutType::f16);
    // The reference's narrowing is float_bits' own.
    for (std::size_t i = 0; i < n; i += 97) {
      REQUIRE(want_bf16[i] == bf16_from_f32(std::bit_cast<float>(want32[i])));
      REQUIRE(want_f16[i] == f16_from_f32(std::bit_cast<float>(want32[i])));
    }
    for_each_target([&](const std::string& target) {
      INFO(type_label(t) << " on " << target);
      CHECK(first_mismatch32(run32(gg::dequantize, t, raw.data(), kBlocks, n), want32) == -1);
      CHECK(first_mismatch16(run16(gg::dequantize, t, raw.data(), kBlocks, n, OutType::bf16),
                             want_bf16, OutType::bf16) == -1);
      CHECK(first_mismatch16(run16(gg::dequantize, t, raw.data(), kBlocks, n, OutType::f16),
                             want_f16, OutType::f16) == -1);
    });
  }
}

TEST_CASE("gguf: unaligned input and output, block counts 0..5", "[gguf]") {
  std::mt19937 rng(7);
  for (const auto t : kQuantTypes) {
    const auto info = *gg::block_info(static_cast<std::uint32_t>(t));
    for (std::size_t n_blocks = 0; n_blocks <= 5; ++n_blocks) {
      std::vector<std::uint8_t> raw(n_blocks * info.bytes + 1);
      for (auto& b : raw) b = static_cast<std::uint8_t>(rng());
      const std::size_t n = n_blocks * info.elements;
      // Output guard words around an odd-offset destination catch overruns.
      std::vector<std::uint8_t> a(n * 4 + 3 + 64, 0xA5), b(n * 4 + 3 + 64, 0xA5);
      for (const OutType out : {OutType::f32, OutType::bf16, OutType::f16}) {
        std::fill(a.begin(), a.end(), 0xA5);
        std::fill(b.begin(), b.end(), 0xA5);
        gg::scalar::dequantize(t, reinterpret_cast<const std::byte*>(raw.data() + 1), n_blocks, out,
                               a.data() + 1);
        for_each_target([&](const std::string& target) {
          INFO(type_label(t) << " on " << target << " blocks " << n_blocks);
          std::fill(b.begin(), b.end(), 0xA5);
          gg::dequantize(t, reinterpret_cast<const std::byte*>(raw.data() + 1), n_blocks, out,
                         b.data() + 1);
          // Guard bytes untouched; values equal (NaN signs and payloads may
          // differ: the compiler may turn the reference's x * -1 into a sign flip).
          const std::size_t written = n * mneme::out_size(out);
          CHECK(b[0] == 0xA5);
          for (std::size_t i = written + 1; i < b.size(); ++i) REQUIRE(b[i] == 0xA5);
          if (n == 0) return;  // nothing written (and memcpy must not see null)
          if (out == OutType::f32) {
            std::vector<std::uint32_t> va(n), vb(n);
            std::memcpy(va.data(), a.data() + 1, written);
            std::memcpy(vb.data(), b.data() + 1, written);
            CHECK(first_mismatch32(va, vb) == -1);
          } else {
            std::vector<std::uint16_t> va(n), vb(n);
            std::memcpy(va.data(), a.data() + 1, written);
            std::memcpy(vb.data(), b.data() + 1, written);
            CHECK(first_mismatch16(va, vb, out) == -1);
          }
        });
        const std::size_t written = n * mneme::out_size(out);
        for (std::size_t i = written + 1; i < a.size(); ++i) REQUIRE(a[i] == 0xA5);
        REQUIRE(a[0] == 0xA5);
      }
    }
  }
}

TEST_CASE("gguf: large aligned outputs (non-temporal stores) match scalar", "[gguf][large]") {
  // 4 Mi elements: 8 MiB of BF16 / 16 MiB of F32, where the kernel switches to
  // streaming stores when the destination is 64-byte aligned.
  constexpr std::size_t kElements = std::size_t{4} << 20;
  std::mt19937 rng(99);
  for (const auto t :
       {gg::GgmlType::Q8_0, gg::GgmlType::Q4_0, gg::GgmlType::Q4_K, gg::GgmlType::Q6_K,
        gg::GgmlType::IQ4_XS, gg::GgmlType::MXFP4, gg::GgmlType::IQ2_XXS, gg::GgmlType::Q5_1}) {
    const auto info = *gg::block_info(static_cast<std::uint32_t>(t));
    const std::size_t n_blocks = kElements / info.elements;
    std::vector<std::uint8_t> raw(n_blocks * info.bytes);
    for (auto& b : raw) b = static_cast<std::uint8_t>(rng());
    for (const OutType out : {OutType::bf16, OutType::f32}) {
      const std::size_t bytes = kElements * mneme::out_size(out);
      std::vector<std::uint8_t> want(bytes);
      gg::scalar::dequantize(t, reinterpret_cast<const std::byte*>(raw.data()), n_blocks, out,
                             want.data());
      // 64-byte aligned destination inside an over-allocated buffer.
      std::vector<std::uint8_t> buf(bytes + 64);
      auto* dst = buf.data() + (64 - reinterpret_cast<std::uintptr_t>(buf.data()) % 64) % 64;
      for_each_target([&](const std::string& target) {
        INFO(type_label(t) << " on " << target);
        std::fill(buf.begin(), buf.end(), 0);
        gg::dequantize(t, reinterpret_cast<const std::byte*>(raw.data()), n_blocks, out, dst);
        // NaN payloads may differ (random scales include NaNs): compare as values.
        if (out == OutType::f32) {
          std::vector<std::uint32_t> a(kElements), b(kElements);
          std::memcpy(a.data(), dst, bytes);
          std::memcpy(b.data(), want.data(), bytes);
          CHECK(first_mismatch32(a, b) == -1);
        } else {
          std::vector<std::uint16_t> a(kElements), b(kElements);
          std::memcpy(a.data(), dst, bytes);
          std::memcpy(b.data(), want.data(), bytes);
          CHECK(first_mismatch16(a, b, out) == -1);
        }
      });
    }
  }
}
