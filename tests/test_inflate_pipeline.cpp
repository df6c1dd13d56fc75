// Deflated zip members through the pipeline (OutputTensor::inflate): a
// tensor of trivial element layout stored deflated (np.savez_compressed) is
// inflated chunk by chunk straight into the sink, never held whole; the
// stream's exact size and the member's CRC-32 are checked at its end.
// Archives are built here with zlib, so the test needs no Python.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <boost/asio/io_context.hpp>

#include "io/sources.hpp"
#include "memory_source_for_tests.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "pipeline/plan_detail.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/tensor_stream.hpp"
#include "src/formats/pth.hpp"
#include "test_support.hpp"

using namespace mneme;
using namespace mneme::test;

namespace {

constexpr std::uint64_t kChunk = 64 << 10;

// f32 values with some structure: compressible, but not to nothing.
Bytes f32_pattern(std::size_t n, unsigned seed) {
  Bytes b(n * 4);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = static_cast<float>((i * 7919 + seed) % 1000) * 0.25f - 100.0f;
    std::memcpy(b.data() + 4 * i, &v, 4);
  }
  return b;
}

// Long runs of equal values: a few MiB deflate to a few KiB.
Bytes f32_runs(std::size_t n) {
  Bytes b(n * 4);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(i / 8192);
    std::memcpy(b.data() + 4 * i, &v, 4);
  }
  return b;
}

std::string f32_dict(std::size_t n) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
}

ZipMember deflated(std::string name, const Bytes& plain) {
  ZipMember m{std::move(name), deflate_raw(plain)};
  m.method = 8;
  m.usize = plain.size();
  return m;
}

struct Model {
  ZipLayout zip;
  std::vector<std::pair<std::string, Bytes>> tensors;  // name, expected bytes
};

// Two deflated f32 tensors (4 MiB and an odd size) and a stored one.
Model make_model() {
  Model m;
  const std::size_t n_big = 1 << 20, n_odd = 123457, n_stored = 1000;
  const Bytes big = f32_pattern(n_big, 1), odd = f32_pattern(n_odd, 2),
              stored = f32_pattern(n_stored, 3);
  m.zip = build_zip({deflated("big.npy", make_npy(f32_dict(n_big), big)),
                     deflated("odd.npy", make_npy(f32_dict(n_odd), odd)),
                     {"stored.npy", make_npy(f32_dict(n_stored), stored)}});
  m.tensors = {{"big", big}, {"odd", odd}, {"stored", stored}};
  return m;
}

Catalog catalog_of(SourcePtr src) {
  Catalog cat = parse_npz(std::move(src), {});
  return cat;
}

struct Result {
  Plan plan;
  RunStats stats;
  std::vector<std::uint64_t> progress;
};

Result run(const Catalog& cat, Sink& sink, std::uint64_t budget = 512 << 10,
           std::optional<OutType> to = std::nullopt) {
  boost::asio::io_context io;
  Result r;
  PlanOptions po;
  po.max_chunk_bytes = kChunk;
  po.to = to;
  r.plan = make_plan(cat, po);
  RunOptions ro;
  ro.threads = 2;
  ro.budget_bytes = budget;
  ro.progress = [&](std::uint64_t done, std::uint64_t) { r.progress.push_back(done); };
  r.stats = run_pipeline(io, cat, r.plan, sink, ro);
  return r;
}

void check_tensors(MemorySink& sink, const Model& m) {
  REQUIRE(sink.tensors().size() == m.tensors.size());
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    INFO(m.tensors[i].first);
    CHECK(sink.tensors()[i].name == m.tensors[i].first);
    REQUIRE(sink.tensors()[i].bytes == m.tensors[i].second.size());
    CHECK(std::memcmp(sink.tensors()[i].data.get(), m.tensors[i].second.data(),
                      m.tensors[i].second.size()) == 0);
  }
}

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    INFO(e.what());
    return e.kind();
  }
  FAIL("no mneme::Error thrown");
  return ErrorKind::cancelled;
}

}  // namespace

