// The streaming pipeline end to end: identical output for every thread count
// and budget, bounded buffers, errors from any stage, cancellation, sharded
// and sequential sources.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "io/sources.hpp"
#include "kernels/convert/convert.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "src/formats/safetensors_writer.hpp"
#include "test_support.hpp"

using namespace mneme;

namespace {

struct GenTensor {
  TensorEntry entry;
  std::vector<std::byte> data;
};

// Random bits with the interesting values mixed in: zeros, subnormals, Inf,
// NaN, rounding ties.
std::vector<std::byte> random_bytes(DType t, std::uint64_t count, std::mt19937_64& rng) {
  std::vector<std::byte> v(count * dtype_size(t));
  for (std::size_t i = 0; i < v.size(); i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(v.data() + i, &r, std::min<std::size_t>(8, v.size() - i));
  }
  if (t == DType::f32) {
    const std::uint32_t specials[] = {0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000,
                                      0x00000001, 0x3F808000, 0x3F818000, 0x477FF000, 0x7F7FFFFF};
    for (std::size_t i = 0; i < std::min<std::size_t>(count, 10); ++i)
      std::memcpy(v.data() + 4 * i, &specials[i], 4);
  }
  return v;
}

// Writes a sharded model into dir; returns the tensors in file order.
std::vector<GenTensor> write_model(const std::filesystem::path& dir, int shards,
                                   std::uint64_t elems_per_tensor, std::uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  const DType kinds[] = {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i64};
  std::vector<GenTensor> all;
  std::string weight_map;
  for (int s = 0; s < shards; ++s) {
    std::vector<GenTensor> part;
    for (int k = 0; k < 5; ++k) {
      const DType t = kinds[(s + k) % 5];
      const std::uint64_t n = (k == 4) ? 3 : elems_per_tensor + static_cast<std::uint64_t>(k * 13);
      GenTensor g{{"s" + std::to_string(s) + ".t" + std::to_string(k), t, {n}, n * dtype_size(t)},
                  random_bytes(t, n, rng)};
      part.push_back(std::move(g));
    }
    part.push_back({{"s" + std::to_string(s) + ".empty", DType::f32, {0, 4}, 0}, {}});
    const std::string file = "model-" + std::to_string(s) + ".safetensors";
    std::vector<TensorEntry> entries;
    for (auto& g : part) {
      entries.push_back(g.entry);
      weight_map += (weight_map.empty() ? "" : ",") + ("\"" + g.entry.name + "\":\"" + file + "\"");
    }
    auto w =
        create_safetensors_file((dir / file).string(), entries, {{"shard", std::to_string(s)}});
    for (std::size_t i = 0; i < part.size(); ++i) w->write(i, 0, part[i].data);
    w->commit();
    for (auto& g : part) all.push_back(std::move(g));
  }
  std::ofstream(dir / "model.safetensors.index.json")
      << "{\"metadata\":{},\"weight_map\":{" << weight_map << "}}";
  return all;
}

// What the pipeline must produce for one tensor, from the scalar references.
std::vector<std::byte> expected_bytes(const GenTensor& g, std::optional<OutType> to) {
  const DType from = g.entry.dtype;
  const bool convert = to && from != to_dtype(*to) && dtype_is_float(from) &&
                       from != DType::f8_e4m3 && from != DType::f8_e5m2;
  if (!convert) return g.data;
  const std::uint64_t n = g.data.size() / dtype_size(from);
  std::vector<std::byte> out(n * out_size(*to));
  kernels::scalar::convert(from, *to, g.data.data(), out.data(), n);
  return out;
}

std::vector<std::uint8_t> run_to_file(const Catalog& cat, boost::asio::io_context& io,
                                      const std::filesystem::path& out, unsigned threads,
                                      std::uint64_t budget, std::uint64_t chunk,
                                      RunStats* stats = nullptr) {
  PlanOptions po;
  po.to = OutType::bf16;
  po.max_chunk_bytes = chunk;
  const Plan plan = make_plan(cat, po);
  FileSink sink(out.string(), FileFormat::safetensors);
  RunOptions ro;
  ro.threads = threads;
  ro.budget_bytes = budget;
  const RunStats s = run_pipeline(io, cat, plan, sink, ro);
  if (stats) *stats = s;
  return test::read_file(out);
}

// A source that fails its Nth asynchronous read.
class FailingSource : public Source {
 public:
  FailingSource(SourcePtr inner, int fail_at) : inner_(std::move(inner)), fail_at_(fail_at) {}
  const std::string& name() const override { return inner_->name(); }
  std::optional<std::uint64_t> size() const override { return inner_->size(); }
  void read_at(std::uint64_t o, std::span<std::byte> d) override { inner_->read_at(o, d); }
  boost::asio::awaitable<void> async_read_at(std::uint64_t o, std::span<std::byte> d) override {
    if (++reads_ == fail_at_) fail(ErrorKind::io, "injected failure");
    co_await inner_->async_read_at(o, d);
  }

