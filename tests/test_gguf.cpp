// GGUF front matter: valid files of every version, split models, and hostile
// files (hostile-inputs.md §1.1 and §6) that must give typed errors.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include <boost/asio/io_context.hpp>

#include "gguf_builder.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "test_support.hpp"

using namespace mneme;
using test::GgufBuilder;

namespace {

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

Catalog parse(const std::string& file) { return parse_gguf(make_memory_source("t.gguf", bytes_of(file))); }

// A small valid model: an F32 [2,4] tensor and a Q8_0 [2,32] tensor.
std::string valid(std::uint32_t version = 3) {
  GgufBuilder b;
  b.version = version;
  b.header(2, 3);
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.context_length", 4096);
  b.str("tokenizer.ggml.tokens");
  b.u32(9);
  b.u32(8);
  b.count(2);
  b.str("<s>");
  b.str("</s>");
  b.tensor("a", {4, 2}, 0, 0);
  b.tensor("b", {32, 2}, 8, 32);
  b.align();
  b.data(32);        // a: 8 x f32
  b.data(2 * 34);    // b: 2 Q8_0 blocks
  return b.bytes;
}

struct Hostile {
  const char* name;
  std::function<std::string()> make;
  ErrorKind kind;
};

// One tensor entry after a header claiming one tensor and no metadata.
std::string one_tensor(std::vector<std::uint64_t> ne, std::uint32_t type, std::uint64_t offset, std::size_t data) {
  GgufBuilder b;
  b.header(1, 0);
  b.tensor("t", std::move(ne), type, offset);
  b.align();
  b.data(data);
  return b.bytes;
}

std::vector<Hostile> hostile_cases() {
  return {
      {"bad magic",
       [] {
         auto f = valid();
         f[0] = 'X';
         return f;
       },
       ErrorKind::parse},
      {"version 0",
       [] {
         auto f = valid();
         f[4] = 0;
         return f;
       },
       ErrorKind::unsupported},
      {"version 4",
       [] {
         auto f = valid();
         f[4] = 4;
         return f;
       },
       ErrorKind::unsupported},
      {"big-endian version",
       [] {
         auto f = valid();
         f[4] = 0;
         f[7] = 3;
         return f;
       },
       ErrorKind::unsupported},
      {"truncated after the magic", [] { return std::string("GGUF\x03\x00", 6); },
       ErrorKind::parse},
      {"tensor count 2^62",
       [] {
         GgufBuilder b;
         b.header(1ull << 62, 0);
         return b.bytes;
       },
       ErrorKind::limit},
      {"kv count 2^60",
       [] {
         GgufBuilder b;
         b.header(0, 1ull << 60);
         return b.bytes;
       },
       ErrorKind::parse},
      {"key length 2^40",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.u64(1ull << 40);
         return b.bytes + std::string(16, 'x');
       },
       ErrorKind::limit},
      {"key longer than the file",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.u64(1000);
         return b.bytes + std::string(20, 'k');
       },
       ErrorKind::parse},
      {"string value of 2^40 bytes",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(8);
         b.u64(1ull << 40);
         return b.bytes;
       },
       ErrorKind::limit},
      {"u32 array longer than the file",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(9);
         b.u32(4);
         b.u64(1 << 20);
         return b.bytes;
       },
       ErrorKind::parse},
      {"array byte size overflow",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(9);
         b.u32(10);
         b.u64(1ull << 62);
         return b.bytes;
       },
       ErrorKind::parse},
      {"string array element longer than the file",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(9);
         b.u32(8);
         b.u64(1);
         b.u64(1ull << 20);
         return b.bytes;
       },
       ErrorKind::parse},
      {"arrays nested too deep",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(9);
         for (int i = 0; i < 5; ++i) {
           b.u32(9);
           b.u64(1);
         }
         b.u32(4);
         b.u64(1);
         b.u32(7);
         return b.bytes;
       },
       ErrorKind::parse},
      {"unknown value type 13",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(13);
         b.u32(0);
         return b.bytes;
       },
       ErrorKind::parse},
      {"unknown array element type",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(9);
         b.u32(99);
         b.u64(1);
         b.u32(0);
         return b.bytes;
       },
       ErrorKind::parse},
      {"bool value 2",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("k");
         b.u32(7);
         b.u8(2);
         return b.bytes;
       },
       ErrorKind::parse},
      {"duplicate metadata key",
       [] {
         GgufBuilder b;
         b.header(0, 2);
         b.kv_u32("k", 1);
         b.kv_u32("k", 2);
         return b.bytes;
       },
       ErrorKind::parse},
      {"alignment 0",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.kv_u32("general.alignment", 0);
         return b.bytes;
       },
       ErrorKind::parse},
      {"alignment 48",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.kv_u32("general.alignment", 48);
         return b.bytes;
       },
       ErrorKind::parse},
      {"alignment of type u64",
       [] {
         GgufBuilder b;
         b.header(0, 1);
         b.str("general.alignment");
         b.u32(10);
         b.u64(32);
         return b.bytes;
       },
       ErrorKind::parse},
      {"zero dimensions", [] { return one_tensor({}, 0, 0, 0); }, ErrorKind::parse},
      {"five dimensions",
       [] {
         return one_tensor({1, 1, 1, 1, 1}, 0, 0, 4);
       },
       ErrorKind::parse},
      {"element count overflow",
       [] {
         return one_tensor({1ull << 40, 1ull << 40}, 0, 0, 0);
       },
       ErrorKind::parse},
      {"byte size overflow",
       [] {
         return one_tensor({1ull << 62, 2}, 0, 0, 0);
       },
       ErrorKind::parse},
      {"removed type id 4", [] { return one_tensor({32}, 4, 0, 32); }, ErrorKind::parse},
      {"type id 1000", [] { return one_tensor({32}, 1000, 0, 32); }, ErrorKind::parse},
      {"row not a whole number of blocks", [] { return one_tensor({33}, 8, 0, 68); },
       ErrorKind::parse},
      {"offset not aligned", [] { return one_tensor({4}, 0, 4, 32); }, ErrorKind::parse},
      {"tensor past the end of the file", [] { return one_tensor({64}, 0, 0, 16); },
       ErrorKind::parse},
      {"offset near 2^64", [] { return one_tensor({4}, 0, ~std::uint64_t{31}, 16); },
       ErrorKind::parse},
      {"overlapping tensors",
       [] {
         GgufBuilder b;
         b.header(2, 0);
         b.tensor("a", {8}, 0, 0);
         b.tensor("b", {8}, 0, 0);
         b.align();
         b.data(32);
         return b.bytes;
       },
       ErrorKind::parse},
      {"duplicate tensor name",
       [] {
         GgufBuilder b;
         b.header(2, 0);
         b.tensor("a", {8}, 0, 0);
         b.tensor("a", {8}, 0, 32);
         b.align();
         b.data(64);
         return b.bytes;
       },
       ErrorKind::parse},
      {"truncated inside the tensor table",
       [] {
         auto f = valid();
         return f.substr(0, f.size() - 150);
       },
       ErrorKind::parse},
  };
}

}  // namespace