TEST_CASE("deflated tensors are planned as streamed chunks, not materialized", "[inflate]") {
  const Model m = make_model();
  const Catalog cat = catalog_of(memory_source("m.npz", m.zip.bytes));
  PlanOptions po;
  po.max_chunk_bytes = kChunk;
  po.max_materialize_bytes = 1 << 20;  // below the 4 MiB tensor: it must not be held whole
  const Plan plan = make_plan(cat, po);
  REQUIRE(plan.outputs.size() == 3);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(plan.detail->outputs[i].stream);
    CHECK(plan.detail->outputs[i].whole_bytes == 0);
  }
  CHECK_FALSE(plan.detail->outputs[2].stream);
  CHECK(plan.outputs[0].chunk_count == (4u << 20) / kChunk);
  CHECK(plan.max_chunk_out <= kChunk);
  CHECK(plan.max_chunk_in <= kChunk);
  // The chunks of one output are consecutive output ranges, in order.
  std::uint64_t at = 0;
  for (const auto& c : plan.chunks) {
    if (c.output != 0) continue;
    CHECK(c.out_offset == at);
    at += c.out_bytes;
  }
  CHECK(at == 4u << 20);
}

TEST_CASE("deflated npz streams exactly through MemorySink, bounded by the budget", "[inflate]") {
  const Model m = make_model();
  const std::uint64_t budget = 256 << 10;
  SECTION("random-access source that is read into buffers") {
    const Catalog cat = catalog_of(memory_source("m.npz", m.zip.bytes));
    MemorySink sink;
    const auto r = run(cat, sink, budget);
    check_tensors(sink, m);
    CHECK(r.stats.chunks == r.plan.chunks.size());
    CHECK(r.stats.chunks > 64);
    CHECK(r.stats.bytes_written == r.plan.total_out);
    CHECK(r.stats.bytes_read == r.plan.total_in);
    CHECK(r.stats.peak_buffer_bytes > 0);
    CHECK(r.stats.peak_buffer_bytes <= budget);
    REQUIRE(r.progress.size() == r.plan.chunks.size());
    CHECK(r.progress.back() == r.plan.total_out);
    CHECK(std::is_sorted(r.progress.begin(), r.progress.end()));
  }
  SECTION("contiguous (in-memory) source") {
    const Catalog cat = catalog_of(make_memory_source("m.npz", m.zip.bytes));
    MemorySink sink;
    const auto r = run(cat, sink, budget);
    check_tensors(sink, m);
    CHECK(r.stats.chunks == r.plan.chunks.size());
    CHECK(r.stats.peak_buffer_bytes <= budget);
  }
  SECTION("a file, and one thread") {
    const auto dir = scratch_dir("inflate-file");
    std::ofstream(dir / "m.npz", std::ios::binary)
        .write(reinterpret_cast<const char*>(m.zip.bytes.data()),
               static_cast<std::streamsize>(m.zip.bytes.size()));
    boost::asio::io_context io;
    const Catalog cat = open_catalog({(dir / "m.npz").string()}, io.get_executor());
    PlanOptions po;
    po.max_chunk_bytes = kChunk;
    const Plan plan = make_plan(cat, po);
    MemorySink sink;
    const auto stats = run_pipeline(io, cat, plan, sink, {.threads = 1, .budget_bytes = budget});
    check_tensors(sink, m);
    CHECK(stats.peak_buffer_bytes <= budget);
  }
}

TEST_CASE("deflated npz converted on the way (f32 to bf16) matches the stored path", "[inflate]") {
  const std::size_t n = 300001;
  const Bytes data = f32_pattern(n, 5);
  const Bytes npy = make_npy(f32_dict(n), data);
  const auto zipped = build_zip({deflated("x.npy", npy)});
  const auto plain = build_zip({{"x.npy", npy}});
  MemorySink got, want;
  const auto r =
      run(catalog_of(memory_source("d.npz", zipped.bytes)), got, 512 << 10, OutType::bf16);
  run(catalog_of(memory_source("s.npz", plain.bytes)), want, 512 << 10, OutType::bf16);
  CHECK(r.plan.detail->outputs[0].stream);
  CHECK(r.plan.outputs[0].dtype == DType::bf16);
  REQUIRE(got.tensors()[0].bytes == n * 2);
  REQUIRE(want.tensors()[0].bytes == n * 2);
  CHECK(std::memcmp(got.tensors()[0].data.get(), want.tensors()[0].data.get(), n * 2) == 0);
  CHECK(r.stats.peak_buffer_bytes <= 512 << 10);
  CHECK(r.stats.chunks == r.plan.chunks.size());
}

