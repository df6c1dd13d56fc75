// PyTorch .pth catalogs: the golden fixtures, synthetic torch.save archives
// (shared storages, views, byte order, parameters, nesting), and PyTorch
// itself as an oracle.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <map>

#include "memory_source_for_tests.hpp"
#include "mneme/error.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/tensor_stream.hpp"
#include "src/formats/pth.hpp"
#include "test_support.hpp"

using namespace mneme;
using namespace mneme::test;

namespace {

Bytes hex_bytes(std::string_view hex) {
  Bytes b;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    b.push_back(static_cast<std::byte>(std::stoul(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return b;
}

Bytes f32_bytes(std::initializer_list<float> v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), std::data(v), b.size());
  return b;
}

Bytes iota_f32(int n) {
  Bytes b(n * 4);
  for (int i = 0; i < n; ++i) {
    const float f = static_cast<float>(i);
    std::memcpy(b.data() + 4 * i, &f, 4);
  }
  return b;
}

void check_header_only(const MemorySourceForTests& src, const Catalog& cat) {
  for (const auto& t : cat.tensors) {
    for (const auto& [off, len] : src.reads()) {
      if (off + len == src.size().value()) continue;  // the end-record scan
      INFO(t.name << ": read [" << off << ", " << off + len << ")");
      CHECK((off + len <= t.data.offset || off >= t.data.offset + t.data.length));
    }
  }
}

const TensorInfo& by_name(const Catalog& cat, const std::string& name) {
  for (const auto& t : cat.tensors) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("no tensor " + name);
}

std::size_t index_of(const Catalog& cat, const std::string& name) {
  for (std::size_t i = 0; i < cat.tensors.size(); ++i) {
    if (cat.tensors[i].name == name) return i;
  }
  throw std::runtime_error("no tensor " + name);
}

}  // namespace

TEST_CASE("pth fixtures read back as their references say") {
  const auto files = fixture_files("pth");
  REQUIRE(!files.empty());
  std::size_t archives = 0, references = 0;
  for (const auto& f : files) {
    const std::string n = f.filename().string();
    if (n.size() > 15 && n.substr(n.size() - 15) == "_reference.json") {
      ++references;
      const auto pth = f.parent_path() / (n.substr(0, n.size() - 15) + ".pth");
      INFO(f);
      CHECK(std::filesystem::exists(pth));  // every reference has its archive
      continue;
    }
    INFO(f);
    REQUIRE(f.extension() == ".pth");
    ++archives;
    const auto ref_path = f.parent_path() / (f.stem().string() + "_reference.json");
    REQUIRE(std::filesystem::exists(ref_path));
    const Bytes rb = file_bytes(ref_path);
    const auto ref =
        boost::json::parse(std::string_view(reinterpret_cast<const char*>(rb.data()), rb.size()))
            .as_object();

    auto src = memory_source(f.string(), file_bytes(f));
    const Catalog cat = parse_pth(src, {});
    CHECK(cat.format == Format::pth);
    check_header_only(*src, cat);
    const auto& tensors = ref.at("tensors").as_array();
    REQUIRE(cat.tensors.size() == static_cast<std::size_t>(ref.at("num_tensors").as_int64()));
    REQUIRE(cat.tensors.size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const auto& r = tensors[i].as_object();
      const auto& t = cat.tensors[i];  // state-dict order
      INFO(t.name);
      CHECK(t.name == std::string(r.at("name").as_string()));
      CHECK(dtype_name(t.dtype) == std::string_view(r.at("dtype").as_string()));
      std::vector<std::uint64_t> shape;
      for (const auto& d : r.at("shape").as_array()) shape.push_back(d.to_number<std::uint64_t>());
      CHECK(t.shape == shape);
      CHECK(read_tensor_bytes(cat, i) == hex_bytes(r.at("data_hex").as_string()));
    }
  }
  CHECK(archives > 0);
  CHECK(references == archives);
}

TEST_CASE("shared storage, views, offsets and strides") {
  PickleWriter p;
  p.proto().ordered_dict().op('(');
  p.tensor("a", "FloatStorage", "0", 12, 0, {3, 4}, {4, 1});
  p.tensor("a_t", "FloatStorage", "0", 12, 0, {4, 3}, {1, 4});
  p.tensor("s", "FloatStorage", "0", 12, 5, {2}, {3});
  p.tensor("row", "FloatStorage", "0", 12, 8, {1, 4}, {99, 1});  // size-1 dim: any stride
  p.tensor("zero", "FloatStorage", "0", 12, 2, {3, 2}, {0, 1});
  p.op('u').op('.');
  auto z = make_pth(p.b, {{"0", iota_f32(12)}});
  auto src = memory_source("views.pth", z.bytes);
  const Catalog cat = parse_pth(src, {});
  check_header_only(*src, cat);
  REQUIRE(cat.tensors.size() == 5);

  const auto& a = by_name(cat, "a");
  CHECK(a.layout.trivial());
  CHECK(a.data.length == 48);
  CHECK(a.data.offset % 64 == 0);
  const auto& at = by_name(cat, "a_t");
  CHECK(at.layout.strides == std::vector<std::uint64_t>{1, 4});
  CHECK(at.data.offset == a.data.offset);
  CHECK(at.data.length == 48);
  CHECK(read_tensor_bytes(cat, index_of(cat, "a_t")) ==
        f32_bytes({0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  const auto& s = by_name(cat, "s");
  CHECK(s.data.offset == a.data.offset + 20);
  CHECK(s.data.length == 16);
  CHECK(read_tensor_bytes(cat, index_of(cat, "s")) == f32_bytes({5, 8}));
  const auto& row = by_name(cat, "row");
  CHECK(row.layout.trivial());
  CHECK(read_tensor_bytes(cat, index_of(cat, "row")) == f32_bytes({8, 9, 10, 11}));
  CHECK(read_tensor_bytes(cat, index_of(cat, "zero")) == f32_bytes({2, 3, 2, 3, 2, 3}));
}

TEST_CASE("byteorder big swaps multi-byte storages only") {
  PickleWriter p;
  p.proto().ordered_dict().op('(');
  p.tensor("f", "FloatStorage", "0", 2, 0, {2}, {1});
  p.tensor("b", "CharStorage", "1", 3, 0, {3}, {1});
  p.op('u').op('.');
  Bytes be = f32_bytes({1.5f, -2.0f});
  for (std::size_t k = 0; k < be.size(); k += 4) std::reverse(be.begin() + k, be.begin() + k + 4);
  auto z = make_pth(p.b, {{"0", be}, {"1", to_bytes("abc")}}, "big");
  auto src = memory_source("be.pth", z.bytes);
  const Catalog cat = parse_pth(src, {});
  CHECK(cat.tensors[0].layout.byte_swapped);
  CHECK_FALSE(cat.tensors[1].layout.byte_swapped);
  CHECK(cat.tensors[1].dtype == DType::i8);
  CHECK(read_tensor_bytes(cat, 0) == f32_bytes({1.5f, -2.0f}));
  CHECK(read_tensor_bytes(cat, 1) == to_bytes("abc"));
}

TEST_CASE("parameters, nested dicts, BUILD state, other prefixes, no byteorder") {
  PickleWriter p;
  p.proto();
  p.op('}').op('(');
  p.str("model");
  p.ordered_dict().op('(');
  // w: torch._utils._rebuild_parameter(_rebuild_tensor_v2(...), True, OrderedDict())
  p.str("w");
  p.global("torch._utils", "_rebuild_parameter").op('(');
  {
    PickleWriter inner;
    inner.tensor("", "HalfStorage", "k0", 4, 0, {2, 2}, {2, 1});
    // Drop the leading empty-name string: keep only the value part.
    inner.b.erase(inner.b.begin(), inner.b.begin() + 5);
    append(p.b, inner.b);
  }
  p.op(0x88).ordered_dict().op('t').op('R');
  p.op('u');
  // BUILD with a _metadata state, as torch.save writes for module state dicts.
  p.op('}').str("_metadata").ordered_dict().op('s').op('b');
  p.str("epoch").integer(3);
  p.str("lr").op('G');
  append(p.b, Bytes(8, std::byte{0}));
  p.op('u').op('.');
  auto z = make_pth(p.b, {{"k0", to_bytes("12345678")}}, "", "my_model/");
  auto src = memory_source("nested.pth", z.bytes);
  const Catalog cat = parse_pth(src, {});
  REQUIRE(cat.tensors.size() == 1);
  CHECK(cat.tensors[0].name == "model.w");
  CHECK(cat.tensors[0].dtype == DType::f16);
  CHECK_FALSE(cat.tensors[0].layout.byte_swapped);
  CHECK(read_tensor_bytes(cat, 0) == to_bytes("12345678"));
}

TEST_CASE("legacy and TorchScript files are refused with a hint") {
  auto legacy = memory_source(
      "old.pth",
      to_bytes(std::string_view("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15)));
  try {
    parse_pth(legacy, {});
    FAIL("legacy accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::unsupported);
    CHECK(std::string(e.what()).find("_use_new_zipfile_serialization=True") != std::string::npos);
  }
  PickleWriter p;
  p.proto().op('}').op('.');
  std::vector<ZipMember> m{{"archive/data.pkl", p.b}, {"archive/constants.pkl", p.b}};
  auto ts = memory_source("script.pt", build_zip(m).bytes);
  CHECK_THROWS_MATCHES(parse_pth(ts, {}), Error, Catch::Predicate<Error>([](const Error& e) {
                         return e.kind() == ErrorKind::unsupported;
                       }));
}

TEST_CASE("PyTorch oracle: views, shared storages, dtypes, parameters, big-endian") {
  const std::string py = python_with("torch");
  if (py.empty()) {
    MNEME_SKIP("PyTorch not importable by python3 or /usr/bin/python3: PyTorch oracle");
    return;
  }
  const auto dir = scratch_dir("pth_oracle");
  const auto cases = run_oracle(py, "pth", dir);
  REQUIRE(cases.size() > 30);
  std::map<std::string, Catalog> catalogs;
  std::size_t strided = 0, swapped = 0;
  for (const auto& c : cases) {
    INFO(c.archive << " / " << c.tensor);
    if (!catalogs.count(c.archive)) {
      auto src = memory_source((dir / c.archive).string(), file_bytes(dir / c.archive));
      catalogs[c.archive] = parse_pth(src, {});
      check_header_only(*src, catalogs[c.archive]);
    }
    const Catalog& cat = catalogs[c.archive];
    const std::size_t idx = index_of(cat, c.tensor);
    const auto& t = cat.tensors[idx];
    CHECK(dtype_name(t.dtype) == c.dtype);
    CHECK(t.shape == c.shape);
    strided += !t.layout.strides.empty();
    swapped += t.layout.byte_swapped;
    CHECK(read_tensor_bytes(cat, idx) == file_bytes(dir / c.raw));
  }
  CHECK(strided >= 10);
  CHECK(swapped >= 10);
}
