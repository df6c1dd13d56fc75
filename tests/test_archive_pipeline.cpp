// NPZ / NPY / .pth through the pipeline: every fixture and every layout
// (big-endian, Fortran order, deflated) streams to the same bytes as the
// reference reader, and to what PyTorch's own torch.load returned.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/tensor_stream.hpp"
#include "test_support.hpp"

using namespace mneme;

namespace {

MemorySink load(const Catalog& cat, boost::asio::io_context& io) {
  PlanOptions po;
  po.max_chunk_bytes = 64;
  const Plan plan = make_plan(cat, po);
  MemorySink sink;
  run_pipeline(io, cat, plan, sink, RunOptions{.threads = 2, .budget_bytes = 256});
  return sink;
}

void check_against_reference_reader(const Catalog& cat, MemorySink& sink) {
  REQUIRE(sink.tensors().size() == cat.tensors.size());
  for (std::size_t i = 0; i < cat.tensors.size(); ++i) {
    const auto want = read_tensor_bytes(cat, i);
    REQUIRE(sink.tensors()[i].bytes == want.size());
    CHECK((want.size() == 0 || std::memcmp(sink.tensors()[i].data.get(), want.data(), want.size()) == 0));
  }
}

std::string npy(const std::string& descr, bool fortran, const std::string& shape, const std::string& data) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': " + shape + ", }";
  std::string header = dict + std::string((64 - (10 + dict.size() + 1) % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

}  // namespace

TEST_CASE("PyTorch fixtures stream to exactly what torch.load returned", "[pth][pipeline][fixtures]") {
  boost::asio::io_context io;
  std::size_t cases = 0;
  for (const auto& path : test::fixture_files("pth")) {
    if (path.extension() != ".pth") continue;
    DYNAMIC_SECTION(path.filename().string()) {
      const Catalog cat = open_catalog({path.string()}, io.get_executor());
      auto sink = load(cat, io);
      check_against_reference_reader(cat, sink);
      auto ref_path = path;
      ref_path.replace_filename(path.stem().string() + "_reference.json");
      const auto text = test::read_file(ref_path);
      const auto ref = boost::json::parse(std::string(text.begin(), text.end()));
      const auto& tensors = ref.at("tensors").as_array();
      REQUIRE(tensors.size() == sink.tensors().size());
      for (std::size_t i = 0; i < tensors.size(); ++i) {
        CHECK(sink.tensors()[i].name == tensors[i].at("name").as_string());
        const std::string hex(tensors[i].at("data_hex").as_string());
        std::string got;
        for (std::size_t b = 0; b < sink.tensors()[i].bytes; ++b) {
          char two[3];
          std::snprintf(two, sizeof two, "%02x", static_cast<unsigned>(sink.tensors()[i].data[b]));
          got += two;
        }
        CHECK(got == hex);
      }
    }
    ++cases;
  }
  CHECK(cases >= 2);
}

TEST_CASE("the NPZ fixture streams to the reference reader's bytes", "[npz][pipeline][fixtures]") {
  boost::asio::io_context io;
  const Catalog cat = open_catalog({(test::fixtures_root() / "npz" / "gemma_scope_small.npz").string()}, io.get_executor());
  CHECK(cat.format == Format::npz);
  auto sink = load(cat, io);
  check_against_reference_reader(cat, sink);
}

TEST_CASE("big-endian and Fortran-order NPY are normalised by the pipeline", "[npy][pipeline]") {
  const auto dir = test::scratch_dir("npy-layouts");
  // [[1, 2, 3], [4, 5, 6]] as big-endian f4 in Fortran order: 1 4 2 5 3 6.
  std::string data;
  for (float v : {1.f, 4.f, 2.f, 5.f, 3.f, 6.f}) {
    std::uint32_t b;
    std::memcpy(&b, &v, 4);
    b = __builtin_bswap32(b);
    data.append(reinterpret_cast<const char*>(&b), 4);
  }
  std::ofstream(dir / "x.npy", std::ios::binary) << npy(">f4", true, "(2, 3)", data);
  boost::asio::io_context io;
  const Catalog cat = open_catalog({(dir / "x.npy").string()}, io.get_executor());
  auto sink = load(cat, io);
  REQUIRE(sink.tensors().size() == 1);
  REQUIRE(sink.tensors()[0].bytes == 24);
  float got[6];
  std::memcpy(got, sink.tensors()[0].data.get(), 24);
  CHECK(std::vector<float>(got, got + 6) == std::vector<float>{1, 2, 3, 4, 5, 6});
}