 private:
  SourcePtr inner_;
  int fail_at_;
  int reads_ = 0;
};

class ThrowingSink : public DiscardSink {
 public:
  void commit(const Chunk& c, std::span<std::byte> out) override {
    DiscardSink::commit(c, out);
    if (++commits_ == 3) fail(ErrorKind::limit, "sink refused");
  }
  bool aborted = false;
  void abort() noexcept override { aborted = true; }

 private:
  std::atomic<int> commits_{0};
};

}  // namespace

TEST_CASE("a sharded model opens as one catalog", "[pipeline][sharded]") {
  const auto dir = test::scratch_dir("sharded-catalog");
  const auto model = write_model(dir, 3, 100);
  boost::asio::io_context io;
  for (const std::string& spec : {dir.string(), (dir / "model.safetensors.index.json").string()}) {
    const Catalog cat = open_catalog({spec}, io.get_executor());
    CHECK(cat.sources.size() == 3);
    REQUIRE(cat.tensors.size() == model.size());
    for (std::size_t i = 0; i < model.size(); ++i)
      CHECK(cat.tensors[i].name == model[i].entry.name);
  }
}

TEST_CASE("a lying index is refused", "[pipeline][sharded][hostile]") {
  const auto dir = test::scratch_dir("sharded-lies");
  write_model(dir, 2, 10);
  boost::asio::io_context io;
  const auto index = dir / "model.safetensors.index.json";
  auto expect_kind = [&](const std::string& text, ErrorKind kind) {
    std::ofstream(index) << text;
    try {
      open_catalog({index.string()}, io.get_executor());
      FAIL("accepted " << text);
    } catch (const Error& e) {
      CHECK(e.kind() == kind);
    }
  };
  expect_kind(R"({"weight_map":{"s0.t0":"model-0.safetensors"}})",
              ErrorKind::parse);  // tensors not in the map
  expect_kind(R"({"weight_map":{"x":"../../etc/passwd"}})", ErrorKind::security);
  expect_kind(R"({"weight_map":{"x":"/etc/passwd"}})", ErrorKind::security);
  expect_kind(R"({"weight_map":[]})", ErrorKind::parse);
  expect_kind(R"({"weight_map":{"x":"missing.safetensors"}})", ErrorKind::io);
}

TEST_CASE("output is byte-identical across thread counts and budgets", "[pipeline]") {
  const auto dir = test::scratch_dir("identical");
  const auto model = write_model(dir, 3, 60'000);  // ~3 MiB in 18 tensors
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor());
  const std::uint64_t chunk = 64 << 10;

  std::vector<std::uint8_t> reference;
  for (unsigned threads : {1u, 2u, 8u}) {
    for (std::uint64_t budget :
         {chunk, 3 * chunk, std::uint64_t{1} << 20, std::uint64_t{64} << 20}) {
      DYNAMIC_SECTION("threads " << threads << " budget " << budget) {
        const auto bytes = run_to_file(cat, io, dir / "out.safetensors", threads, budget, chunk);
        if (reference.empty()) reference = bytes;
        CHECK(bytes == reference);
      }
    }
  }

  // And the content is what the scalar references say.
  const Catalog out = parse_safetensors(make_mmap_source((dir / "out.safetensors").string()));
  REQUIRE(out.tensors.size() == model.size());
  const auto file = test::read_file(dir / "out.safetensors");
  for (std::size_t i = 0; i < model.size(); ++i) {
    const auto want = expected_bytes(model[i], OutType::bf16);
    REQUIRE(out.tensors[i].data.length == want.size());
    CHECK((want.size() == 0 ||
           std::memcmp(file.data() + out.tensors[i].data.offset, want.data(), want.size()) == 0));
  }
  CHECK(out.header.metadata == cat.header.metadata);
}

