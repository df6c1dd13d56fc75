// NPY and NPZ catalogs: the golden fixtures, synthetic headers, and NumPy
// itself as an oracle (every dtype, both byte orders, Fortran order, stored
// and deflated members).
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "memory_source_for_tests.hpp"
#include "mneme/error.hpp"
#include "src/formats/npy.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/tensor_stream.hpp"
#include "src/formats/zip.hpp"
#include "test_support.hpp"

using namespace mneme;
using namespace mneme::test;

namespace {

Bytes iota_bytes(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(i * 7 + 3);
  return b;
}

std::uint32_t rd32(const Bytes& b, std::size_t& at) {
  if (b.size() - at < 4) throw std::runtime_error("reference file truncated");
  std::uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v |= std::to_integer<std::uint32_t>(b[at + k]) << (8 * k);
  at += 4;
  return v;
}

// Reference dtype ids of fixtures/npz (README.md).
DType reference_dtype(std::uint32_t id) {
  static const DType kIds[] = {DType::bool_, DType::u8,  DType::i8,  DType::u16, DType::i16,
                               DType::u32,   DType::i32, DType::u64, DType::i64, DType::f16,
                               DType::bf16,  DType::f32, DType::f64};
  if (id >= std::size(kIds)) throw std::runtime_error("unknown reference dtype id");
  return kIds[id];
}

// Every read a parser made lies outside every tensor's element bytes.
void check_header_only(const MemorySourceForTests& src, const Catalog& cat) {
  for (const auto& t : cat.tensors) {
    if (t.layout.compression != Layout::Compression::none) continue;
    for (const auto& [off, len] : src.reads()) {
      INFO(t.name << ": read [" << off << ", " << off + len << ") vs data [" << t.data.offset
                  << ", " << t.data.offset + t.data.length << ")");
      // The zip end-record scan reads the file's tail, comment space included.
      if (off + len == src.size().value()) continue;
      CHECK((off + len <= t.data.offset || off >= t.data.offset + t.data.length));
    }
  }
}

}  // namespace

TEST_CASE("npz fixtures read back as their references say") {
  const auto files = fixture_files("npz");
  REQUIRE(!files.empty());
  std::map<std::string, std::filesystem::path> references;
  std::vector<std::filesystem::path> archives;
  for (const auto& f : files) {
    const std::string n = f.filename().string();
    if (f.extension() == ".npz") {
      archives.push_back(f);
    } else if (n.size() > 14 && n.substr(n.size() - 14) == "_reference.bin") {
      references[n.substr(0, n.size() - 14)] = f;
    } else {
      FAIL("unrecognised fixture file " << f);
    }
  }
  REQUIRE(!archives.empty());
  std::size_t used = 0;
  for (const auto& path : archives) {
    // The reference whose base is the longest prefix of the archive's stem.
    const std::string stem = path.stem().string();
    std::filesystem::path ref;
    std::size_t best = 0;
    for (const auto& [base, p] : references) {
      if (stem.rfind(base, 0) == 0 && base.size() > best) best = base.size(), ref = p;
    }
    INFO(path);
    REQUIRE(!ref.empty());
    ++used;
    auto src = memory_source(path.string(), file_bytes(path));
    const Catalog cat = parse_npz(src, {});
    CHECK(cat.format == Format::npz);
    check_header_only(*src, cat);

    const Bytes r = file_bytes(ref);
    std::size_t at = 0;
    const std::uint32_t count = rd32(r, at);
    REQUIRE(cat.tensors.size() == count);
    std::map<std::string, std::size_t> by_name;
    for (std::size_t i = 0; i < cat.tensors.size(); ++i) by_name[cat.tensors[i].name] = i;
    for (std::uint32_t k = 0; k < count; ++k) {
      const std::uint32_t name_len = rd32(r, at);
      const std::string name(reinterpret_cast<const char*>(r.data() + at), name_len);
      at += name_len;
      std::vector<std::uint64_t> shape(rd32(r, at));
      for (auto& d : shape) d = rd32(r, at) | (static_cast<std::uint64_t>(rd32(r, at)) << 32);
      const DType dt = reference_dtype(rd32(r, at));
      const std::uint32_t len = rd32(r, at);
      const Bytes data(r.begin() + at, r.begin() + at + len);
      at += len;
      INFO(name);
      REQUIRE(by_name.count(name) == 1);
      const auto& t = cat.tensors[by_name[name]];
      CHECK(t.dtype == dt);
      // The reference records the shape of the full array the slice was cut
      // from (anamnesis-study.md §6.7); the archive holds its first elements.
      CHECK(t.element_count() == len / dtype_size(dt));
      CHECK(!shape.empty());
      CHECK(t.layout.trivial());
      CHECK(read_tensor_bytes(cat, by_name[name]) == data);
    }
    CHECK(at == r.size());
  }
  CHECK(used == archives.size());
}

