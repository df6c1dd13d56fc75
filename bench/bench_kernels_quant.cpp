// Single-threaded throughput of the quant kernels on a realistic layer
// (4096 x 11008, e.g. Llama-2-7B gate_proj), against memcpy in the same run.
//
// bytes_per_second counts bytes read + bytes written (the roofline's unit);
// memcpy_bf16 copies a buffer the size of the BF16 output, so
//   ratio = kernel bytes_per_second / memcpy_bf16 bytes_per_second.
// Buffers are allocated and touched once up front: page faults are not decode.
// Run: bench_kernels_quant --benchmark_repetitions=5
//      --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/quant/awq.hpp"
#include "kernels/quant/bnb.hpp"
#include "kernels/quant/fp8.hpp"
#include "kernels/quant/gptq.hpp"

namespace {

namespace q = mneme::kernels::quant;
using mneme::DType;
using mneme::OutType;

constexpr std::size_t kIn = 4096;     // rows of the dequantized [in, out] / [rows, cols]
constexpr std::size_t kOut = 11008;
constexpr std::size_t kN = kIn * kOut;

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::vector<std::uint8_t> b(n);
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < n; i += 4) {
    const std::uint32_t r = rng();
    std::memcpy(b.data() + i, &r, std::min<std::size_t>(4, n - i));
  }
  return b;
}

// Finite F16 scales around 0.01 (random bytes would make NaN/Inf).
std::vector<std::uint8_t> f16_scales(std::size_t n) {
  std::vector<std::uint8_t> b(2 * n);
  std::mt19937 rng(7);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t h = static_cast<std::uint16_t>(0x2000 + rng() % 0x1000);
    std::memcpy(b.data() + 2 * i, &h, 2);
  }
  return b;
}

// 64-byte aligned like the pipeline's page-aligned slots (the kernels stream
// large outputs only to cache-line aligned rows); a std::vector this large
// comes from mmap at page + 16.
std::uint8_t* out_buffer() {
  static std::vector<std::uint8_t> out(kN * 4 + 64, 1);  // touched once, reused
  static std::uint8_t* const aligned =
      out.data() + (64 - reinterpret_cast<std::uintptr_t>(out.data()) % 64) % 64;
  return aligned;
}