TEST_CASE("a model ten times the budget keeps buffers within the budget", "[pipeline][memory]") {
  const auto dir = test::scratch_dir("bounded");
  write_model(dir, 2, 250'000);  // ~8 MiB
  const std::uint64_t budget = 512 << 10;
  // pread copies every byte through the budgeted input slots; a mapping
  // (the default) decodes from the page cache and holds no input buffers.
  for (FileIo mode : {FileIo::pread, FileIo::automatic}) {
    INFO("mode " << static_cast<int>(mode));
    boost::asio::io_context io;
    const Catalog cat = open_catalog({dir.string()}, io.get_executor(), {mode});
    REQUIRE(cat.total_data_bytes() >= 10 * budget);
    RunStats stats;
    run_to_file(cat, io, dir / "out.safetensors", 2, budget, 128 << 10, &stats);
    if (mode == FileIo::pread) CHECK(stats.peak_buffer_bytes > 0);
    CHECK(stats.peak_buffer_bytes <= budget);
    CHECK(stats.buffer_capacity <= budget);
    CHECK(stats.bytes_read == cat.total_data_bytes());
  }
}

TEST_CASE("memory sink holds exactly the converted tensors", "[pipeline]") {
  const auto dir = test::scratch_dir("memory-sink");
  const auto model = write_model(dir, 2, 5'000);
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor());
  for (OutType to : {OutType::f32, OutType::f16, OutType::bf16}) {
    PlanOptions po;
    po.to = to;
    po.max_chunk_bytes = 4096;
    const Plan plan = make_plan(cat, po);
    MemorySink sink;
    run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2, .budget_bytes = 16384});
    REQUIRE(sink.tensors().size() == model.size());
    for (std::size_t i = 0; i < model.size(); ++i) {
      const auto want = expected_bytes(model[i], to);
      REQUIRE(sink.tensors()[i].bytes == want.size());
      CHECK((want.size() == 0 ||
             std::memcmp(sink.tensors()[i].data.get(), want.data(), want.size()) == 0));
    }
  }
}

// A mapped file that counts the bytes copied out of it with read_at and the
// bytes whose page tables it was asked to fill.
class CountingMapping : public Source {
 public:
  explicit CountingMapping(SourcePtr inner) : inner_(std::move(inner)) {}
  const std::string& name() const override { return inner_->name(); }
  std::optional<std::uint64_t> size() const override { return inner_->size(); }
  const std::byte* contiguous() const override { return inner_->contiguous(); }
  void check_intact() const override { inner_->check_intact(); }
  void prefetch(std::uint64_t offset, std::uint64_t length) const override {
    prefetched += length;
    inner_->prefetch(offset, length);
  }
  void read_at(std::uint64_t o, std::span<std::byte> d) override {
    read += d.size();
    inner_->read_at(o, d);
  }
  mutable std::atomic<std::uint64_t> prefetched{0};
  std::atomic<std::uint64_t> read{0};

 private:
  SourcePtr inner_;
};

