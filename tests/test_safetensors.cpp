// safetensors: golden headers from the reference implementation, hostile
// headers (hostile-inputs.md §6 items 18-28), sharded index, writer round trip.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <random>
#include <fstream>

#include <boost/json.hpp>

#include "io/sources.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "src/formats/safetensors_writer.hpp"
#include "test_support.hpp"

using namespace mneme;
namespace json = boost::json;

namespace {

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

// A safetensors file: 8-byte prefix (the header's length unless overridden),
// header text, `data_len` data bytes.
std::string st_file(const std::string& header, std::size_t data_len,
                    std::optional<std::uint64_t> prefix = std::nullopt) {
  std::uint64_t n = prefix ? *prefix : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + std::string(data_len, '\x01');
}

Catalog parse_text(const std::string& file, const Limits& limits = {}) {
  return parse_safetensors(make_memory_source("test.safetensors", bytes_of(file)), limits);
}

struct Hostile {
  const char* name;
  std::string file;
  ErrorKind kind;
};

std::vector<Hostile> hostile_cases() {
  const std::string ok_t = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  auto one = [](const std::string& tensor_json, std::size_t data) { return st_file("{" + tensor_json + "}", data); };
  std::string deep = "{\"__metadata__\":" + std::string(200, '[') + std::string(200, ']') + "}";
  return {
      {"shorter than the length prefix", "\x04\x00\x00", ErrorKind::parse},
      {"header length u64 max", st_file("{}", 0, ~0ull), ErrorKind::limit},
      {"header length 2^63", st_file("{}", 0, 1ull << 63), ErrorKind::limit},
      {"header length 100000001", st_file("{}", 0, 100000001ull), ErrorKind::limit},
      {"header longer than the file", st_file("{}", 0, 4096), ErrorKind::parse},
      {"header not UTF-8", st_file("{\"\xff\xfe\":{}}", 0), ErrorKind::parse},
      {"header not JSON", st_file("{not json}", 0), ErrorKind::parse},
      {"header is an array", st_file("[1,2,3] ", 0), ErrorKind::parse},
      {"header is a number", st_file("12345678", 0), ErrorKind::parse},
      {"header padded with NUL", st_file(std::string("{}") + std::string(6, '\0'), 0),
       ErrorKind::parse},
      {"duplicate tensor name", st_file("{" + ok_t + "," + ok_t + "}", 8), ErrorKind::parse},
      {"duplicate name spelled with an escape",
       st_file("{" + ok_t + R"(,"\u0061":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16),
       ErrorKind::parse},
      {"unknown dtype", one(R"("a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]})", 8),
       ErrorKind::parse},
      {"known but unsupported dtype F4",
       one(R"("a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]})", 1), ErrorKind::unsupported},
      {"dtype not a string", one(R"("a":{"dtype":4,"shape":[2],"data_offsets":[0,8]})", 8),
       ErrorKind::parse},
      {"negative dimension", one(R"("a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", 8),
       ErrorKind::parse},
      {"float dimension", one(R"("a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})", 8),
       ErrorKind::parse},
      {"string dimension", one(R"("a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]})", 8),
       ErrorKind::parse},
      {"shape not an array", one(R"("a":{"dtype":"F32","shape":2,"data_offsets":[0,8]})", 8),
       ErrorKind::parse},
      {"data_offsets with one element",
       one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8]})", 8), ErrorKind::parse},
      {"data_offsets with three elements",
       one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]})", 8), ErrorKind::parse},
      {"negative data offset", one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]})", 8),
       ErrorKind::parse},
      {"reversed data offsets", one(R"("a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]})", 8),
       ErrorKind::parse},
      {"first tensor not at 0", one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})", 16),
       ErrorKind::parse},
      {"gap between tensors",
       st_file("{" + ok_t + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", 20),
       ErrorKind::parse},
      {"overlapping tensors",
       st_file("{" + ok_t + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
       ErrorKind::parse},
      {"extent larger than shape x dtype",
       one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]})", 12), ErrorKind::parse},
      {"extent smaller than shape x dtype (MLX #3363)",
       one(R"("a":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4]})", 4), ErrorKind::parse},
      {"element count overflow",
       one(R"("a":{"dtype":"F32","shape":[8589934592,8589934592],"data_offsets":[0,0]})", 0),
       ErrorKind::parse},
      {"overflow before a zero dimension",
       one(R"("a":{"dtype":"F32","shape":[8589934592,8589934592,0],"data_offsets":[0,0]})", 0),
       ErrorKind::parse},
      {"byte size overflow",
       one(R"("a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]})", 0),
       ErrorKind::parse},
      {"trailing bytes after the last tensor (polyglot)",
       one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 12), ErrorKind::parse},
      {"data runs past the end of the file",
       one(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", 8), ErrorKind::parse},
      {"__metadata__ value not a string", st_file(R"({"__metadata__":{"k":1}})", 0),
       ErrorKind::parse},
      {"__metadata__ value an object", st_file(R"({"__metadata__":{"k":{"x":"y"}}})", 0),
       ErrorKind::parse},
      {"__metadata__ not an object", st_file(R"({"__metadata__":"text"})", 0), ErrorKind::parse},
      {"missing data_offsets", one(R"("a":{"dtype":"F32","shape":[2]})", 8), ErrorKind::parse},
      {"unknown tensor field",
       one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})", 8), ErrorKind::parse},
      {"tensor entry not an object", one(R"("a":[1,2])", 0), ErrorKind::parse},
      {"nesting 200 deep", st_file(deep, 0), ErrorKind::parse},
      {"rank above the limit",
       one(R"("a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]})",
           4),
       ErrorKind::limit},
  };
}

}  // namespace

