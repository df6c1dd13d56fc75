// Throughput of every kernels/convert kernel against memcpy, single-threaded,
// out of cache: each kernel writes 64 MiB of output (and reads 64-256 MiB),
// either in one call or in 1 MiB-of-output calls (the "/chunk1M" variants).
// bytes_per_second counts bytes read + bytes written, for memcpy too, so the
// ratio kernel / memcpy is the kernel's fraction of the copy roofline.
//
//   bench_kernels_convert --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>

#include <benchmark/benchmark.h>
#include <hwy/targets.h>

#include "kernels/convert/convert.hpp"

namespace {

using mneme::DType;
using mneme::OutType;

constexpr std::size_t kOutBytes = std::size_t{64} << 20;
constexpr std::size_t kHugePage = std::size_t{2} << 20;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Block = std::unique_ptr<std::uint8_t, FreeDeleter>;

// 2 MiB-aligned, huge pages requested, every page touched before timing so
// the measurement sees memory bandwidth, not page faults.
Block alloc_touched(std::size_t bytes, std::uint8_t fill) {
  bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, bytes);
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, bytes, MADV_HUGEPAGE);  // best effort
  std::memset(p, fill, bytes);
  return Block(static_cast<std::uint8_t*>(p));
}

// Plausible weights (|x| around 1e-3 .. 1e-1) with a sprinkling of values that
// underflow or overflow the 16-bit formats; the kernels have no data-dependent
// branches, so this only keeps them honest. 64 Ki values, tiled.
void fill_input(DType from, std::uint8_t* p, std::size_t n) {
  constexpr std::size_t kDistinct = 1 << 16;
  const std::size_t size = mneme::dtype_size(from);
  std::mt19937 rng(42);
  std::normal_distribution<double> dist(0.0, 0.05);
  for (std::size_t i = 0; i < kDistinct && i < n; ++i) {
    double x = dist(rng);
    if (i % 4099 == 0) x = 1e-30;
    if (i % 8191 == 0) x = 1e30;
    const auto f = static_cast<float>(x);
    std::uint16_t h = 0;
    if (from == DType::f16) h = mneme::kernels::scalar::f32_to_f16(f);
    if (from == DType::bf16) h = mneme::kernels::scalar::f32_to_bf16(f);
    if (from == DType::f64) std::memcpy(p + size * i, &x, 8);
    if (from == DType::f32) std::memcpy(p + size * i, &f, 4);
    if (size == 2) std::memcpy(p + size * i, &h, 2);
  }
  for (std::size_t done = kDistinct; done < n; done += kDistinct) {
    std::memcpy(p + done * size, p, std::min(kDistinct, n - done) * size);
  }
}

// chunk == 0: one call over the whole 64 MiB output (the kernels stream it
// past the cache). chunk > 0: successive calls of `chunk` output bytes each,
// below the streaming threshold, as a pipeline with small chunks would call.
void BM_Convert(benchmark::State& state, DType from, OutType to, std::size_t chunk) {
  const std::size_t n = kOutBytes / mneme::out_size(to);
  const std::size_t in_size = mneme::dtype_size(from);
  const std::size_t in_bytes = n * in_size;
  const std::size_t step = chunk == 0 ? n : chunk / mneme::out_size(to);
  Block in = alloc_touched(in_bytes, 0);
  Block out = alloc_touched(kOutBytes, 0x5A);
  fill_input(from, in.get(), n);
  const mneme::kernels::ConvertFn fn = mneme::kernels::convert_fn(from, to);
  const auto run = [&] {
    for (std::size_t i = 0; i < n; i += step) {
      fn(in.get() + i * in_size, out.get() + i * mneme::out_size(to), std::min(step, n - i));
    }
  };
  run();  // warm: dispatch resolved, TLB populated
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(out.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(in_bytes + kOutBytes));
}

void BM_Memcpy(benchmark::State& state, std::size_t chunk) {
  const std::size_t step = chunk == 0 ? kOutBytes : chunk;
  Block in = alloc_touched(kOutBytes, 1);
  Block out = alloc_touched(kOutBytes, 2);
  const auto run = [&] {
    for (std::size_t i = 0; i < kOutBytes; i += step) {
      std::memcpy(out.get() + i, in.get() + i, std::min(step, kOutBytes - i));
    }
  };
  run();
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(out.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(2 * kOutBytes));
}

std::string name_of(DType from, OutType to) {
  return "BM_Convert/" + std::string(mneme::dtype_name(from)) + "_to_" +
         std::string(mneme::dtype_name(mneme::to_dtype(to)));
}

const bool registered = [] {
  std::string targets;
  for (const std::int64_t t : hwy::SupportedAndGeneratedTargets()) {
    targets += std::string(targets.empty() ? "" : " ") + hwy::TargetName(t);
  }
  benchmark::AddCustomContext("hwy_targets (first is dispatched)", targets);
  // Whole 64 MiB per call, then 1 MiB of output per call.
  for (const std::size_t chunk : {std::size_t{0}, std::size_t{1} << 20}) {
    const std::string suffix = chunk == 0 ? "" : "/chunk1M";
    benchmark::RegisterBenchmark(("BM_Memcpy" + suffix).c_str(), BM_Memcpy, chunk)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const DType from : {DType::f64, DType::f32, DType::f16, DType::bf16}) {
      for (const OutType to : {OutType::f32, OutType::f16, OutType::bf16}) {
        benchmark::RegisterBenchmark((name_of(from, to) + suffix).c_str(), BM_Convert, from, to,
                                     chunk)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