TEST_CASE("deflated npz streams through FileSink to the same bytes", "[inflate]") {
  const Model m = make_model();
  const auto dir = scratch_dir("inflate-filesink");
  const auto out = (dir / "out.safetensors").string();
  {
    const Catalog cat = catalog_of(memory_source("m.npz", m.zip.bytes));
    FileSink sink(out, FileFormat::safetensors);
    const auto r = run(cat, sink);
    CHECK(r.stats.chunks > 64);
  }
  boost::asio::io_context io;
  const Catalog written = open_catalog({out}, io.get_executor());
  REQUIRE(written.tensors.size() == m.tensors.size());
  for (std::size_t i = 0; i < written.tensors.size(); ++i) {
    const auto& name = written.tensors[i].name;
    const auto it = std::find_if(m.tensors.begin(), m.tensors.end(),
                                 [&](const auto& t) { return t.first == name; });
    REQUIRE(it != m.tensors.end());
    CHECK(read_tensor_bytes(written, i) == it->second);
  }
}

TEST_CASE("sequential sources: the decoder reads the deflated stream in order", "[inflate]") {
  // 2 MiB of elements from under 64 KiB of archive: a stream the zip reader
  // accepts (it lies in the retained prefix).
  const std::size_t n = 1 << 19;
  const Bytes runs = f32_runs(n), small = f32_pattern(5000, 9);
  const auto zip = build_zip({deflated("a.npy", make_npy(f32_dict(n), runs)),
                              {"b.npy", make_npy(f32_dict(5000), small)},
                              deflated("c.npy", make_npy(f32_dict(n), runs))});
  REQUIRE(zip.bytes.size() < kRetainedPrefix);
  const Model m{zip, {{"a", runs}, {"b", small}, {"c", runs}}};
  SECTION("test sequential source") {
    const Catalog cat = catalog_of(memory_source("s.npz", zip.bytes, /*sequential=*/true));
    MemorySink sink;
    const auto r = run(cat, sink);
    check_tensors(sink, m);
    CHECK(r.stats.chunks == r.plan.chunks.size());
  }
  SECTION("std::istream source") {
    auto text = std::make_unique<std::istringstream>(
        std::string(reinterpret_cast<const char*>(zip.bytes.data()), zip.bytes.size()));
    const Catalog cat =
        catalog_of(make_istream_source("stream.npz", std::move(text), zip.bytes.size()));
    MemorySink sink;
    run(cat, sink);
    check_tensors(sink, m);
  }
  SECTION("std::istream source of unknown size, as stdin or a socket") {
    auto text = std::make_unique<std::istringstream>(
        std::string(reinterpret_cast<const char*>(zip.bytes.data()), zip.bytes.size()));
    auto src = make_istream_source("stdin.npz", std::move(text));
    REQUIRE_FALSE(src->size());
    const Catalog cat = catalog_of(src);
    MemorySink sink;
    const auto r = run(cat, sink);
    check_tensors(sink, m);
    CHECK(r.stats.chunks == r.plan.chunks.size());
  }
}

TEST_CASE("a deflated .pth storage viewed by two tensors: header and tail are skipped",
          "[inflate]") {
  const std::size_t n = 200000;
  const Bytes storage = f32_pattern(2 * n, 4);
  PickleWriter p;
  p.proto().ordered_dict().op('(');
  p.tensor("lo", "FloatStorage", "0", 2 * n, 0, {static_cast<std::int64_t>(n)}, {1});
  p.tensor("hi", "FloatStorage", "0", 2 * n, n, {static_cast<std::int64_t>(n)}, {1});
  p.op('u').op('.');
  std::vector<ZipMember> members{{"archive/data.pkl", p.b}, deflated("archive/data/0", storage)};
  members.push_back({"archive/version", to_bytes("3\n")});
  const auto zip = build_zip(members);
  const Catalog cat = parse_pth(memory_source("v.pth", zip.bytes), {});
  const Model m{zip,
                {{"lo", Bytes(storage.begin(), storage.begin() + 4 * n)},
                 {"hi", Bytes(storage.begin() + 4 * n, storage.end())}}};
  MemorySink sink;
  const auto r = run(cat, sink);
  CHECK(r.plan.detail->outputs[0].stream);
  CHECK(r.plan.detail->outputs[1].stream);
  check_tensors(sink, m);
}