TEST_CASE("golden safetensors headers read back as the reference says", "[safetensors][fixtures]") {
  for (const auto& path : test::fixture_files("safetensors")) {
    if (path.extension() != ".safetensors") continue;
    DYNAMIC_SECTION(path.filename().string()) {
      auto expected_path = path;
      expected_path.replace_extension(".expected.json");
      const auto text = test::read_file(expected_path);
      const json::value expected = json::parse(std::string(text.begin(), text.end()));

      const Catalog cat = parse_safetensors(make_mmap_source(path.string()));
      const auto header_size = expected.at("header_size").as_int64();
      const auto data_start = static_cast<std::uint64_t>(header_size) + 8;

      json::object meta;
      for (const auto& [k, v] : cat.header.metadata) meta[k] = v;
      CHECK(json::value(meta) == expected.at("metadata"));

      auto tensors = cat.tensors;
      std::sort(tensors.begin(), tensors.end(), [](auto& a, auto& b) { return a.name < b.name; });
      const auto& exp = expected.at("tensors").as_array();
      REQUIRE(tensors.size() == exp.size());
      for (std::size_t i = 0; i < exp.size(); ++i) {
        const auto& e = exp[i].as_object();
        CHECK(tensors[i].name == e.at("name").as_string());
        CHECK(dtype_name(tensors[i].dtype) == std::string_view(e.at("dtype").as_string()));
        std::vector<std::uint64_t> shape;
        for (const auto& d : e.at("shape").as_array()) shape.push_back(static_cast<std::uint64_t>(d.as_int64()));
        CHECK(tensors[i].shape == shape);
        const auto& off = e.at("data_offsets").as_array();
        CHECK(tensors[i].data.offset - data_start == static_cast<std::uint64_t>(off[0].as_int64()));
        CHECK(tensors[i].data.offset + tensors[i].data.length - data_start ==
              static_cast<std::uint64_t>(off[1].as_int64()));
      }
    }
  }
}

TEST_CASE("the safetensors fixture folder is not empty", "[safetensors][fixtures]") {
  std::size_t n = 0;
  for (const auto& p : test::fixture_files("safetensors")) n += p.extension() == ".safetensors";
  CHECK(n >= 4);
}

TEST_CASE("hostile safetensors headers give typed errors", "[safetensors][hostile]") {
  const auto cases = hostile_cases();
  REQUIRE(cases.size() >= 25);
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      try {
        parse_text(c.file);
        FAIL("accepted: " << c.name);
      } catch (const Error& e) {
        CHECK(e.kind() == c.kind);
        CHECK(std::strlen(e.what()) > 0);
      }
    }
  }
}

TEST_CASE("the CLI exits 1 with one message on every hostile file", "[safetensors][hostile][cli]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("hostile-safetensors");
  int i = 0;
  for (const auto& c : hostile_cases()) {
    DYNAMIC_SECTION(c.name) {
      const auto file = dir / ("case" + std::to_string(i) + ".safetensors");
      std::ofstream(file, std::ios::binary) << c.file;
      const auto err = dir / ("case" + std::to_string(i) + ".err");
      const std::string cmd = std::string(cli) + " inspect '" + file.string() + "' >/dev/null 2>'" + err.string() + "'";
      const int status = std::system(cmd.c_str());
      REQUIRE(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 1);
      const auto msg = test::read_file(err);
      CHECK(std::count(msg.begin(), msg.end(), '\n') == 1);
    }
    ++i;
  }
}

TEST_CASE("header length cap is configurable and checked before allocation", "[safetensors]") {
  Limits small;
  small.max_header_bytes = 16;
  const std::string ok = st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8);
  CHECK_NOTHROW(parse_text(ok));
  try {
    parse_text(ok, small);
    FAIL("accepted a header above the cap");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::limit);
  }
}

TEST_CASE("empty tensors and scalars are valid", "[safetensors]") {
  const std::string file = st_file(
      R"({"e":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]},"s":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}})",
      2);
  const Catalog cat = parse_text(file);
  REQUIRE(cat.tensors.size() == 2);
  CHECK(cat.tensors[0].element_count() + cat.tensors[1].element_count() == 1);
}

