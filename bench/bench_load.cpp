// End-to-end load benchmark: the pipeline (DiscardSink, F32 -> BF16) against
// reading the same files the way `cat > /dev/null` does, in one run.
//
//   scripts/gen_safetensors_model.py /tmp/mneme-bench-2g --size 2G --shards 4
//   MNEME_BENCH_MODEL=/tmp/mneme-bench-2g build/release/bench/bench_load
//     --benchmark_repetitions=7 --benchmark_enable_random_interleaving=true
//   (one command line)
//
// The files must be in the page cache (run once to warm it); bytes/s counts
// the bytes read from the source.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"

namespace {

const char* model_dir() {
  const char* dir = std::getenv("MNEME_BENCH_MODEL");
  return dir ? dir : "/tmp/mneme-bench-2g";
}

std::vector<std::string> model_files() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(model_dir())) {
    if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// What cat does: read(2) into one 128 KiB buffer, file after file.
void BM_cat(benchmark::State& state) {
  const auto files = model_files();
  std::vector<char> buf(128 << 10);
  std::uint64_t total = 0;
  for (auto _ : state) {
    total = 0;
    for (const auto& f : files) {
      const int fd = ::open(f.c_str(), O_RDONLY);
      ssize_t n;
      while ((n = ::read(fd, buf.data(), buf.size())) > 0) total += static_cast<std::uint64_t>(n);
      ::close(fd);
    }
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * total));
}
BENCHMARK(BM_cat)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_load(benchmark::State& state, mneme::FileIo io_mode) {
  boost::asio::io_context io;
  const mneme::Catalog cat = mneme::open_catalog({model_dir()}, io.get_executor(), {io_mode});
  mneme::PlanOptions po;
  po.to = mneme::OutType::bf16;
  const mneme::Plan plan = mneme::make_plan(cat, po);
  mneme::RunOptions ro;
  ro.threads = static_cast<unsigned>(state.range(0));
  ro.budget_bytes = 64ull << 20;
  mneme::RunStats stats;
  for (auto _ : state) {
    mneme::DiscardSink sink;
    stats = mneme::run_pipeline(io, cat, plan, sink, ro);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * plan.total_in));
  state.counters["decode_s"] = stats.decode_seconds;
  state.counters["idle_on_io_s"] = stats.io_wait_seconds;
  state.counters["peak_buf_MiB"] = static_cast<double>(stats.peak_buffer_bytes) / (1 << 20);
}
BENCHMARK_CAPTURE(BM_load, uring, mneme::FileIo::automatic)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_load, pread, mneme::FileIo::pread)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_load, mmap, mneme::FileIo::mmap)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
