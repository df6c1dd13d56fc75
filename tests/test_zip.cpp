// The zip central-directory reader and the streaming inflate stage.
#include <catch2/catch.hpp>

#include <numeric>
#include <random>
#include <sstream>

#include "io/sources.hpp"
#include "memory_source_for_tests.hpp"
#include "mneme/error.hpp"
#include "src/formats/inflate.hpp"
#include "src/formats/zip.hpp"

using namespace mneme;
using namespace mneme::test;

namespace {

const std::uint64_t kRatio = Limits{}.max_zip_ratio;

Bytes pattern(std::size_t n, unsigned seed = 1) {
  Bytes b(n);
  std::mt19937 rng(seed);
  for (auto& x : b) x = static_cast<std::byte>(rng() % 7);  // compressible, not trivial
  return b;
}

std::uint16_t u16_at(const Bytes& b, std::size_t at) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(b[at]) |
                                    (std::to_integer<unsigned>(b[at + 1]) << 8));
}

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  FAIL("no mneme::Error thrown");
  return ErrorKind::cancelled;
}

}  // namespace

TEST_CASE("looks_like_zip checks only the first four bytes") {
  CHECK(looks_like_zip(to_bytes("PK\x03\x04rest")));
  CHECK(looks_like_zip(to_bytes(std::string_view("PK\x05\x06", 4))));
  CHECK_FALSE(looks_like_zip(to_bytes("PK\x03")));
  CHECK_FALSE(looks_like_zip(to_bytes("xxPK\x03\x04")));
}

TEST_CASE("read_archive reads stored and deflated members") {
  const Bytes a = pattern(1000, 1), b = pattern(70000, 2);
  ZipMember ma{"a.bin", a};
  ZipMember mb{"dir/b.bin", deflate_raw(b)};
  mb.method = 8;
  mb.usize = b.size();
  auto z = build_zip({ma, mb});
  auto src = memory_source("t.zip", z.bytes);
  const auto ar = zip::read_archive(*src);
  REQUIRE(ar.entries.size() == 2);
  CHECK(ar.entries[0].name == "a.bin");
  CHECK(ar.entries[1].method == zip::Method::deflated);
  CHECK(ar.directory_offset == z.cd_offset);
  REQUIRE(ar.find("dir/b.bin") != nullptr);
  CHECK(ar.find("nope") == nullptr);
  CHECK(zip::data_offset(*src, *ar.find("a.bin")) == z.local[0] + 30 + 5);
  CHECK(zip::read_member(*src, *ar.find("a.bin"), 1 << 20) == a);
  CHECK(zip::read_member(*src, *ar.find("dir/b.bin"), 1 << 20) == b);
  const auto start = zip::data_offset(*src, *ar.find("dir/b.bin"));
  const auto prefix = zip::read_member_prefix(*src, *ar.find("dir/b.bin"), start, 100);
  CHECK(prefix == Bytes(b.begin(), b.begin() + 100));
  CHECK_THROWS_MATCHES(
      zip::read_member(*src, *ar.find("dir/b.bin"), 1000), Error,
      Catch::Predicate<Error>([](const Error& e) { return e.kind() == ErrorKind::limit; }));
}

TEST_CASE("read_member checks the CRC-32 and names the member") {
  const Bytes a = pattern(3000, 5);
  ZipMember ms{"archive/data.pkl", a};
  ZipMember md{"archive/deflated", deflate_raw(a)};
  md.method = 8;
  md.usize = a.size();
  for (const bool deflated : {false, true}) {
    INFO((deflated ? "deflated" : "stored"));
    auto z = build_zip({deflated ? md : ms});
    {
      auto src = memory_source("ok.zip", z.bytes);
      CHECK(zip::read_member(*src, zip::read_archive(*src).entries[0], 1 << 20) == a);
    }
    patch_le(z.bytes, z.central[0] + 16, 0xdeadbeef, 4);
    auto src = memory_source("bad.zip", z.bytes);
    const auto ar = zip::read_archive(*src);
    try {
      zip::read_member(*src, ar.entries[0], 1 << 20);
      FAIL("accepted a wrong CRC-32");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::parse);
      const std::string msg = e.what();
      CHECK(msg.find(deflated ? "archive/deflated" : "archive/data.pkl") != std::string::npos);
      CHECK(msg.find("CRC-32") != std::string::npos);
    }
  }
}