TEST_CASE("npy headers: versions, dtypes, byte order, Fortran order") {
  SECTION("v1 little-endian f4") {
    const Bytes file =
        make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", iota_bytes(24));
    auto src = memory_source("dir/w.npy", file);
    const auto cat = parse_npy(src, {});
    REQUIRE(cat.tensors.size() == 1);
    const auto& t = cat.tensors[0];
    CHECK(cat.format == Format::npy);
    CHECK(t.name == "w");
    CHECK(t.dtype == DType::f32);
    CHECK(t.shape == std::vector<std::uint64_t>{2, 3});
    CHECK(t.data.offset == file.size() - 24);
    CHECK(t.data.offset % 64 == 0);
    CHECK(t.data.length == 24);
    CHECK(t.layout.trivial());
    CHECK(read_tensor_bytes(cat, 0) == iota_bytes(24));
  }
  SECTION("v2 and v3, double-quoted keys, no trailing comma, Python 2 longs") {
    for (int major : {2, 3}) {
      const Bytes file =
          make_npy("{\"descr\": \"<i8\", \"shape\": (3L,), \"fortran_order\": False}",
                   iota_bytes(24), major);
      auto src = memory_source("x.npy", file);
      const auto cat = parse_npy(src, {});
      CHECK(cat.tensors[0].dtype == DType::i64);
      CHECK(cat.tensors[0].shape == std::vector<std::uint64_t>{3});
      CHECK(cat.tensors[0].data.offset == file.size() - 24);
    }
  }
  SECTION("big-endian is byte-swapped on read") {
    auto src =
        memory_source("b.npy", make_npy("{'descr': '>u2', 'fortran_order': False, 'shape': (3,), }",
                                        to_bytes(std::string_view("\x01\x02\x03\x04\x05\x06", 6))));
    const auto cat = parse_npy(src, {});
    CHECK(cat.tensors[0].layout.byte_swapped);
    CHECK(read_tensor_bytes(cat, 0) == to_bytes(std::string_view("\x02\x01\x04\x03\x06\x05", 6)));
  }
  SECTION("one-byte types ignore the byte-order mark") {
    auto src = memory_source(
        "c.npy",
        make_npy("{'descr': '>i1', 'fortran_order': False, 'shape': (2,), }", iota_bytes(2)));
    CHECK_FALSE(parse_npy(src, {}).tensors[0].layout.byte_swapped);
  }
  SECTION("Fortran order becomes column-major strides") {
    // Column-major 2x3: memory holds a00 a10 a01 a11 a02 a12.
    auto src = memory_source("f.npy",
                             make_npy("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }",
                                      to_bytes(std::string_view("\x00\x10\x01\x11\x02\x12", 6))));
    const auto cat = parse_npy(src, {});
    CHECK(cat.tensors[0].layout.strides == std::vector<std::uint64_t>{1, 2});
    CHECK(read_tensor_bytes(cat, 0) == to_bytes(std::string_view("\x00\x01\x02\x10\x11\x12", 6)));
  }
  SECTION("Fortran order of a vector needs no strides") {
    auto src = memory_source(
        "v.npy",
        make_npy("{'descr': '<f8', 'fortran_order': True, 'shape': (1, 4, 1), }", iota_bytes(32)));
    CHECK(parse_npy(src, {}).tensors[0].layout.trivial());
  }
  SECTION("V2 is bfloat16, scalars and empty arrays") {
    auto a = memory_source(
        "a.npy",
        make_npy("{'descr': '|V2', 'fortran_order': False, 'shape': (), }", iota_bytes(2)));
    const auto ca = parse_npy(a, {});
    CHECK(ca.tensors[0].dtype == DType::bf16);
    CHECK(ca.tensors[0].shape.empty());
    CHECK(read_tensor_bytes(ca, 0) == iota_bytes(2));
    auto e = memory_source(
        "e.npy", make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (0, 5), }", {}));
    const auto ce = parse_npy(e, {});
    CHECK(ce.tensors[0].data.length == 0);
    CHECK(read_tensor_bytes(ce, 0).empty());
  }
  SECTION("every supported descr") {
    const std::pair<const char*, DType> table[] = {
        {"|b1", DType::bool_}, {"|u1", DType::u8},  {"<u2", DType::u16}, {"<u4", DType::u32},
        {"<u8", DType::u64},   {"|i1", DType::i8},  {"<i2", DType::i16}, {"<i4", DType::i32},
        {"<i8", DType::i64},   {"<f2", DType::f16}, {"=f4", DType::f32}, {"<f8", DType::f64},
        {"<V2", DType::bf16}};
    for (const auto& [descr, dt] : table) {
      INFO(descr);
      const std::string dict =
          std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (4,), }";
      auto src = memory_source("d.npy", make_npy(dict, iota_bytes(4 * dtype_size(dt))));
      CHECK(parse_npy(src, {}).tensors[0].dtype == dt);
    }
  }
  SECTION("sequential source") {
    const Bytes file = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100000,), }",
                                iota_bytes(400000));
    auto src = memory_source("s.npy", file, /*sequential=*/true);
    const auto cat = parse_npy(src, {});
    CHECK(cat.tensors[0].data.offset == file.size() - 400000);
    CHECK(src->bytes_read() == cat.tensors[0].data.offset);  // the header, nothing more
  }
}