TEST_CASE("valid GGUF of every version parses", "[gguf]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    DYNAMIC_SECTION("version " << v) {
      const Catalog cat = parse(valid(v));
      CHECK(cat.format == Format::gguf);
      CHECK(cat.header.version == v);
      REQUIRE(cat.tensors.size() == 2);
      CHECK(cat.tensors[0].shape == std::vector<std::uint64_t>{2, 4});
      CHECK(cat.tensors[0].dtype == DType::f32);
      CHECK(std::holds_alternative<scheme::Plain>(cat.tensors[0].scheme));
      CHECK(std::holds_alternative<scheme::GgufBlocks>(cat.tensors[1].scheme));
      CHECK(tensor_type_name(cat.tensors[1]) == "Q8_0");
      CHECK(cat.tensors[1].data.length == 68);
      CHECK(cat.tensors[1].data.offset - cat.tensors[0].data.offset == 32);
      REQUIRE(cat.header.metadata.size() == 2);
      CHECK(cat.header.metadata[0] == MetadataEntry{"general.architecture", "llama"});
      CHECK(cat.header.metadata[1] == MetadataEntry{"llama.context_length", "4096"});
      REQUIRE(cat.header.array_metadata.size() == 1);
      CHECK(cat.header.array_metadata[0].second == "array<string>[2]");
    }
  }
}