TEST_CASE("hostile deflated members give typed errors and leave no file", "[inflate]") {
  const std::size_t n = 1 << 18;
  const Bytes data = f32_pattern(n, 7);
  const Bytes npy = make_npy(f32_dict(n), data);
  const auto dir = scratch_dir("inflate-hostile");
  const auto out = (dir / "out.safetensors").string();
  const auto run_both = [&](const Bytes& archive) {
    const Catalog cat = catalog_of(memory_source("h.npz", archive));
    MemorySink mem;
    const ErrorKind k1 = kind_of([&] { run(cat, mem); });
    FileSink file(out, FileFormat::safetensors);
    const ErrorKind k2 = kind_of([&] { run(cat, file); });
    CHECK(k1 == k2);
    CHECK_FALSE(std::filesystem::exists(out));
    CHECK_FALSE(std::filesystem::exists(out + ".partial"));
    return k1;
  };
  SECTION("corrupt compressed stream") {
    auto z = build_zip({deflated("x.npy", npy)});
    const std::size_t data_at = z.local[0] + 30 + 5;
    const std::size_t clen = z.central[0] - data_at;
    for (std::size_t i = clen / 3; i < clen / 3 + 64; ++i) z.bytes[data_at + i] = std::byte{0xFF};
    CHECK(run_both(z.bytes) == ErrorKind::parse);
  }
  SECTION("wrong CRC-32") {
    auto z = build_zip({deflated("x.npy", npy)});
    patch_le(z.bytes, z.central[0] + 16, 0xdeadbeef, 4);
    CHECK(run_both(z.bytes) == ErrorKind::parse);
  }
  SECTION("declared inflated size larger than the stream") {
    auto z = build_zip({deflated("x.npy", npy)});
    patch_le(z.bytes, z.central[0] + 24, npy.size() + 100, 4);
    CHECK(run_both(z.bytes) == ErrorKind::parse);
  }
  SECTION("declared inflated size smaller than the stream") {
    // Bytes after the elements, so the NPY header still fits the declared size.
    Bytes padded = npy;
    padded.resize(npy.size() + 1000);
    auto z = build_zip({deflated("x.npy", padded)});
    patch_le(z.bytes, z.central[0] + 24, padded.size() - 10, 4);
    CHECK(run_both(z.bytes) == ErrorKind::parse);
  }
  SECTION("declared ratio above the cap") {
    auto z = build_zip({deflated("x.npy", npy)});
    patch_le(z.bytes, z.central[0] + 24, 0xFFFFFFF0, 4);
    CHECK(kind_of([&] { catalog_of(memory_source("h.npz", z.bytes)); }) == ErrorKind::limit);
  }
  SECTION("trailing bytes after the stream end within the member") {
    ZipMember zm = deflated("x.npy", npy);
    zm.data.push_back(std::byte{0});
    CHECK(run_both(build_zip({zm}).bytes) == ErrorKind::parse);
  }
}

TEST_CASE("cancelling a run mid-inflate stops it with cancelled", "[inflate]") {
  const Model m = make_model();
  const Catalog cat = catalog_of(memory_source("m.npz", m.zip.bytes));
  PlanOptions po;
  po.max_chunk_bytes = kChunk;
  const Plan plan = make_plan(cat, po);
  std::atomic<bool> cancel{false};
  CallbackSink sink([&](const OutputTensor&, std::uint64_t offset, std::span<const std::byte>) {
    if (offset >= 8 * kChunk) cancel = true;
  });
  boost::asio::io_context io;
  CHECK(kind_of([&] {
          run_pipeline(io, cat, plan, sink,
                       {.threads = 2, .budget_bytes = 512 << 10, .cancel = &cancel});
        }) == ErrorKind::cancelled);
}