void finish(benchmark::State& state, std::size_t in_bytes, OutType ot) {
  const std::size_t bytes = in_bytes + kN * mneme::out_size(ot);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["Gelem/s"] = benchmark::Counter(static_cast<double>(kN) / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

OutType out_arg(const benchmark::State& state) {
  return state.range(0) == 0 ? OutType::bf16 : OutType::f32;
}

void BM_memcpy_bf16(benchmark::State& state) {
  static const std::vector<std::uint8_t> src = random_bytes(kN * 2, 1);
  std::uint8_t* dst = out_buffer();
  for (auto _ : state) {
    std::memcpy(dst, src.data(), kN * 2);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kN * 4));
}

void BM_fp8_e4m3_block128(benchmark::State& state) {
  static const auto w = random_bytes(kN, 2);
  static const auto s = f16_scales(((kIn + 127) / 128) * ((kOut + 127) / 128));
  q::Fp8Tensor t;
  t.rows = kIn;
  t.cols = kOut;
  t.scaling = q::Fp8Scaling::block;
  t.scale_dtype = DType::bf16;  // bit patterns of f16 scales read as bf16: finite, fine
  t.scales = q::Bytes(s.data(), s.size());
  const OutType ot = out_arg(state);
  for (auto _ : state) {
    q::dequant_fp8(t, 0, kIn, w.data(), ot, out_buffer());
    benchmark::ClobberMemory();
  }
  finish(state, kN, ot);
}

void BM_gptq(benchmark::State& state) {
  const unsigned bits = static_cast<unsigned>(state.range(1));
  const std::size_t pack = 32 / bits;
  const std::size_t groups = kIn / 128;
  static std::vector<std::uint8_t> qweight, scales, qzeros;
  qweight = random_bytes(kN * bits / 8, 3);
  scales = f16_scales(groups * kOut);
  qzeros = random_bytes(groups * kOut / pack * 4, 4);
  q::GptqTensor t;
  t.bits = bits;
  t.in_features = kIn;
  t.out_features = kOut;
  t.group_size = 128;
  t.scales = q::Bytes(scales.data(), scales.size());
  t.qzeros = q::Bytes(qzeros.data(), qzeros.size());
  const OutType ot = out_arg(state);
  const auto orient = state.range(2) == 0 ? q::Orientation::in_out : q::Orientation::out_in;
  for (auto _ : state) {
    q::dequant_gptq(t, 0, kIn, qweight.data(), q::MatrixOut{out_buffer(), ot, orient, 0});
    benchmark::ClobberMemory();
  }
  finish(state, qweight.size(), ot);
}

void BM_awq(benchmark::State& state) {
  const std::size_t groups = kIn / 128;
  static const auto qweight = random_bytes(kN / 2, 5);
  static const auto scales = f16_scales(groups * kOut);
  static const auto qzeros = random_bytes(groups * kOut / 2, 6);
  q::AwqTensor t;
  t.in_features = kIn;
  t.out_features = kOut;
  t.group_size = 128;
  t.scales = q::Bytes(scales.data(), scales.size());
  t.qzeros = q::Bytes(qzeros.data(), qzeros.size());
  const OutType ot = out_arg(state);
  const auto orient = state.range(1) == 0 ? q::Orientation::in_out : q::Orientation::out_in;
  for (auto _ : state) {
    q::dequant_awq(t, 0, kIn, qweight.data(), q::MatrixOut{out_buffer(), ot, orient, 0});
    benchmark::ClobberMemory();
  }
  finish(state, qweight.size(), ot);
}

void BM_bnb_nf4(benchmark::State& state) {
  const bool dq = state.range(1) != 0;
  const std::size_t blocks = kN / 64;
  static const auto w = random_bytes(kN / 2, 7);
  static std::vector<float> qmap = {-1.0f, -0.6961928f, -0.52507305f, -0.3949175f, -0.28444138f,
                                    -0.18477343f, -0.091050036f, 0.0f, 0.0795803f, 0.1609302f,
                                    0.2461123f, 0.33791524f, 0.44070983f, 0.562617f, 0.72295684f,
                                    1.0f};
  static std::vector<float> absmax(blocks, 0.03f), nested((blocks + 255) / 256, 0.5f), nmap(256, 0.01f);
  static const auto absmax_u8 = random_bytes(blocks, 8);
  q::Bnb4Tensor t;
  t.total_elements = kN;
  t.block_size = 64;
  t.quant_map = q::Bytes(reinterpret_cast<const std::uint8_t*>(qmap.data()), 64);
  t.double_quant = dq;
  if (dq) {
    t.absmax = q::Bytes(absmax_u8.data(), absmax_u8.size());
    t.nested_absmax = q::Bytes(reinterpret_cast<const std::uint8_t*>(nested.data()), 4 * nested.size());
    t.nested_quant_map = q::Bytes(reinterpret_cast<const std::uint8_t*>(nmap.data()), 1024);
    t.nested_block_size = 256;
    t.nested_offset = 0.05f;
  } else {
    t.absmax = q::Bytes(reinterpret_cast<const std::uint8_t*>(absmax.data()), 4 * blocks);
  }
  const OutType ot = out_arg(state);
  for (auto _ : state) {
    q::dequant_bnb4(t, 0, kN, w.data(), ot, out_buffer());
    benchmark::ClobberMemory();
  }
  finish(state, kN / 2 + t.absmax.size(), ot);
}

void BM_bnb_int8(benchmark::State& state) {
  static const auto w = random_bytes(kN, 9);
  static std::vector<float> scb(kIn, 3.5f);
  q::BnbInt8Tensor t;
  t.rows = kIn;
  t.cols = kOut;
  t.scb = q::Bytes(reinterpret_cast<const std::uint8_t*>(scb.data()), 4 * kIn);
  const OutType ot = out_arg(state);
  for (auto _ : state) {
    q::dequant_bnb_int8(t, 0, kIn, w.data(), ot, out_buffer());
    benchmark::ClobberMemory();
  }
  finish(state, kN, ot);
}

double stat_min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double stat_max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

#define MNEME_QUANT_BENCH(b)                                                            \
  b->Unit(benchmark::kMillisecond)->UseRealTime()->ComputeStatistics("min", stat_min)-> \
      ComputeStatistics("max", stat_max)

// range(0): 0 = BF16 out, 1 = F32 out.
MNEME_QUANT_BENCH(BENCHMARK(BM_memcpy_bf16));
MNEME_QUANT_BENCH(BENCHMARK(BM_fp8_e4m3_block128)->ArgName("f32")->Arg(0)->Arg(1));
// range(1): bits; range(2): 0 = [in, out], 1 = [out, in].
MNEME_QUANT_BENCH(BENCHMARK(BM_gptq)->ArgNames({"f32", "bits", "T"})->Args({0, 4, 0})->Args({1, 4, 0})
                      ->Args({0, 4, 1})->Args({1, 4, 1})->Args({0, 8, 0})->Args({0, 8, 1}));
MNEME_QUANT_BENCH(BENCHMARK(BM_awq)->ArgNames({"f32", "T"})->Args({0, 0})->Args({1, 0})->Args({0, 1})->Args({1, 1}));
// range(1): double quant.
MNEME_QUANT_BENCH(BENCHMARK(BM_bnb_nf4)->ArgNames({"f32", "dq"})->Args({0, 0})->Args({1, 0})->Args({0, 1}));
MNEME_QUANT_BENCH(BENCHMARK(BM_bnb_int8)->ArgName("f32")->Arg(0)->Arg(1));
MNEME_QUANT_BENCH(BENCHMARK(BM_memcpy_bf16)->Name("BM_memcpy_bf16_again"));

}  // namespace

BENCHMARK_MAIN();