TEST_CASE("chunks with nothing to convert are copied out of a mapped file by read, not mapping",
          "[pipeline][stored]") {
  const auto dir = test::scratch_dir("copied-by-read");
  const auto model = write_model(dir, 1, 50'000);
  auto source =
      std::make_shared<CountingMapping>(make_mmap_source((dir / "model-0.safetensors").string()));
  boost::asio::io_context io;
  const Catalog cat = parse_safetensors(source);
  std::uint64_t stored_bytes = 0, converted_bytes = 0;
  for (const auto& g : model) {
    const bool stored = g.entry.dtype == DType::bf16 || g.entry.dtype == DType::i64;
    (stored ? stored_bytes : converted_bytes) += g.data.size();
  }
  REQUIRE(stored_bytes > 0);
  REQUIRE(converted_bytes > 0);
  for (unsigned threads : {1u, 2u}) {
    INFO("threads " << threads);
    source->read = 0;
    source->prefetched = 0;
    PlanOptions po;
    po.to = OutType::bf16;
    po.max_chunk_bytes = 16 << 10;
    const Plan plan = make_plan(cat, po);
    MemorySink sink;
    run_pipeline(io, cat, plan, sink, RunOptions{.threads = threads});
    // BF16 and I64 stay as stored: read with read_at, never prefetched.
    CHECK(source->read == stored_bytes);
    CHECK(source->prefetched <= converted_bytes);
    REQUIRE(sink.tensors().size() == model.size());
    for (std::size_t i = 0; i < model.size(); ++i) {
      const auto want = expected_bytes(model[i], OutType::bf16);
      REQUIRE(sink.tensors()[i].bytes == want.size());
      CHECK((want.empty() ||
             std::memcmp(sink.tensors()[i].data.get(), want.data(), want.size()) == 0));
    }
  }
}

TEST_CASE("a model with nothing to convert is written byte for byte, direct and buffered",
          "[pipeline][stored]") {
  const auto dir = test::scratch_dir("file-stored");
  const auto model = write_model(dir, 2, 70'000);
  // The build tree's filesystem (direct writes where it allows them) and tmpfs
  // (buffered only) take different paths through the file writer.
  std::vector<std::filesystem::path> outs = {dir / "out.safetensors"};
  if (std::filesystem::is_directory("/dev/shm")) {
    outs.push_back(std::filesystem::path("/dev/shm") /
                   ("mneme-file-stored-" + std::to_string(::getpid()) + ".safetensors"));
  }
  for (const auto& out : outs) {
    for (FileIo mode : {FileIo::automatic, FileIo::pread}) {
      INFO(out << " mode " << static_cast<int>(mode));
      boost::asio::io_context io;
      const Catalog cat = open_catalog({dir.string()}, io.get_executor(), {mode});
      PlanOptions po;  // nothing converted
      po.max_chunk_bytes = 64 << 10;
      const Plan plan = make_plan(cat, po);
      {
        FileSink sink(out.string(), FileFormat::safetensors);
        run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2});
      }
      const Catalog written = parse_safetensors(make_mmap_source(out.string()));
      const auto file = test::read_file(out);
      REQUIRE(written.tensors.size() == model.size());
      for (std::size_t i = 0; i < model.size(); ++i) {
        REQUIRE(written.tensors[i].data.length == model[i].data.size());
        CHECK((model[i].data.empty() ||
               std::memcmp(file.data() + written.tensors[i].data.offset, model[i].data.data(),
                           model[i].data.size()) == 0));
      }
    }
    std::filesystem::remove(out);
  }
}

TEST_CASE("a source failing mid-stream ends the run with its error and no file",
          "[pipeline][errors]") {
  const auto dir = test::scratch_dir("failing-source");
  write_model(dir, 1, 50'000);
  boost::asio::io_context io;
  const auto path = (dir / "model-0.safetensors").string();
  for (int fail_at : {1, 4, 9}) {
    Catalog cat = parse_safetensors(
        std::make_shared<FailingSource>(make_pread_source(path, io.get_executor()), fail_at));
    try {
      run_to_file(cat, io, dir / "out.safetensors", 2, 64 << 10, 16 << 10);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::io);
    }
    CHECK_FALSE(std::filesystem::exists(dir / "out.safetensors.partial"));
    CHECK_FALSE(std::filesystem::exists(dir / "out.safetensors"));
  }
}

TEST_CASE("a sink that throws ends the run with its error", "[pipeline][errors]") {
  const auto dir = test::scratch_dir("throwing-sink");
  write_model(dir, 2, 50'000);
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor());
  PlanOptions po;
  po.max_chunk_bytes = 8192;
  const Plan plan = make_plan(cat, po);
  ThrowingSink sink;
  try {
    run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2, .budget_bytes = 32768});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::limit);
  }
  CHECK(sink.aborted);
  // The io_context is reusable after a failed run.
  DiscardSink ok;
  CHECK_NOTHROW(run_pipeline(io, cat, plan, ok, RunOptions{.threads = 2, .budget_bytes = 32768}));
}

