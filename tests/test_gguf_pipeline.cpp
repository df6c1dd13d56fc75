// GGUF through the whole pipeline: every golden block-type fixture wrapped in
// a real GGUF file decodes to its goldens; GGUF written by mneme reads back in
// mneme and in an independent reader.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include <boost/asio/io_context.hpp>

#include "gguf_builder.hpp"
#include "io/sources.hpp"
#include "kernels/float_bits.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "remote_support.hpp"
#include "test_support.hpp"
#include "upload_support.hpp"

using namespace mneme;

namespace {

std::uint32_t u32_at(const std::vector<std::uint8_t>& b, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

// Decodes every tensor of `file` to `to` in memory, in small chunks.
MemorySink decode(const std::string& file, OutType to, unsigned threads) {
  boost::asio::io_context io;
  const Catalog cat = open_catalog({file}, io.get_executor());
  PlanOptions po;
  po.to = to;
  po.max_chunk_bytes = 4096;
  const Plan plan = make_plan(cat, po);
  MemorySink sink;
  run_pipeline(io, cat, plan, sink, RunOptions{.threads = threads, .budget_bytes = 32768});
  return sink;
}

// A golden block-type fixture (AMNG: type, count, raw blocks, BF16 and F32
// goldens) wrapped in a GGUF file in `dir`; returns its path.
std::string golden_gguf(const std::filesystem::path& golden, const std::filesystem::path& dir) {
  const auto f = test::read_file(golden);
  REQUIRE(f.size() >= 28);
  REQUIRE(std::memcmp(f.data(), "AMNG", 4) == 0);
  const std::uint32_t type = u32_at(f, 8), n = u32_at(f, 12), raw_len = u32_at(f, 16);
  REQUIRE(f.size() >= 28ull + raw_len);
  test::GgufBuilder b;
  b.header(1, 1);
  b.kv_string("general.architecture", "test");
  b.tensor("w", {n / 256 ? 256u : n, n / 256 ? n / 256u : 1u}, type, 0);
  b.align();
  b.raw(f.data() + 28, raw_len);
  const auto file = (dir / (golden.stem().string() + ".gguf")).string();
  std::ofstream(file, std::ios::binary) << b.bytes;
  return file;
}

}  // namespace

TEST_CASE("every GGUF golden loads over HTTP as it loads from disk", "[gguf][http][net]") {
  const auto base = test::server_or_skip();
  if (!base) return;
  const auto dir = test::scratch_dir("gguf-goldens-http");
  std::size_t cases = 0;
  for (const auto& path : test::fixture_files("gguf")) {
    const auto file = golden_gguf(path, dir);
    INFO(file);
    CHECK(test::load_bytes({file}, OutType::bf16) ==
          test::load_bytes({test::url_of(*base, file)}, OutType::bf16));
    ++cases;
  }
  CHECK(cases >= 22);
}

TEST_CASE("every GGUF golden arrives through the upload ring as it loads into memory",
          "[gguf][upload][fixtures]") {
  const auto dir = test::scratch_dir("gguf-goldens-upload");
  std::size_t cases = 0;
  for (const auto& path : test::fixture_files("gguf")) {
    INFO(path.filename().string());
    test::check_upload_matches({golden_gguf(path, dir)}, OutType::bf16);
    ++cases;
  }
  CHECK(cases >= 22);
}

// Issue 15: a chunk is bounded by its output as well as its input; a 4 MiB
// chunk of 4-bit blocks was 14 MiB of BF16, beyond a core's cache.
TEST_CASE("GGUF chunks keep input and output within the chunk size", "[gguf][plan][fixtures]") {
  const auto dir = test::scratch_dir("gguf-chunks");
  std::size_t checked = 0;
  for (const auto& path : test::fixture_files("gguf")) {
    const auto file = golden_gguf(path, dir);
    boost::asio::io_context io;
    const Catalog cat = open_catalog({file}, io.get_executor());
    for (const OutType to : {OutType::f32, OutType::bf16}) {
      INFO(path.filename().string() << " to " << static_cast<int>(to));
      PlanOptions po;
      po.to = to;
      po.max_chunk_bytes = 4096;
      const Plan plan = make_plan(cat, po);
      for (const Chunk& c : plan.chunks) {
        CHECK(c.input.length <= 4096);
        CHECK(c.out_bytes <= 4096);
        ++checked;
      }
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("every GGUF golden decodes bit-exactly through the pipeline",
          "[gguf][pipeline][fixtures]") {
  const auto dir = test::scratch_dir("gguf-goldens");
  std::size_t cases = 0;
  for (const auto& path : test::fixture_files("gguf")) {
    DYNAMIC_SECTION(path.filename().string()) {
      const auto f = test::read_file(path);
      REQUIRE(f.size() >= 28);
      REQUIRE(std::memcmp(f.data(), "AMNG", 4) == 0);
      const std::uint32_t raw_len = u32_at(f, 16), bf16_len = u32_at(f, 20),
                          f32_len = u32_at(f, 24);
      REQUIRE(f.size() == 28ull + raw_len + bf16_len + f32_len);
      const auto file = golden_gguf(path, dir);

      auto f32 = decode(file, OutType::f32, 2);
      REQUIRE(f32.tensors().size() == 1);
      REQUIRE(f32.tensors()[0].bytes == f32_len);
      CHECK((f32_len == 0 || std::memcmp(f32.tensors()[0].data.get(),
                                         f.data() + 28 + raw_len + bf16_len, f32_len) == 0));
      auto bf16 = decode(file, OutType::bf16, 1);
      REQUIRE(bf16.tensors()[0].bytes == bf16_len);
      CHECK((bf16_len == 0 ||
             std::memcmp(bf16.tensors()[0].data.get(), f.data() + 28 + raw_len, bf16_len) == 0));
    }
    ++cases;
  }
  CHECK(cases >= 22);
}

TEST_CASE("GGUF written by convert reads back identically, here and in an independent reader",
          "[gguf][writer]") {
  const auto dir = test::scratch_dir("gguf-convert");
  const std::string src = std::string(MNEME_SOURCE_DIR) + "/fixtures/sample-model";
  const std::string out = (dir / "sample.gguf").string();
  boost::asio::io_context io;
  const Catalog cat = open_catalog({src}, io.get_executor());
  {
    const Plan plan = make_plan(cat, {});
    FileSink sink(out, FileFormat::gguf);
    run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2});
  }
  const Catalog back = open_catalog({out}, io.get_executor());
  REQUIRE(back.tensors.size() == cat.tensors.size());
  const auto gguf = test::read_file(out);
  for (std::size_t i = 0; i < cat.tensors.size(); ++i) {
    CHECK(back.tensors[i].name == cat.tensors[i].name);
    CHECK(back.tensors[i].shape == cat.tensors[i].shape);
    CHECK(back.tensors[i].dtype == cat.tensors[i].dtype);
    std::vector<std::byte> want(cat.tensors[i].data.length);
    cat.sources[cat.tensors[i].data.source]->read_at(cat.tensors[i].data.offset, want);
    REQUIRE(back.tensors[i].data.length == want.size());
    CHECK((want.size() == 0 ||
           std::memcmp(gguf.data() + back.tensors[i].data.offset, want.data(), want.size()) == 0));
  }
  CHECK(std::find(back.header.metadata.begin(), back.header.metadata.end(),
                  MetadataEntry{"format", "pt"}) != back.header.metadata.end());

  // GGUF -> GGUF keeps the metadata section as it was.
  const std::string again = (dir / "again.gguf").string();
  {
    const Plan plan = make_plan(back, {});
    FileSink sink(again, FileFormat::gguf);
    run_pipeline(io, back, plan, sink, RunOptions{.threads = 1});
  }
  CHECK(test::read_file(again) == gguf);

  // The independent reader compares against a safetensors written from the same catalog.
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    MNEME_SKIP("python3-numpy missing: independent GGUF check");
    return;
  }
  const std::string st = (dir / "sample.safetensors").string();
  {
    const Plan plan = make_plan(cat, {});
    FileSink sink(st, FileFormat::safetensors);
    run_pipeline(io, cat, plan, sink, RunOptions{.threads = 1});
  }
  const std::string cmd = "/usr/bin/python3 " + std::string(MNEME_SOURCE_DIR) +
                          "/scripts/check_gguf.py '" + out + "' '" + st + "'";
  CHECK(std::system(cmd.c_str()) == 0);
}