TEST_CASE("GGUF inspect reads forward only, so a sequential source works", "[gguf]") {
  const std::string file = valid();
  const Catalog cat = parse_gguf(make_istream_source("stream", std::make_unique<std::istringstream>(file)));
  CHECK(cat.tensors.size() == 2);
}

TEST_CASE("hostile GGUF files give typed errors", "[gguf][hostile]") {
  const auto cases = hostile_cases();
  REQUIRE(cases.size() >= 30);
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      try {
        parse(c.make());
        FAIL("accepted: " << c.name);
      } catch (const Error& e) {
        CHECK(to_string(e.kind()) == to_string(c.kind));
      }
    }
  }
}

TEST_CASE("the CLI exits 1 on every hostile GGUF", "[gguf][hostile][cli]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("hostile-gguf");
  int i = 0;
  for (const auto& c : hostile_cases()) {
    const auto file = dir / ("case" + std::to_string(i++) + ".gguf");
    std::ofstream(file, std::ios::binary) << c.make();
    const std::string cmd = std::string(cli) + " inspect '" + file.string() + "' >/dev/null 2>&1";
    const int status = std::system(cmd.c_str());
    INFO(c.name);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
  }
}

TEST_CASE("split GGUF models open as one catalog from the first split", "[gguf][split]") {
  const auto dir = test::scratch_dir("gguf-split");
  for (int s = 1; s <= 3; ++s) {
    GgufBuilder b;
    b.header(1, 1);
    b.kv_u32("split.no", static_cast<std::uint32_t>(s - 1));
    b.tensor("t" + std::to_string(s), {8}, 0, 0);
    b.align();
    b.data(32);
    std::ofstream(dir / ("m-0000" + std::to_string(s) + "-of-00003.gguf"), std::ios::binary) << b.bytes;
  }
  boost::asio::io_context io;
  const Catalog cat = open_catalog({(dir / "m-00001-of-00003.gguf").string()}, io.get_executor());
  CHECK(cat.sources.size() == 3);
  REQUIRE(cat.tensors.size() == 3);
  CHECK(cat.tensors[2].name == "t3");
  CHECK(cat.tensors[2].data.source == 2);
}

namespace {

// A GGUF of `version` holding one metadata entry of every value type: each
// scalar type, arrays of each, an array of arrays, an empty array, a
// 150 000-entry tokenizer, and a non-default general.alignment.
std::string every_metadata_type(
    std::uint32_t version,
    const std::vector<std::pair<std::string, std::uint32_t>>& extra_u32 = {}) {
  GgufBuilder b;
  b.version = version;
  const std::uint64_t n_kv = 32 + extra_u32.size();
  b.header(1, n_kv);
  auto key = [&](const std::string& k, std::uint32_t type) {
    b.str(k);
    b.u32(type);
  };
  auto arr = [&](const std::string& k, std::uint32_t elem, std::uint64_t n) {
    key(k, 9);
    b.u32(elem);
    b.count(n);
  };
  const std::uint16_t u16 = 65535;
  const std::int16_t i16 = -300;
  const std::int32_t i32 = -5;
  const float f32 = 0.1f;
  const std::int64_t i64 = -(std::int64_t{1} << 40);
  const double f64 = 3.141592653589793;
  key("t.u8", 0), b.u8(7);
  key("t.i8", 1), b.u8(0xF9);
  key("t.u16", 2), b.raw(&u16, 2);
  key("t.i16", 3), b.raw(&i16, 2);
  key("t.u32", 4), b.u32(4000000000u);
  key("t.i32", 5), b.raw(&i32, 4);
  key("t.f32", 6), b.raw(&f32, 4);
  key("t.bool", 7), b.u8(1);
  key("t.string", 8), b.str("h\xc3\xa9llo");
  key("t.u64", 10), b.u64(std::uint64_t{1} << 40);
  key("t.i64", 11), b.raw(&i64, 8);
  key("t.f64", 12), b.raw(&f64, 8);
  for (std::uint32_t t : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 10u, 11u, 12u}) {
    static const std::size_t kSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    arr("a." + std::to_string(t), t, 3);
    for (int i = 0; i < 3; ++i) b.data(kSize[t], t == 7 ? '\x01' : static_cast<char>(0x21 + i));
  }
  arr("a.empty", 0, 0);
  arr("a.nested", 9, 2);  // [[1, 2], ["x"]]
  b.u32(5), b.count(2), b.u32(1), b.u32(2);
  b.u32(8), b.count(1), b.str("x");
  arr("tokenizer.ggml.tokens", 8, 150000);
  for (int i = 0; i < 150000; ++i) b.str("tok" + std::to_string(i));
  arr("tokenizer.ggml.scores", 6, 150000);
  for (int i = 0; i < 150000; ++i) {
    const float s = -static_cast<float>(i);
    b.raw(&s, 4);
  }
  key("general.architecture", 8), b.str("llama");
  key("llama.block_count", 4), b.u32(2);
  key("general.alignment", 4), b.u32(64);
  key("general.name", 8), b.str("every type");
  key("t.bool0", 7), b.u8(0);
  for (const auto& [k, v] : extra_u32) key(k, 4), b.u32(v);
  b.tensor("w", {4}, 0, 0);
  b.align(64);
  b.data(16);
  return b.bytes;
}

}  // namespace