TEST_CASE("writer output parses back with the same tensors and metadata", "[safetensors][writer]") {
  const auto dir = test::scratch_dir("writer");
  const std::string path = (dir / "out.safetensors").string();
  std::vector<TensorEntry> entries{{"w\"eird\\name", DType::bf16, {2, 3}, 12},
                                        {"b", DType::i64, {1}, 8},
                                        {"empty", DType::f32, {0}, 0}};
  const std::vector<MetadataEntry> meta{{"format", "pt"}, {"note", "line\nbreak"}};
  {
    auto w = create_safetensors_file(path, entries, meta);
    std::vector<std::byte> a(12, std::byte{0x11}), b(8, std::byte{0x22});
    w->write(1, 0, b);
    w->write(0, 6, std::span(a).subspan(6));
    w->write(0, 0, std::span(a).first(6));
    CHECK_THROWS_AS(w->write(0, 8, std::span(a).first(6)), Error);
    w->commit();
  }
  const Catalog cat = parse_safetensors(make_mmap_source(path));
  REQUIRE(cat.tensors.size() == 3);
  CHECK(cat.tensors[0].name == "w\"eird\\name");
  CHECK(cat.tensors[0].dtype == DType::bf16);
  CHECK(cat.tensors[1].name == "b");
  CHECK(cat.header.metadata == meta);
  const auto bytes = test::read_file(path);
  CHECK(bytes[cat.tensors[1].data.offset] == 0x22);
  CHECK(bytes[cat.tensors[0].data.offset + 11] == 0x11);
}

// Issue 15: on a disk filesystem the writer sends the whole pages of a write
// around the page cache (O_DIRECT) when the bytes sit in memory as they will
// in the file, and the pages it shares with neighbours through the cache.
// Writes of every shape, in any order, aligned or not, must all land.
TEST_CASE("the writer's direct and cached writes together put every byte in place",
          "[safetensors][writer]") {
  const auto dir = test::scratch_dir("writer-direct");
  const std::string path = (dir / "out.safetensors").string();
  constexpr std::size_t kAlign = TensorFileWriter::kDirectAlign;
  const std::vector<std::uint64_t> sizes{10'007, 300'001, 4096 * 20, 1, 65'539};
  std::vector<TensorEntry> entries;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    entries.push_back({"t" + std::to_string(i), DType::u8, {sizes[i]}, sizes[i]});
  }
  std::mt19937 rng(15);
  std::vector<std::vector<std::byte>> want(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    want[i].resize(sizes[i]);
    for (auto& b : want[i]) b = std::byte(rng());
  }
  // Pieces of random lengths, shuffled; each staged either congruent to its
  // file offset (direct-eligible) or one byte off (cached only).
  struct Piece {
    std::size_t tensor;
    std::uint64_t offset, length;
    bool aligned;
  };
  std::vector<Piece> pieces;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    for (std::uint64_t at = 0; at < sizes[i];) {
      const std::uint64_t n = std::min<std::uint64_t>(sizes[i] - at, 1 + rng() % 40'000);
      pieces.push_back({i, at, n, rng() % 4 != 0});
      at += n;
    }
  }
  std::shuffle(pieces.begin(), pieces.end(), rng);
  bool direct = false;
  {
    auto w = create_safetensors_file(path, entries, {});
    direct = w->direct();
    std::vector<std::byte> staging(40'000 + 2 * kAlign);
    for (const Piece& p : pieces) {
      const auto base = reinterpret_cast<std::uintptr_t>(staging.data());
      const std::size_t want_mod = (w->file_offset(p.tensor, p.offset) + (p.aligned ? 0 : 1)) % kAlign;
      std::byte* at = staging.data() + (want_mod + kAlign - base % kAlign) % kAlign;
      std::memcpy(at, want[p.tensor].data() + p.offset, p.length);
      w->write(p.tensor, p.offset, {at, p.length});
    }
    w->commit();
  }
  const Catalog cat = parse_safetensors(make_mmap_source(path));
  const auto bytes = test::read_file(path);
  REQUIRE(cat.tensors.size() == sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    INFO("tensor " << i);
    REQUIRE(cat.tensors[i].data.length == sizes[i]);
    CHECK(std::memcmp(bytes.data() + cat.tensors[i].data.offset, want[i].data(), sizes[i]) == 0);
  }
  // Where the filesystem takes O_DIRECT (and is not tmpfs), the writer used it.
  struct statfs fs {};
  REQUIRE(::statfs(dir.c_str(), &fs) == 0);
  const int probe = ::open((dir / "probe").c_str(), O_CREAT | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600);
  if (probe >= 0) ::close(probe);
  if (fs.f_type == TMPFS_MAGIC || probe < 0) {
    CHECK_FALSE(direct);
    MNEME_SKIP_NO_HARDWARE("the build tree's filesystem takes no O_DIRECT: only cached writes ran");
  } else {
    CHECK(direct);
  }
}

TEST_CASE("an uncommitted writer leaves no file behind", "[safetensors][writer]") {
  const auto dir = test::scratch_dir("writer-discard");
  const std::string path = (dir / "out.safetensors").string();
  { auto w = create_safetensors_file(path, {{"a", DType::f32, {1}, 4}}, {}); }
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".partial"));
}
