// GGUF block kernels against the memory roofline.
//
// Every quantized type is decoded single-threaded to BF16 and to F32 with 32 Mi
// elements per iteration (64 MiB of BF16 / 128 MiB of F32 output, far out of
// cache), next to a memcpy of 128 MiB in the same run. Counters:
//   Gelem/s     elements decoded per second
//   GB/s        (input + output bytes) per second
//   vs_memcpy   GB/s over memcpy's (read + written bytes) per second, where
//               memcpy's figure is the median of its own repetitions so far
// Run with --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// for medians and spread. BM_memcpy must run first (it is registered first).
#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/gguf/gguf_kernels.hpp"

namespace gg = mneme::kernels::gguf;
using mneme::OutType;

namespace {

constexpr std::size_t kElements = std::size_t{32} << 20;
constexpr std::size_t kHuge = std::size_t{2} << 20;

// A buffer on huge pages where the kernel allows, touched before timing so the
// page faults stay out of the measurement.
struct Buffer {
  explicit Buffer(std::size_t n) : size((n + kHuge - 1) / kHuge * kHuge) {
    data = static_cast<std::uint8_t*>(std::aligned_alloc(kHuge, size));
    if (data == nullptr) std::abort();
    madvise(data, size, MADV_HUGEPAGE);
    std::memset(data, 0, size);
  }
  ~Buffer() { std::free(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  std::size_t size;
  std::uint8_t* data;
};

std::vector<double> g_memcpy_bps;  // read + written bytes per second, per repetition

double memcpy_median() {
  if (g_memcpy_bps.empty()) return 0;
  std::vector<double> v = g_memcpy_bps;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

void BM_memcpy(benchmark::State& state) {
  const std::size_t bytes = kElements * 4;
  Buffer src(bytes), dst(bytes);
  std::memset(src.data, 1, bytes);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::memcpy(dst.data, src.data, bytes);
    benchmark::DoNotOptimize(dst.data);
    benchmark::ClobberMemory();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double moved = 2.0 * static_cast<double>(bytes) * static_cast<double>(state.iterations());
  g_memcpy_bps.push_back(moved / secs);
  state.counters["GB/s"] = benchmark::Counter(moved / secs / 1e9);
  state.counters["vs_memcpy"] = benchmark::Counter(1.0);
}

// Random blocks whose f16 scales are ordinary positive values (real weights
// have them; NaN/Inf scales are the tests' business, not the benchmark's).
std::vector<std::uint8_t> make_blocks(gg::GgmlType t, std::size_t n_blocks) {
  const auto info = *gg::block_info(static_cast<std::uint32_t>(t));
  std::vector<std::uint8_t> raw(n_blocks * info.bytes);
  std::mt19937 rng(42);
  for (std::size_t i = 0; i + 4 <= raw.size(); i += 4) {
    const std::uint32_t r = rng();
    std::memcpy(raw.data() + i, &r, 4);
  }
  std::size_t off[2] = {0, 0};
  int n_off = 0;
  switch (t) {
    case gg::GgmlType::Q4_1:
    case gg::GgmlType::Q5_1:
    case gg::GgmlType::Q8_1:
    case gg::GgmlType::Q4_K:
    case gg::GgmlType::Q5_K:
      off[0] = 0;
      off[1] = 2;
      n_off = 2;
      break;
    case gg::GgmlType::Q2_K:
      off[0] = 80;
      off[1] = 82;
      n_off = 2;
      break;
    case gg::GgmlType::Q3_K:
      off[0] = 108;
      n_off = 1;
      break;
    case gg::GgmlType::Q6_K:
      off[0] = 208;
      n_off = 1;
      break;
    case gg::GgmlType::TQ1_0:
      off[0] = 52;
      n_off = 1;
      break;
    case gg::GgmlType::TQ2_0:
      off[0] = 64;
      n_off = 1;
      break;
    case gg::GgmlType::Q8_K:
    case gg::GgmlType::IQ1_M:
    case gg::GgmlType::MXFP4:
      n_off = 0;
      break;
    default:
      off[0] = 0;
      n_off = 1;
      break;
  }
  for (std::size_t b = 0; b < n_blocks; ++b) {
    for (int k = 0; k < n_off; ++k) {
      const auto h = static_cast<std::uint16_t>(0x1C00 + (rng() & 0x3FF));  // ~2^-8
      std::memcpy(raw.data() + b * info.bytes + off[k], &h, 2);
    }
    if (t == gg::GgmlType::Q8_K) {
      const float d = 1e-3f;
      std::memcpy(raw.data() + b * info.bytes, &d, 4);
    }
  }
  return raw;
}

template <bool kScalar>
void BM_dequant(benchmark::State& state, gg::GgmlType t, OutType out) {
  const auto info = *gg::block_info(static_cast<std::uint32_t>(t));
  const std::size_t n_blocks = kElements / info.elements;
  const std::size_t in_bytes = n_blocks * info.bytes;
  const std::size_t out_bytes = kElements * mneme::out_size(out);
  Buffer in(in_bytes), dst(out_bytes);
  const auto raw = make_blocks(t, n_blocks);
  std::memcpy(in.data, raw.data(), in_bytes);
  const auto* src = reinterpret_cast<const std::byte*>(in.data);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if constexpr (kScalar) {
      gg::scalar::dequantize(t, src, n_blocks, out, dst.data);
    } else {
      gg::dequantize(t, src, n_blocks, out, dst.data);
    }
    benchmark::DoNotOptimize(dst.data);
    benchmark::ClobberMemory();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double iters = static_cast<double>(state.iterations());
  const double bps = static_cast<double>(in_bytes + out_bytes) * iters / secs;
  state.counters["Gelem/s"] =
      benchmark::Counter(static_cast<double>(kElements) * iters / secs / 1e9);
  state.counters["GB/s"] = benchmark::Counter(bps / 1e9);
  const double base = memcpy_median();
  state.counters["vs_memcpy"] = benchmark::Counter(base > 0 ? bps / base : 0);
}

const gg::GgmlType kTypes[] = {
    // The priority kernels first.
    gg::GgmlType::Q8_0,    gg::GgmlType::Q4_0,    gg::GgmlType::Q4_K,   gg::GgmlType::Q6_K,
    gg::GgmlType::IQ4_NL,  gg::GgmlType::IQ4_XS,  gg::GgmlType::MXFP4,  gg::GgmlType::Q4_1,
    gg::GgmlType::Q5_0,    gg::GgmlType::Q5_1,    gg::GgmlType::Q8_1,   gg::GgmlType::Q2_K,
    gg::GgmlType::Q3_K,    gg::GgmlType::Q5_K,    gg::GgmlType::Q8_K,   gg::GgmlType::TQ1_0,
    gg::GgmlType::TQ2_0,   gg::GgmlType::IQ2_XXS, gg::GgmlType::IQ2_XS, gg::GgmlType::IQ2_S,
    gg::GgmlType::IQ3_XXS, gg::GgmlType::IQ3_S,   gg::GgmlType::IQ1_S,  gg::GgmlType::IQ1_M,
};

int register_all() {
  benchmark::RegisterBenchmark("BM_memcpy/128MiB", BM_memcpy)->Unit(benchmark::kMillisecond);
  for (const auto t : kTypes) {
    const std::string name(gg::type_name(static_cast<std::uint32_t>(t)));
    for (const auto out : {OutType::bf16, OutType::f32}) {
      const std::string suffix = out == OutType::bf16 ? "/bf16" : "/f32";
      benchmark::RegisterBenchmark(("BM_gguf/" + name + suffix).c_str(), BM_dequant<false>, t, out)
          ->Unit(benchmark::kMillisecond);
    }
  }
  // The scalar reference for a few types, to show what the SIMD path buys.
  for (const auto t : {gg::GgmlType::Q8_0, gg::GgmlType::Q4_K, gg::GgmlType::IQ2_XXS}) {
    const std::string name(gg::type_name(static_cast<std::uint32_t>(t)));
    benchmark::RegisterBenchmark(("BM_gguf_scalar/" + name + "/bf16").c_str(), BM_dequant<true>, t,
                                 OutType::bf16)
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}

const int kRegistered = register_all();

}  // namespace

BENCHMARK_MAIN();