TEST_CASE("PyTorch layout: data descriptors, zero local sizes, aligned records, ZIP64 end") {
  std::vector<ZipMember> ms;
  for (int i = 0; i < 5; ++i) {
    ms.push_back({"archive/data/" + std::to_string(i), pattern(100 + 37 * i, i)});
    ms.back().torch_style = true;
    ms.back().align = 64;
    ms.back().zip64 = i % 2 == 1;
  }
  ZipOptions opt;
  opt.zip64_end = true;
  auto z = build_zip(ms, opt);
  auto src = memory_source("t.pth", z.bytes);
  const auto ar = zip::read_archive(*src);
  REQUIRE(ar.entries.size() == 5);
  for (int i = 0; i < 5; ++i) {
    const auto& e = ar.entries[i];
    CHECK(e.uncompressed_size == ms[i].data.size());
    CHECK(e.local_header_offset == z.local[i]);
    const auto off = zip::data_offset(*src, e);
    CHECK(off % 64 == 0);
    CHECK(zip::read_member(*src, e, 1 << 20) == ms[i].data);
  }
}

TEST_CASE("a fake end record inside the comment is skipped") {
  ZipOptions opt;
  // A signature with a comment length that does not reach the end.
  opt.comment = std::string("xxPK\x05\x06", 6) + std::string(16, '\0') + "tail";
  auto z = build_zip({{"m", pattern(10)}}, opt);
  auto src = memory_source("c.zip", z.bytes);
  const auto ar = zip::read_archive(*src);
  REQUIRE(ar.entries.size() == 1);
  CHECK(ar.entries[0].name == "m");
}

TEST_CASE("empty archive") {
  auto z = build_zip({});
  auto src = memory_source("e.zip", z.bytes);
  CHECK(zip::read_archive(*src).entries.empty());
}

TEST_CASE("sequential sources: small archives parse, large ones are refused") {
  auto small = build_zip({{"m", pattern(100)}});
  auto s1 = memory_source("s.zip", small.bytes, /*sequential=*/true);
  CHECK(zip::read_archive(*s1).entries.size() == 1);
  auto large = build_zip({{"m", pattern(100000)}});
  auto s2 = memory_source("l.zip", large.bytes, true);
  CHECK(kind_of([&] { zip::read_archive(*s2); }) == ErrorKind::unsupported);
}

