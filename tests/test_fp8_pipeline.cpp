// Scaled FP8 checkpoints through detection and the pipeline: every fp8/ golden
// wrapped in a two-shard safetensors model (scales in the other shard) decodes
// bit-exactly; inconsistent files give typed errors.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include <boost/asio/io_context.hpp>

#include "kernels/float_bits.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "src/formats/safetensors_writer.hpp"
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

void write_st(const std::filesystem::path& path, std::vector<TensorEntry> entries,
              const std::vector<std::span<const std::uint8_t>>& data) {
  auto w = create_safetensors_file(path.string(), entries, {});
  for (std::size_t i = 0; i < entries.size(); ++i) w->write(i, 0, std::as_bytes(data[i]));
  w->commit();
}

void write_index(const std::filesystem::path& dir, const std::string& weight_file, const std::string& scale_file) {
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map":{"layer.weight":")" << weight_file << R"(","layer.weight_scale_inv":")" << scale_file
      << R"(","norm.weight":")" << weight_file << R"("}})";
}

MemorySink run(const std::filesystem::path& model, OutType to) {
  boost::asio::io_context io;
  const Catalog cat = open_catalog({model.string()}, io.get_executor());
  PlanOptions po;
  po.to = to;
  po.max_chunk_bytes = 4096;
  const Plan plan = make_plan(cat, po);
  MemorySink sink;
  run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2, .budget_bytes = 16384});
  return sink;
}

}  // namespace

TEST_CASE("every FP8 golden decodes through detection and the pipeline, also over HTTP",
          "[fp8][pipeline][fixtures][http]") {
  std::size_t cases = 0, remote = 0;
  for (const auto& path : test::fixture_files("fp8")) {
    DYNAMIC_SECTION(path.filename().string()) {
      const auto f = test::read_file(path);
      REQUIRE(f.size() >= 40);
      REQUIRE(std::memcmp(f.data(), "AMNF", 4) == 0);
      const std::uint32_t scheme = u32_at(f, 8), sdt = u32_at(f, 12), rows = u32_at(f, 16), cols = u32_at(f, 20),
                          wlen = u32_at(f, 24), slen = u32_at(f, 28), blen = u32_at(f, 32), flen = u32_at(f, 36);
      REQUIRE(f.size() == 40ull + wlen + slen + blen + flen);
      const DType sdtype = sdt == 0 ? DType::f32 : sdt == 1 ? DType::bf16 : DType::f16;
      const std::uint32_t esz = sdt == 0 ? 4 : 2;
      std::vector<std::uint64_t> sshape;
      std::uint32_t scale_bytes = slen;
      if (scheme == 0) {
        const std::uint64_t grid_rows = (rows + 127) / 128;
        sshape = {grid_rows, slen / esz / grid_rows};
      } else if (scheme == 1) {
        sshape = {1};
        scale_bytes = esz;  // the first element is the scale
      } else {
        sshape = {rows, 1};
      }
      const std::span<const std::uint8_t> weight(f.data() + 40, wlen), scale(f.data() + 40 + wlen, scale_bytes);
      const std::vector<std::uint8_t> norm(16, 0x3F);

      const auto dir = test::scratch_dir("fp8-" + path.stem().string());
      write_st(dir / "a.safetensors", {{"layer.weight", DType::f8_e4m3, {rows, cols}, wlen}, {"norm.weight", DType::bf16, {8}, 16}},
               {weight, norm});
      write_st(dir / "b.safetensors", {{"layer.weight_scale_inv", sdtype, sshape, scale_bytes}}, {scale});
      write_index(dir, "a.safetensors", "b.safetensors");

      if (const char* base = std::getenv("MNEME_HTTP_URL"); base && *base) {
        // The same model over HTTP: the index, its shards and the scale companion.
        const auto index = dir / "model.safetensors.index.json";
        CHECK(test::load_bytes({index.string()}, OutType::bf16) ==
              test::load_bytes({test::url_of(base, index)}, OutType::bf16));
        ++remote;
      }

      test::check_upload_matches({dir.string()}, OutType::bf16);  // the upload queue too

      auto f32 = run(dir, OutType::f32);
      REQUIRE(f32.tensors().size() == 2);  // the scale is a companion, not an output
      REQUIRE(f32.tensors()[0].name == "layer.weight");
      REQUIRE(f32.tensors()[0].bytes == flen);
      CHECK(std::memcmp(f32.tensors()[0].data.get(), f.data() + 40 + wlen + slen + blen, flen) == 0);

      auto bf16 = run(dir, OutType::bf16);
      REQUIRE(bf16.tensors()[0].bytes == blen);
      std::size_t off_by_more = 0;
      for (std::size_t i = 0; i < blen / 2; ++i) {
        std::uint16_t got, want;
        std::memcpy(&got, bf16.tensors()[0].data.get() + 2 * i, 2);
        std::memcpy(&want, f.data() + 40 + wlen + slen + 2 * i, 2);
        off_by_more += (got > want ? got - want : want - got) > 1;
      }
      CHECK(off_by_more == 0);

      // The same weights in one file decode to the same bytes.
      const auto one = test::scratch_dir("fp8-one-" + path.stem().string());
      write_st(one / "m.safetensors",
               {{"layer.weight", DType::f8_e4m3, {rows, cols}, wlen}, {"layer.weight_scale_inv", sdtype, sshape, scale_bytes}},
               {weight, scale});
      auto single = run(one / "m.safetensors", OutType::f32);
      CHECK(std::memcmp(single.tensors()[0].data.get(), f32.tensors()[0].data.get(), flen) == 0);
    }
    ++cases;
  }
  CHECK(cases >= 5);
  if (remote == 0) MNEME_SKIP("MNEME_HTTP_URL not set (scripts/test.sh starts the test nginx)");
}

TEST_CASE("inconsistent FP8 checkpoints give typed errors", "[fp8][hostile]") {
  const std::vector<std::uint8_t> w(256 * 200, 0x38), s32(4 * 8, 0);
  struct Case {
    const char* name;
    DType sdtype;
    std::vector<std::uint64_t> sshape;
    std::size_t sbytes;
    std::string config;
  };
  const std::vector<Case> cases{
      {"integer scale", DType::i32, {2, 2}, 16, ""},
      {"grid that does not tile 128x128", DType::f32, {3, 2}, 24, ""},
      {"grid against config weight_block_size", DType::f32, {2, 2}, 16, R"({"quantization_config":{"weight_block_size":[64,64]}})"},
      {"malformed weight_block_size", DType::f32, {2, 2}, 16, R"({"quantization_config":{"weight_block_size":[128]}})"},
      {"3-D scale", DType::f32, {2, 2, 1}, 16, ""},
      {"config.json not JSON", DType::f32, {2, 2}, 16, "{oops"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const auto dir = test::scratch_dir("fp8-bad");
      std::vector<std::uint8_t> sb(c.sbytes, 0);
      write_st(dir / "m.safetensors",
               {{"l.weight", DType::f8_e4m3, {256, 200}, w.size()}, {"l.weight_scale_inv", c.sdtype, c.sshape, c.sbytes}},
               {w, sb});
      if (!c.config.empty()) std::ofstream(dir / "config.json") << c.config;
      boost::asio::io_context io;
      try {
        open_catalog({dir.string()}, io.get_executor());
        FAIL("accepted " << c.name);
      } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::parse);
      }
    }
  }
}