TEST_CASE("cancellation from a callback ends the run as cancelled", "[pipeline][errors]") {
  const auto dir = test::scratch_dir("cancel");
  write_model(dir, 2, 50'000);
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor());
  PlanOptions po;
  po.max_chunk_bytes = 8192;
  const Plan plan = make_plan(cat, po);
  std::atomic<bool> cancel{false};
  std::atomic<int> chunks{0};
  CallbackSink sink([&](const OutputTensor&, std::uint64_t, std::span<const std::byte>) {
    if (++chunks == 2) cancel = true;
  });
  RunOptions ro;
  ro.threads = 2;
  ro.budget_bytes = 32768;
  ro.cancel = &cancel;
  try {
    run_pipeline(io, cat, plan, sink, ro);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::cancelled);
  }
  CHECK(static_cast<std::size_t>(chunks.load()) < plan.chunks.size());
}

TEST_CASE("callback sink sees every byte once, tensors completed once", "[pipeline]") {
  const auto dir = test::scratch_dir("callback");
  const auto model = write_model(dir, 2, 20'000);
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor());
  PlanOptions po;
  po.max_chunk_bytes = 4096;
  const Plan plan = make_plan(cat, po);
  std::mutex m;
  std::uint64_t bytes = 0;
  std::vector<int> done(plan.outputs.size(), 0);
  CallbackSink sink(
      [&](const OutputTensor&, std::uint64_t, std::span<const std::byte> b) {
        std::lock_guard lock(m);
        bytes += b.size();
      },
      [&](const OutputTensor& t) {
        std::lock_guard lock(m);
        ++done[t.source_tensor];
      });
  run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2, .budget_bytes = 65536});
  CHECK(bytes == plan.total_out);
  CHECK(std::all_of(done.begin(), done.end(), [](int d) { return d == 1; }));
}

TEST_CASE("a sharded model's shards are read in turn: its first tensors complete first",
          "[pipeline][sharded]") {
  const auto dir = test::scratch_dir("shards-in-turn");
  write_model(dir, 4, 20'000);
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor());
  PlanOptions po;
  po.max_chunk_bytes = 4096;
  const Plan plan = make_plan(cat, po);
  std::mutex m;
  std::vector<std::string> order;  // tensors with data, as they complete
  CallbackSink sink([](const OutputTensor&, std::uint64_t, std::span<const std::byte>) {},
                    [&](const OutputTensor& t) {
                      std::lock_guard lock(m);
                      if (t.bytes > 0) order.push_back(t.name);
                    });
  // One decoder: tensors complete in the order their chunks were read (with
  // two, a decoder preempted between two chunks reorders them).
  run_pipeline(io, cat, plan, sink, RunOptions{.threads = 1, .budget_bytes = 65536});
  REQUIRE(order.size() == 20);
  // Read side by side, every shard's first tensor would complete before any
  // shard's second; in turn, all of shard 0 completes before shard 3 begins.
  std::size_t last_of_first = 0, first_of_last = order.size();
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i].starts_with("s0.")) last_of_first = i;
    if (order[i].starts_with("s3.")) first_of_last = std::min(first_of_last, i);
  }
  std::string seen;
  for (const auto& n : order) seen += n + " ";
  INFO(seen);
  CHECK(last_of_first < first_of_last);
}

TEST_CASE("a sequential source streams in offset order", "[pipeline][sequential]") {
  const auto dir = test::scratch_dir("sequential");
  const auto model = write_model(dir, 1, 30'000);
  boost::asio::io_context io;
  const auto path = dir / "model-0.safetensors";
  const auto size = std::filesystem::file_size(path);
  const Catalog cat = parse_safetensors(
      make_istream_source("stream", std::make_unique<std::ifstream>(path, std::ios::binary), size));
  PlanOptions po;
  po.to = OutType::f32;
  po.max_chunk_bytes = 4096;
  const Plan plan = make_plan(cat, po);
  MemorySink sink;
  run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2, .budget_bytes = 16384});
  for (std::size_t i = 0; i < model.size(); ++i) {
    const auto want = expected_bytes(model[i], OutType::f32);
    REQUIRE(sink.tensors()[i].bytes == want.size());
    CHECK((want.size() == 0 ||
           std::memcmp(sink.tensors()[i].data.get(), want.data(), want.size()) == 0));
  }
}