TEST_CASE("GGUF -> GGUF keeps every metadata entry with its type and value",
          "[gguf][cli][metadata]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("gguf-metadata");
  for (std::uint32_t v : {1u, 2u, 3u}) {
    DYNAMIC_SECTION("version " << v) {
      const auto src = dir / ("v" + std::to_string(v) + ".gguf");
      const auto out = dir / ("v" + std::to_string(v) + "-out.gguf");
      std::ofstream(src, std::ios::binary) << every_metadata_type(v);
      const auto conv = test::run(std::string(cli) + " convert " + test::shq(src) +
                                  " --to gguf -o " + test::shq(out) + " -q 2>&1");
      INFO(conv.out);
      REQUIRE(conv.status == 0);
      const auto check = test::run("/usr/bin/python3 " + std::string(MNEME_SOURCE_DIR) +
                                   "/scripts/check_gguf.py --metadata " + test::shq(out) + " " +
                                   test::shq(src) + " 2>&1");
      INFO(check.out);
      CHECK(check.status == 0);
      // inspect shows the version and the arrays.
      const auto shown = test::run(std::string(cli) + " inspect --json " + test::shq(src));
      REQUIRE(shown.status == 0);
      CHECK(shown.out.find("\"version\":" + std::to_string(v)) != std::string::npos);
      CHECK(shown.out.find("\"tokenizer.ggml.tokens\":\"array<string>[150000]\"") !=
            std::string::npos);
    }
  }
}

TEST_CASE("a split GGUF converts to one file with the first split's metadata, split.* dropped",
          "[gguf][cli][metadata][split]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("gguf-metadata-split");
  for (std::uint32_t s = 0; s < 2; ++s) {
    std::string file;
    if (s == 0) {
      file = every_metadata_type(3, {{"split.no", 0}, {"split.count", 2}});
    } else {
      GgufBuilder b;
      b.header(1, 2);
      b.kv_u32("split.no", 1);
      b.kv_u32("split.count", 2);
      b.tensor("w2", {8}, 0, 0);
      b.align();
      b.data(32);
      file = b.bytes;
    }
    std::ofstream(dir / ("m-0000" + std::to_string(s + 1) + "-of-00002.gguf"), std::ios::binary)
        << file;
  }
  const auto first = dir / "m-00001-of-00002.gguf";
  const auto out = dir / "out.gguf";
  const auto conv = test::run(std::string(cli) + " convert " + test::shq(first) + " --to gguf -o " +
                              test::shq(out) + " -q 2>&1");
  INFO(conv.out);
  REQUIRE(conv.status == 0);
  const auto check = test::run("/usr/bin/python3 " + std::string(MNEME_SOURCE_DIR) +
                               "/scripts/check_gguf.py --metadata " + test::shq(out) + " " +
                               test::shq(first) + " 2>&1");
  INFO(check.out);
  CHECK(check.status == 0);
}