TEST_CASE("NumPy oracle: savez_compressed archives stream to NumPy's own bytes", "[inflate]") {
  const std::string py = python_with("numpy");
  if (py.empty()) {
    MNEME_SKIP("NumPy not importable by python3 or /usr/bin/python3: NumPy oracle");
    return;
  }
  const auto dir = scratch_dir("inflate_oracle");
  const auto cases = run_oracle(py, "npz", dir);
  std::map<std::string, MemorySink> loaded;
  std::size_t streamed = 0, checked = 0;
  for (const auto& c : cases) {
    if (!c.archive.ends_with(".npz")) continue;
    INFO(c.archive << " / " << c.tensor);
    if (!loaded.count(c.archive)) {
      const Catalog cat = catalog_of(make_memory_source(c.archive, file_bytes(dir / c.archive)));
      const auto r = run(cat, loaded[c.archive], 256 << 10);
      for (const auto& o : r.plan.detail->outputs) streamed += o.stream;
    }
    auto& tensors = loaded[c.archive].tensors();
    const auto it = std::find_if(tensors.begin(), tensors.end(),
                                 [&](const auto& t) { return t.name == c.tensor; });
    REQUIRE(it != tensors.end());
    const Bytes want = file_bytes(dir / c.raw);
    REQUIRE(it->bytes == want.size());
    CHECK((want.empty() || std::memcmp(it->data.get(), want.data(), want.size()) == 0));
    ++checked;
  }
  CHECK(checked > 100);
  CHECK(streamed > 15);  // the little-endian C-order members of the compressed archive
}

TEST_CASE("many deflated tensors under a budget of a few chunks finish: what outputs hold "
          "never starves the reads that end them",
          "[inflate][budget]") {
  // 40 deflated members converted to BF16 (each holds its inflate buffer and
  // conversion scratch while open), read through a file source, not a mapping.
  std::vector<ZipMember> members;
  Model m;
  for (int i = 0; i < 40; ++i) {
    const Bytes values = f32_pattern(20000 + 97 * i, 10 + i);
    const std::string name = "t" + std::to_string(100 + i);
    members.push_back(deflated(name + ".npy", make_npy(f32_dict(20000 + 97 * i), values)));
    m.tensors.emplace_back(name, values);
  }
  const auto dir = test::scratch_dir("inflate-many");
  const auto zip = build_zip(members);
  std::ofstream(dir / "m.npz", std::ios::binary)
      .write(reinterpret_cast<const char*>(zip.bytes.data()), static_cast<std::streamsize>(zip.bytes.size()));
  boost::asio::io_context io;
  CatalogOptions co;
  co.open.file_io = FileIo::pread;
  const Catalog cat = open_catalog({(dir / "m.npz").string()}, io.get_executor(), co);
  MemorySink sink;
  PlanOptions po;
  po.max_chunk_bytes = kChunk;
  po.to = OutType::f32;  // F32 -> F32: no scratch; and again to BF16 below
  const Plan plan = make_plan(cat, po);
  // The least budget the run accepts: one output's hold and one read.
  std::uint64_t hold = 0;
  for (const auto& d : plan.detail->outputs) hold = std::max(hold, d.hold_bytes);
  const std::uint64_t budget = hold + plan.max_chunk_in;
  const RunStats stats = run_pipeline(io, cat, plan, sink, {.threads = 2, .budget_bytes = budget});
  CHECK(stats.peak_buffer_bytes <= budget);
  check_tensors(sink, m);
  MemorySink bf16;
  po.to = OutType::bf16;
  const Plan plan16 = make_plan(cat, po);
  std::uint64_t hold16 = 0;
  for (const auto& d : plan16.detail->outputs) hold16 = std::max(hold16, d.hold_bytes);
  CHECK_NOTHROW(run_pipeline(io, cat, plan16, bf16,
                             {.threads = 2, .budget_bytes = 2 * (hold16 + plan16.max_chunk_in)}));
  CHECK(bf16.tensors().size() == 40);
}