TEST_CASE("a budget below one chunk is a limit error", "[pipeline][errors]") {
  const auto dir = test::scratch_dir("tiny-budget");
  write_model(dir, 1, 10'000);
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor(), {FileIo::pread});
  PlanOptions po;
  po.max_chunk_bytes = 65536;
  const Plan plan = make_plan(cat, po);
  DiscardSink sink;
  try {
    run_pipeline(io, cat, plan, sink, RunOptions{.threads = 1, .budget_bytes = 1024});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::limit);
  }
}

// Jobs are handed from the io thread to the decoders hundreds of times a run.
// Fed through a flow graph from outside its arena, one was lost about once
// in 200 `mneme load` processes of a 2 GiB model on a busy machine, and the
// run waited forever with every thread asleep (this in-process loop did not
// reproduce it: the loss needed fresh processes). Many short runs, with a
// thread competing for the cores, must all end; a lost job hangs the test
// until CTest's timeout.
TEST_CASE("many short runs in a row all end: no job is lost between the io thread and the decoders",
          "[pipeline][stress]") {
  const auto dir = test::scratch_dir("many-runs");
  write_model(dir, 2, 32768);
  std::atomic<bool> done{false};
  std::thread rival([&] {
    volatile std::uint64_t x = 0;
    while (!done.load(std::memory_order_relaxed)) x = x + 1;
  });
  boost::asio::io_context io;
  const Catalog cat = open_catalog({dir.string()}, io.get_executor());
  PlanOptions po;
  po.to = OutType::bf16;
  po.max_chunk_bytes = 2048;
  const Plan plan = make_plan(cat, po);
  REQUIRE(plan.chunks.size() >= 200);
  std::size_t runs = 0;
  for (int i = 0; i < 300; ++i) {
    DiscardSink sink;
    const RunStats s = run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2});
    runs += s.chunks == plan.chunks.size();
  }
  done = true;
  rival.join();
  CHECK(runs == 300);
}

TEST_CASE("every file I/O mode loads the same bytes", "[pipeline][io]") {
  const auto dir = test::scratch_dir("io-modes");
  const auto model = write_model(dir, 2, 20'000);
  boost::asio::io_context io;
  for (FileIo mode : {FileIo::automatic, FileIo::pread, FileIo::mmap}) {
    const Catalog cat = open_catalog({dir.string()}, io.get_executor(), {mode});
    PlanOptions po;
    po.max_chunk_bytes = 8192;
    const Plan plan = make_plan(cat, po);
    MemorySink sink;
    run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2, .budget_bytes = 65536});
    for (std::size_t i = 0; i < model.size(); ++i) {
      REQUIRE(sink.tensors()[i].bytes == model[i].data.size());
      CHECK((model[i].data.size() == 0 ||
             std::memcmp(sink.tensors()[i].data.get(), model[i].data.data(),
                         model[i].data.size()) == 0));
    }
  }
}

// Issue 14: a file that shrinks while it is read is Error{io} for every file
// I/O mode; under --io mmap the lost pages would raise SIGBUS and kill the
// process (this test's) without the mapping guard. Truncating after the
// catalog is open and before the run reads the tensors makes it
// deterministic: the sources (and the mapping) still see the old size.
TEST_CASE("a file truncated while it is read ends the run with an io error, never a signal",
          "[pipeline][io][hostile]") {
  namespace fs = std::filesystem;
  const auto dir = test::scratch_dir("io-truncated");
  for (FileIo mode : {FileIo::automatic, FileIo::uring, FileIo::pread, FileIo::mmap}) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_model(dir, 1, 400'000);  // 1.6 MB and more in one shard: many pages past the cut
    const auto shard = dir / "model-0.safetensors";
    boost::asio::io_context io;
    CatalogOptions options;
    options.open.file_io = mode;
    const Catalog cat = open_catalog({dir.string()}, io.get_executor(), options);
    const Plan plan = make_plan(cat, {});
    fs::resize_file(shard, fs::file_size(shard) / 4);
    MemorySink sink;
    INFO("mode " << static_cast<int>(mode));
    try {
      run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2});
      FAIL("the run did not notice the file shrank");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::io);
      INFO(e.what());
      CHECK((std::string(e.what()).find("model-0.safetensors") != std::string::npos));
    }
  }
}