TEST_CASE("npz with stored and deflated members") {
  const Bytes big = iota_bytes(4 * 300000);
  const Bytes npy_a =
      make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (300000,), }", big);
  const Bytes npy_b = make_npy("{'descr': '>i2', 'fortran_order': True, 'shape': (2, 2), }",
                               to_bytes(std::string_view("\x00\x01\x00\x02\x00\x03\x00\x04", 8)));
  ZipMember a{"a.npy", deflate_raw(npy_a)};
  a.method = 8;
  a.usize = npy_a.size();
  ZipMember b{"sub/b.npy", deflate_raw(npy_b)};
  b.method = 8;
  b.usize = npy_b.size();
  ZipMember c{"c.npy", npy_a};
  auto z = build_zip({a, b, c});
  auto src = memory_source("m.npz", z.bytes);
  const auto cat = parse_npz(src, {});
  check_header_only(*src, cat);
  // Only the header of the 1.2 MB deflated member was inflated and read.
  std::uint64_t in_a = 0;
  for (const auto& [off, len] : src->reads()) {
    if (off < z.local[1] && off + len > z.local[0]) in_a += len;
  }
  CHECK(in_a < 70000);
  REQUIRE(cat.tensors.size() == 3);
  CHECK(cat.tensors[0].name == "a");
  CHECK(cat.tensors[1].name == "sub/b");
  CHECK(cat.tensors[2].name == "c");
  const auto& ta = cat.tensors[0];
  CHECK(ta.layout.compression == Layout::Compression::deflate);
  CHECK(ta.layout.inflated_offset == npy_a.size() - big.size());
  CHECK(ta.layout.inflated_size == npy_a.size());
  CHECK(ta.data.length == a.data.size());
  CHECK(read_tensor_bytes(cat, 0) == big);
  // Big-endian Fortran int16 [[1, 3], [2, 4]] -> C order LE 1 3 2 4: memory is
  // column-major, so element (0,0)=1, (1,0)=2, (0,1)=3, (1,1)=4.
  CHECK(read_tensor_bytes(cat, 1) ==
        to_bytes(std::string_view("\x01\x00\x03\x00\x02\x00\x04\x00", 8)));
  CHECK(read_tensor_bytes(cat, 2) == big);
  CHECK(cat.tensors[2].data.length == big.size());
}

TEST_CASE("NumPy oracle: every dtype, byte order, Fortran order, stored and deflated") {
  const std::string py = python_with("numpy");
  if (py.empty()) {
    MNEME_SKIP("NumPy not importable by python3 or /usr/bin/python3: NumPy oracle");
    return;
  }
  const auto dir = scratch_dir("npz_oracle");
  const auto cases = run_oracle(py, "npz", dir);
  REQUIRE(cases.size() > 100);
  std::map<std::string, Catalog> catalogs;
  std::size_t strided = 0, swapped = 0, deflated = 0;
  for (const auto& c : cases) {
    INFO(c.archive << " / " << c.tensor);
    if (!catalogs.count(c.archive)) {
      auto src = memory_source((dir / c.archive).string(), file_bytes(dir / c.archive));
      const bool is_npz = c.archive.size() > 4 && c.archive.substr(c.archive.size() - 4) == ".npz";
      catalogs[c.archive] = is_npz ? parse_npz(src, {}) : parse_npy(src, {});
      check_header_only(*src, catalogs[c.archive]);
    }
    const Catalog& cat = catalogs[c.archive];
    std::size_t idx = cat.tensors.size();
    for (std::size_t i = 0; i < cat.tensors.size(); ++i) {
      if (cat.tensors[i].name == c.tensor) idx = i;
    }
    REQUIRE(idx < cat.tensors.size());
    const auto& t = cat.tensors[idx];
    CHECK(dtype_name(t.dtype) == c.dtype);
    CHECK(t.shape == c.shape);
    strided += !t.layout.strides.empty();
    swapped += t.layout.byte_swapped;
    deflated += t.layout.compression == Layout::Compression::deflate;
    CHECK(read_tensor_bytes(cat, idx) == file_bytes(dir / c.raw));
  }
  // The oracle exercised every layout path.
  CHECK(strided > 20);
  CHECK(swapped > 20);
  CHECK(deflated > 40);
}