namespace {

// A stream of unknown size, as stdin or a socket is.
SourcePtr stream_of(const Bytes& b, std::optional<std::uint64_t> size = std::nullopt) {
  return make_istream_source("stream.zip",
                             std::make_unique<std::istringstream>(
                                 std::string(reinterpret_cast<const char*>(b.data()), b.size())),
                             size);
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(to_string(e.kind())) + ": " + e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("streams of unknown size: archives inside the retained prefix are walked forward") {
  const Bytes a = pattern(3000, 1), b = pattern(20000, 2);
  ZipMember ma{"a.npy", a};
  ZipMember mb{"b.npy", deflate_raw(b)};
  mb.method = 8;
  mb.usize = b.size();
  ZipMember mc{"c.npy", pattern(100, 3)};
  mc.zip64 = true;
  for (const bool zip64_end : {false, true}) {
    INFO("zip64 end: " << zip64_end);
    ZipOptions opt;
    opt.zip64_end = zip64_end;
    opt.comment = "a comment";
    const auto z = build_zip({ma, mb, mc}, opt);
    auto src = stream_of(z.bytes);
    CHECK_FALSE(src->size());
    const auto ar = zip::read_archive(*src);
    REQUIRE(ar.entries.size() == 3);
    CHECK(ar.directory_offset == z.cd_offset);
    // Read twice (detection, then the parser) and the members after: all
    // inside the retained prefix.
    CHECK(zip::read_archive(*src).entries.size() == 3);
    CHECK(zip::read_member(*src, *ar.find("a.npy"), 1 << 20) == a);
    CHECK(zip::read_member(*src, *ar.find("b.npy"), 1 << 20) == b);
  }
  SECTION("empty archive") {
    CHECK(zip::read_archive(*stream_of(build_zip({}).bytes)).entries.empty());
  }
  SECTION("NumPy's local ZIP64 extra, sizes saturated") {
    ZipMember m{"a.npy", a};
    m.align = 64;  // a local extra field of 25 bytes to hold the ZIP64 one
    auto z = build_zip({m});
    const std::size_t extra = z.local[0] + 30 + 5;
    REQUIRE(u16_at(z.bytes, z.local[0] + 28) >= 20);
    patch_le(z.bytes, extra, 0x0001, 2);
    patch_le(z.bytes, extra + 4, a.size(), 8);
    patch_le(z.bytes, extra + 12, a.size(), 8);
    patch_le(z.bytes, z.local[0] + 18, 0xFFFFFFFF, 4);
    patch_le(z.bytes, z.local[0] + 22, 0xFFFFFFFF, 4);
    auto src = stream_of(z.bytes);
    const auto ar = zip::read_archive(*src);
    REQUIRE(ar.entries.size() == 1);
    CHECK(zip::read_member(*src, ar.entries[0], 1 << 20) == a);
  }
}

TEST_CASE("streams of unknown size: what cannot be walked is refused with the reason") {
  SECTION("sizes in data descriptors (PyTorch)") {
    ZipMember m{"archive/data.pkl", pattern(100)};
    m.torch_style = true;
    const auto msg = error_text([&] { zip::read_archive(*stream_of(build_zip({m}).bytes)); });
    CHECK(msg.rfind("unsupported", 0) == 0);
    CHECK(msg.find("data descriptor") != std::string::npos);
    CHECK(msg.find("random-access source") != std::string::npos);
  }
  SECTION("an archive that ends past the retained prefix") {
    const auto msg = error_text([&] {
      zip::read_archive(*stream_of(build_zip({{"m", pattern(100000)}}).bytes));
    });
    CHECK(msg.rfind("unsupported", 0) == 0);
    CHECK(msg.find("stream") != std::string::npos);
  }
  SECTION("a known size past the retained prefix") {
    const auto z = build_zip({{"m", pattern(100000)}});
    CHECK(kind_of([&] { zip::read_archive(*stream_of(z.bytes, z.bytes.size())); }) ==
          ErrorKind::unsupported);
  }
  SECTION("a local size that points past the prefix") {
    auto z = build_zip({{"m", pattern(100)}});
    patch_le(z.bytes, z.local[0] + 18, 0x7FFFFFFF, 4);
    CHECK(kind_of([&] { zip::read_archive(*stream_of(z.bytes)); }) == ErrorKind::unsupported);
  }
  SECTION("saturated local sizes without a ZIP64 extra") {
    auto z = build_zip({{"m", pattern(100)}});
    patch_le(z.bytes, z.local[0] + 18, 0xFFFFFFFF, 4);
    CHECK(kind_of([&] { zip::read_archive(*stream_of(z.bytes)); }) == ErrorKind::parse);
  }
  SECTION("garbage where a record should start") {
    auto z = build_zip({{"m", pattern(100)}});
    patch_le(z.bytes, z.local[0] + 18, 50, 4);  // lands inside the data
    patch_le(z.bytes, z.local[0] + 22, 50, 4);
    CHECK(kind_of([&] { zip::read_archive(*stream_of(z.bytes)); }) == ErrorKind::parse);
  }
  SECTION("a stream that ends inside the walk") {
    auto z = build_zip({{"m", pattern(100)}});
    z.bytes.resize(z.bytes.size() - 10);
    const ErrorKind k = kind_of([&] { zip::read_archive(*stream_of(z.bytes)); });
    CHECK((k == ErrorKind::io || k == ErrorKind::parse));
  }
}

TEST_CASE("the archive reader reads only the end records and the directory") {
  auto z = build_zip({{"a", pattern(200000)}, {"b", pattern(200000, 3)}});
  auto src = memory_source("t.zip", z.bytes);
  zip::read_archive(*src);
  // The tail scan (end record + the largest comment), a locator probe and
  // the directory; never the member data before the tail.
  CHECK(src->bytes_read() <= 22 + 65535 + 20 + 4 + z.cd_size);
  for (const auto& [off, len] : src->reads()) CHECK(off + len > z.bytes.size() - 65557 - 20);
}

TEST_CASE("Inflater: one byte in, one byte out, exact size") {
  const Bytes plain = pattern(5000, 9);
  const Bytes comp = deflate_raw(plain);
  Inflater inf(comp.size(), plain.size(), kRatio);
  Bytes out(plain.size());
  std::size_t in_pos = 0, out_pos = 0;
  int guard = 0;
  while (!inf.finished() && ++guard < 1000000) {
    const std::size_t n_in = std::min<std::size_t>(1, comp.size() - in_pos);
    const std::size_t n_out = std::min<std::size_t>(1, out.size() - out_pos);
    auto p = inf.feed(std::span<const std::byte>(comp.data() + in_pos, n_in),
                      std::span<std::byte>(out.data() + out_pos, n_out));
    in_pos += p.consumed;
    out_pos += p.produced;
  }
  CHECK(inf.finished());
  CHECK(out == plain);
  CHECK(inf.total_in() == comp.size());
  CHECK(inf.total_out() == plain.size());
}

TEST_CASE("Inflater refuses lies about sizes") {
  const Bytes plain = pattern(4000, 4);
  const Bytes comp = deflate_raw(plain);
  Bytes out(8000);
  SECTION("declared smaller than the stream") {
    Inflater inf(comp.size(), plain.size() - 1, kRatio);
    CHECK(kind_of([&] { inf.feed(comp, out); }) == ErrorKind::parse);
  }
  SECTION("declared larger than the stream") {
    Inflater inf(comp.size(), plain.size() + 1, kRatio);
    CHECK(kind_of([&] { inf.feed(comp, out); }) == ErrorKind::parse);
  }
  SECTION("truncated stream") {
    Inflater inf(comp.size() - 3, plain.size(), kRatio);
    CHECK(kind_of([&] { inf.feed(comp, out); }) == ErrorKind::parse);
  }
  SECTION("trailing bytes after the stream end") {
    Bytes padded = comp;
    padded.push_back(std::byte{0});
    Inflater inf(padded.size(), plain.size(), kRatio);
    CHECK(kind_of([&] { inf.feed(padded, out); }) == ErrorKind::parse);
  }
  SECTION("corrupt stream") {
    Bytes junk(100, std::byte{0xFF});
    Inflater inf(junk.size(), 1000, kRatio);
    CHECK(kind_of([&] { inf.feed(junk, out); }) == ErrorKind::parse);
  }
  SECTION("declared ratio above the limit") {
    CHECK(kind_of([&] { Inflater inf(10, 10 * kRatio + 1, kRatio); }) == ErrorKind::limit);
  }
  SECTION("a legitimate all-zero stream passes the ratio limit") {
    const Bytes zeros(1 << 20);
    const Bytes cz = deflate_raw(zeros, 9);
    Inflater inf(cz.size(), zeros.size(), kRatio);
    Bytes big(zeros.size());
    auto p = inf.feed(cz, big);
    CHECK(inf.finished());
    CHECK(p.produced == zeros.size());
  }
}
