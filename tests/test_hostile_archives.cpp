// Hostile archives and pickles (hostile-inputs.md checklist 29-60): each one
// must end in a typed mneme::Error of the right kind, with no crash, no
// unbounded allocation and no code run. Run under -DMNEME_SANITIZE=ON too.
#include <catch2/catch.hpp>

#include <functional>

#include "memory_source_for_tests.hpp"
#include "mneme/error.hpp"
#include "src/formats/npy.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/tensor_stream.hpp"
#include "src/formats/pickle.hpp"
#include "src/formats/pth.hpp"
#include "src/formats/zip.hpp"

using namespace mneme;
using namespace mneme::test;

namespace {

const char* kF4x4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";

Bytes zeros(std::size_t n) {
  return Bytes(n);
}

Bytes npy_of(std::string_view dict, std::size_t data_bytes = 16) {
  return make_npy(dict, zeros(data_bytes));
}

ZipLayout npz_of(const Bytes& member, std::string name = "x.npy", bool deflated = false) {
  ZipMember m{std::move(name), deflated ? deflate_raw(member) : member};
  if (deflated) {
    m.method = 8;
    m.usize = member.size();
  }
  return build_zip({m});
}

Catalog npz(const Bytes& bytes, const Limits& limits = {}) {
  return parse_npz(memory_source("h.npz", bytes), limits);
}
Catalog npy_file(const Bytes& bytes, const Limits& limits = {}) {
  return parse_npy(memory_source("h.npy", bytes), limits);
}

// A valid state dict with one f32 tensor of `numel` elements in storage "0".
Bytes one_tensor_pickle(std::int64_t numel = 4, std::int64_t offset = 0,
                        std::vector<std::int64_t> shape = {4},
                        std::vector<std::int64_t> stride = {1}) {
  PickleWriter p;
  p.proto().ordered_dict().op('(');
  p.tensor("w", "FloatStorage", "0", numel, offset, shape, stride);
  p.op('u').op('.');
  return p.b;
}

Catalog pth(const Bytes& pickle,
            std::vector<std::pair<std::string, Bytes>> storages = {{"0", zeros(16)}},
            std::string_view byteorder = "little") {
  return parse_pth(memory_source("h.pth", make_pth(pickle, storages, byteorder).bytes), {});
}

// A pickle wrapping `body` (opcodes after PROTO 2) and STOP.
Bytes pk(std::string_view body) {
  Bytes b = to_bytes(std::string_view("\x80\x02", 2));
  append(b, body);
  b.push_back(std::byte{'.'});
  return b;
}

std::vector<pickle::TensorRef> vm(const Bytes& b) {
  return pickle::load_state_dict(b);
}

struct Case {
  const char* name;
  ErrorKind expected;
  std::function<void()> run;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  // ---- ZIP container ------------------------------------------------------
  c.push_back({"empty file", ErrorKind::parse, [] { npz({}); }});
  c.push_back({"EOCD missing", ErrorKind::parse, [] {
                 Bytes b = to_bytes("PK\x03\x04");
                 append(b, zeros(200));
                 npz(b);
               }});
  c.push_back({"EOCD comment length past the end", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.eocd + 20, 5, 2);
                 npz(z.bytes);
               }});
  c.push_back({"central directory offset past EOF", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.eocd + 16, 0x7FFFFFF0, 4);
                 npz(z.bytes);
               }});
  c.push_back({"entry count larger than the directory can hold", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.eocd + 8, 60000, 2);
                 patch_le(z.bytes, z.eocd + 10, 60000, 2);
                 npz(z.bytes);
               }});
  c.push_back({"ZIP64 entry count of 2^40", ErrorKind::limit, [] {
                 ZipOptions o;
                 o.zip64_end = true;
                 auto z = build_zip({{"x.npy", npy_of(kF4x4)}}, o);
                 const std::size_t rec = z.cd_offset + z.cd_size;
                 patch_le(z.bytes, rec + 24, 1ull << 40, 8);
                 patch_le(z.bytes, rec + 32, 1ull << 40, 8);
                 npz(z.bytes);
               }});
  c.push_back({"ZIP64 end record disagrees with the end record", ErrorKind::parse, [] {
                 ZipOptions o;
                 o.zip64_end = true;
                 auto z = build_zip({{"x.npy", npy_of(kF4x4)}}, o);
                 patch_le(z.bytes, z.eocd + 12, 7, 4);  // unsaturated, and != the ZIP64 size
                 npz(z.bytes);
               }});
  c.push_back({"overlap bomb: two entries share one local header", ErrorKind::security, [] {
                 auto z = build_zip({{"a.npy", npy_of(kF4x4)}, {"b.npy", npy_of(kF4x4)}});
                 patch_le(z.bytes, z.central[1] + 42, z.local[0], 4);
                 npz(z.bytes);
               }});
  c.push_back({"entry data runs into the central directory", ErrorKind::security, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.central[0] + 20, 500, 4);
                 patch_le(z.bytes, z.central[0] + 24, 500, 4);
                 npz(z.bytes);
               }});
  c.push_back({"local header name differs", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 z.bytes[z.local[0] + 30] = std::byte{'y'};
                 npz(z.bytes);
               }});
  c.push_back({"local header signature missing", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 z.bytes[z.local[0]] = std::byte{'Q'};
                 npz(z.bytes);
               }});
  c.push_back({"local extra length pushes the data past the next entry", ErrorKind::security, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.local[0] + 28, 0xFFFF, 2);
                 npz(z.bytes);
               }});
  c.push_back({"compression method 12", ErrorKind::unsupported, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.central[0] + 10, 12, 2);
                 npz(z.bytes);
               }});
  c.push_back({"encrypted entry", ErrorKind::unsupported, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.central[0] + 8, 1, 2);
                 npz(z.bytes);
               }});
  c.push_back({"multi-disk end record", ErrorKind::unsupported, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.eocd + 4, 1, 2);
                 npz(z.bytes);
               }});
  c.push_back({"stored entry with compressed != uncompressed size", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.central[0] + 24, 1000, 4);
                 npz(z.bytes);
               }});
  c.push_back({"ratio bomb: 1 GB declared from 100 bytes", ErrorKind::limit, [] {
                 auto z = npz_of(npy_of(kF4x4), "x.npy", true);
                 patch_le(z.bytes, z.central[0] + 24, 1'000'000'000, 4);
                 npz(z.bytes);
               }});
  c.push_back({"deflated member inflates past its declared size", ErrorKind::parse, [] {
                 // The header says 999 elements, the stream holds 1000.
                 const Bytes m = make_npy(
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (999,), }", zeros(4000));
                 auto z = npz_of(m, "x.npy", true);
                 patch_le(z.bytes, z.central[0] + 24, m.size() - 4, 4);
                 const auto cat = npz(z.bytes);
                 read_tensor_bytes(cat, 0);
               }});
  c.push_back({"truncated deflate stream", ErrorKind::parse, [] {
                 Bytes data(40000);
                 for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::byte(i * 31 % 251);
                 const Bytes m = make_npy(
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (10000,), }", data);
                 ZipMember zm{"x.npy", deflate_raw(m)};
                 zm.method = 8;
                 zm.usize = m.size();
                 zm.data.resize(zm.data.size() - 100);  // the stream is cut short
                 const auto cat = npz(build_zip({zm}).bytes);
                 read_tensor_bytes(cat, 0);
               }});
  c.push_back({"member name not UTF-8", ErrorKind::parse,
               [] { npz(npz_of(npy_of(kF4x4), std::string("\xff\xfe.npy")).bytes); }});
  c.push_back({"member name with NUL", ErrorKind::parse,
               [] { npz(npz_of(npy_of(kF4x4), std::string("a\0b.npy", 7)).bytes); }});
  c.push_back({"duplicate member names", ErrorKind::parse, [] {
                 npz(build_zip({{"a.npy", npy_of(kF4x4)}, {"a.npy", npy_of(kF4x4)}}).bytes);
               }});
  c.push_back({"extra field overruns its entry", ErrorKind::parse, [] {
                 ZipMember m{"x.npy", npy_of(kF4x4)};
                 m.zip64 = true;
                 auto z = build_zip({m});
                 patch_le(z.bytes, z.central[0] + 46 + 5 + 2, 200, 2);  // inner length 200 > 28
                 npz(z.bytes);
               }});
  c.push_back({"ZIP64 extra field shorter than the saturated fields", ErrorKind::parse, [] {
                 ZipMember m{"x.npy", npy_of(kF4x4)};
                 m.zip64 = true;
                 auto z = build_zip({m});
                 patch_le(z.bytes, z.central[0] + 46 + 5 + 2, 8, 2);        // only usize present
                 patch_le(z.bytes, z.central[0] + 46 + 5 + 12, 0x5a5a, 2);  // rest: another field
                 patch_le(z.bytes, z.central[0] + 46 + 5 + 14, 12, 2);
                 npz(z.bytes);
               }});
  c.push_back(
      {"more entries than Limits::max_tensors", ErrorKind::limit, [] {
         Limits l;
         l.max_tensors = 2;
         npz(build_zip(
                 {{"a.npy", npy_of(kF4x4)}, {"b.npy", npy_of(kF4x4)}, {"c.npy", npy_of(kF4x4)}})
                 .bytes,
             l);
       }});
  // ---- NPY / NPZ ----------------------------------------------------------
  c.push_back({"npy bad magic", ErrorKind::parse, [] {
                 Bytes b = npy_of(kF4x4);
                 b[1] = std::byte{'X'};
                 npy_file(b);
               }});
  c.push_back({"npy version 1.1", ErrorKind::unsupported, [] {
                 Bytes b = npy_of(kF4x4);
                 b[7] = std::byte{1};
                 npy_file(b);
               }});
  c.push_back({"npy version 4.0", ErrorKind::unsupported, [] {
                 Bytes b = npy_of(kF4x4);
                 b[6] = std::byte{4};
                 npy_file(b);
               }});
  c.push_back({"npy v2 header length of 4 GiB in a tiny file", ErrorKind::limit, [] {
                 Bytes b = make_npy(kF4x4, zeros(16), 2);
                 patch_le(b, 8, 0xFFFFFFFF, 4);
                 npy_file(b);
               }});
  c.push_back({"npy header missing a key", ErrorKind::parse,
               [] { npy_file(npy_of("{'descr': '<f4', 'shape': (4,), }")); }});
  c.push_back({"npy header with an extra key", ErrorKind::parse, [] {
                 npy_file(
                     npy_of("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}"));
               }});
  c.push_back({"npy header not a dict", ErrorKind::parse, [] { npy_file(npy_of("[1, 2, 3]")); }});
  c.push_back({"npy object array", ErrorKind::unsupported, [] {
                 npy_file(npy_of("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"));
               }});
  c.push_back({"npy structured dtype", ErrorKind::unsupported, [] {
                 npy_file(
                     npy_of("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }"));
               }});
  c.push_back({"npy huge shape in an 80-byte file", ErrorKind::parse, [] {
                 npy_file(npy_of(
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (65536, 65536), }", 16));
               }});
  c.push_back({"npy negative dimension", ErrorKind::parse, [] {
                 npy_file(npy_of("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }"));
               }});
  c.push_back({"npy float dimension", ErrorKind::parse, [] {
                 npy_file(npy_of("{'descr': '<f4', 'fortran_order': False, 'shape': (4.0,), }"));
               }});
  c.push_back({"npy non-bool fortran_order", ErrorKind::parse, [] {
                 npy_file(npy_of("{'descr': '<f4', 'fortran_order': 'yes', 'shape': (4,), }"));
               }});
  c.push_back({"npy rank above the limit", ErrorKind::limit, [] {
                 std::string s = "{'descr': '<f4', 'fortran_order': True, 'shape': (";
                 for (int i = 0; i < 65; ++i) s += "1, ";
                 npy_file(npy_of(s + "), }", 4));
               }});
  c.push_back(
      {"npy shape product overflows", ErrorKind::parse, [] {
         npy_file(npy_of(
             "{'descr': '<f4', 'fortran_order': False, 'shape': (8589934592, 8589934592, 0), }"));
       }});
  c.push_back({"npy descr starting with a multibyte character", ErrorKind::unsupported, [] {
                 npy_file(
                     npy_of("{'descr': '\xc3\xa9"
                            "f4', 'fortran_order': False, 'shape': (4,), }"));
               }});
  c.push_back({"npy huge void itemsize", ErrorKind::unsupported, [] {
                 npy_file(
                     npy_of("{'descr': '|V999999999', 'fortran_order': False, 'shape': (4,), }"));
               }});
  c.push_back(
      {"npz member header declares more than the member holds", ErrorKind::parse, [] {
         npz(npz_of(npy_of("{'descr': '<f4', 'fortran_order': False, 'shape': (400,), }", 16))
                 .bytes);
       }});
  c.push_back(
      {"npz deflated member with a lying header", ErrorKind::parse, [] {
         npz(npz_of(npy_of("{'descr': '<f4', 'fortran_order': False, 'shape': (400,), }", 16),
                    "x.npy", true)
                 .bytes);
       }});
  // ---- CRC-32 of members read whole ------------------------------------------
  c.push_back({"npz deflated member with a wrong CRC-32", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4), "x.npy", true);
                 patch_le(z.bytes, z.central[0] + 16, 0xdeadbeef, 4);
                 const auto cat = npz(z.bytes);  // the header prefix is not checked
                 read_tensor_bytes(cat, 0);
               }});
  c.push_back({"npz deflated member with one flipped data byte (CRC only)", ErrorKind::parse, [] {
                 // A stored deflate block: flipping an element byte keeps the stream valid.
                 const Bytes m = npy_of(kF4x4);
                 ZipMember zm{"x.npy", deflate_raw(m, 0)};
                 zm.method = 8;
                 zm.usize = m.size();
                 auto z = build_zip({zm});
                 z.bytes[z.local[0] + 30 + 5 + zm.data.size() - 1] ^= std::byte{1};
                 const auto cat = npz(z.bytes);
                 read_tensor_bytes(cat, 0);
               }});
  c.push_back({"npz stored member with a wrong CRC-32", ErrorKind::parse, [] {
                 auto z = npz_of(npy_of(kF4x4));
                 patch_le(z.bytes, z.central[0] + 16, 0xdeadbeef, 4);
                 const auto cat = npz(z.bytes);
                 read_tensor_bytes(cat, 0);
               }});
  c.push_back({"npz stored big-endian member with a flipped element byte", ErrorKind::parse, [] {
                 auto z =
                     npz_of(npy_of("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }"));
                 z.bytes[z.cd_offset - 1] ^= std::byte{0x40};
                 const auto cat = npz(z.bytes);
                 read_tensor_bytes(cat, 0);
               }});
  c.push_back({"pth data.pkl with a wrong CRC-32", ErrorKind::parse, [] {
                 auto z = make_pth(one_tensor_pickle(), {{"0", zeros(16)}});
                 patch_le(z.bytes, z.central[0] + 16, 0x12345678, 4);
                 parse_pth(memory_source("h.pth", z.bytes), {});
               }});
  c.push_back({"pth byteorder record with a wrong CRC-32", ErrorKind::parse, [] {
                 auto z = make_pth(one_tensor_pickle(), {{"0", zeros(16)}});
                 patch_le(z.bytes, z.central[1] + 16, 0x12345678, 4);
                 parse_pth(memory_source("h.pth", z.bytes), {});
               }});
  c.push_back({"pth stored storage with a wrong CRC-32, read whole", ErrorKind::parse, [] {
                 auto z = make_pth(one_tensor_pickle(), {{"0", zeros(16)}});
                 patch_le(z.bytes, z.central[2] + 16, 0x12345678, 4);
                 const auto cat = parse_pth(memory_source("h.pth", z.bytes), {});
                 read_tensor_bytes(cat, 0);
               }});
  c.push_back({"npz member that is not .npy", ErrorKind::unsupported,
               [] { npz(npz_of(npy_of(kF4x4), "x.pkl").bytes); }});
  // ---- pickle VM / .pth -----------------------------------------------------
  c.push_back({"GLOBAL os system", ErrorKind::security,
               [] { vm(pk("cos\nsystem\n(X\x02\x00\x00\x00idtR")); }});
  c.push_back({"STACK_GLOBAL builtins eval", ErrorKind::security, [] {
                 vm(
                     pk("\x8c\x08"
                        "builtins\x8c\x04"
                        "eval\x93"));
               }});
  c.push_back({"__reduce__ to posix.system inside a .pth", ErrorKind::security,
               [] { pth(pk("cposix\nsystem\nX\x05\x00\x00\x00touch\x85R")); }});
  c.push_back({"torch.jit global", ErrorKind::security, [] { vm(pk("ctorch.jit\nload\n")); }});
  c.push_back(
      {"torch.Tensor is not a storage", ErrorKind::security, [] { vm(pk("ctorch\nTensor\n")); }});
  c.push_back({"INST opcode", ErrorKind::security, [] { vm(pk("(ios\nsystem\n")); }});
  c.push_back({"EXT1 opcode", ErrorKind::security, [] { vm(pk("\x82\x01")); }});
  c.push_back({"memo GET of a slot never set", ErrorKind::parse, [] { vm(pk("}h\x07")); }});
  c.push_back({"memo PUT at index 2^32-1 then GET elsewhere", ErrorKind::parse,
               [] { vm(pk("}r\xff\xff\xff\xffj\x00\x00\x00\x80")); }});
  c.push_back({"100 000 nested MARKs", ErrorKind::limit, [] { vm(pk(std::string(100000, '('))); }});
  c.push_back({"100 000 nested lists", ErrorKind::limit,
               [] { vm(pk(std::string(100000, ']') + std::string(99999, 'a'))); }});
  c.push_back({"truncated pickle", ErrorKind::parse, [] {
                 Bytes b = one_tensor_pickle();
                 b.resize(b.size() / 2);
                 vm(b);
               }});
  c.push_back({"REDUCE on an empty stack", ErrorKind::parse, [] { vm(pk("R")); }});
  c.push_back({"SETITEMS without MARK", ErrorKind::parse, [] { vm(pk("}u")); }});
  c.push_back({"SETITEM on a tensor (type confusion)", ErrorKind::parse, [] {
                 Bytes b = one_tensor_pickle();
                 // Replace "u." with: SETITEMS, then GET the tensor and SETITEM into it.
                 b.resize(b.size() - 2);
                 PickleWriter p;
                 p.b = b;
                 p.op('u').op('0');
                 p.global("torch._utils", "_rebuild_tensor_v2").op(')').op('R');
                 p.str("k").str("v").op('s').op('.');
                 vm(p.b);
               }});
  c.push_back({"BINUNICODE8 length 2^63", ErrorKind::limit,
               [] { vm(pk(std::string("\x8d\x00\x00\x00\x00\x00\x00\x00\x80", 9))); }});
  c.push_back(
      {"BINBYTES 4 GB", ErrorKind::limit, [] { vm(pk(std::string("B\xff\xff\xff\xff", 5))); }});
  c.push_back({"FRAME longer than the stream", ErrorKind::parse,
               [] { vm(pk(std::string("\x95\x00\x00\x00\x00\x01\x00\x00\x00", 9))); }});
  c.push_back({"pickle protocol 6", ErrorKind::unsupported,
               [] { vm(to_bytes(std::string_view("\x80\x06}.", 4))); }});
  c.push_back({"bytes after STOP", ErrorKind::parse, [] {
                 Bytes b = one_tensor_pickle();
                 b.push_back(std::byte{'N'});
                 vm(b);
               }});
  c.push_back({"unknown opcode", ErrorKind::parse, [] { vm(pk("\xff")); }});
  c.push_back({"persistent id names a missing storage record", ErrorKind::parse, [] {
                 pth(one_tensor_pickle(), {{"1", zeros(16)}});
               }});
  c.push_back({"storage numel differs from its record size", ErrorKind::parse,
               [] { pth(one_tensor_pickle(8, 0, {8}, {1})); }});
  c.push_back({"storage numel x itemsize overflows", ErrorKind::parse,
               [] { pth(one_tensor_pickle(0x4000000000000001, 0, {1}, {1})); }});
  c.push_back({"view reaches past the storage", ErrorKind::parse,
               [] { pth(one_tensor_pickle(4, 2, {3}, {1})); }});
  c.push_back({"zero stride expanding 16 bytes to terabytes", ErrorKind::limit,
               [] { pth(one_tensor_pickle(4, 0, {1'000'000'000'000}, {0})); }});
  c.push_back({"size and stride ranks differ", ErrorKind::parse, [] {
                 pth(one_tensor_pickle(4, 0, {2, 2}, {2}));
               }});
  c.push_back({"tensor rank above the limit", ErrorKind::limit, [] {
                 pth(one_tensor_pickle(4, 0, std::vector<std::int64_t>(17, 1),
                                       std::vector<std::int64_t>(17, 1)));
               }});
  c.push_back({"byteorder garbage", ErrorKind::parse, [] {
                 pth(one_tensor_pickle(), {{"0", zeros(16)}}, "middle");
               }});
  c.push_back({"two data.pkl records", ErrorKind::parse, [] {
                 std::vector<ZipMember> m{{"a/data.pkl", one_tensor_pickle()},
                                          {"b/data.pkl", one_tensor_pickle()}};
                 parse_pth(memory_source("h.pth", build_zip(m).bytes), {});
               }});
  c.push_back({"no data.pkl", ErrorKind::parse, [] {
                 parse_pth(memory_source("h.pth", build_zip({{"archive/x", zeros(4)}}).bytes), {});
               }});
  c.push_back({"legacy raw-pickle .pth", ErrorKind::unsupported,
               [] { parse_pth(memory_source("h.pth", one_tensor_pickle()), {}); }});
  c.push_back({"not a zip at all", ErrorKind::parse,
               [] { parse_pth(memory_source("h.pth", to_bytes("GGUF....")), {}); }});
  c.push_back({"pickle root is not a container", ErrorKind::parse, [] { vm(pk("K\x05")); }});
  return c;
}

}  // namespace

TEST_CASE("hostile archives and pickles give typed errors") {
  const auto all = cases();
  CHECK(all.size() >= 30);
  for (const auto& c : all) {
    INFO(c.name);
    try {
      c.run();
      FAIL_CHECK("accepted: " << c.name);
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(to_string(e.kind()) == to_string(c.expected));
    }
  }
}

TEST_CASE("disallowed globals are named, escaped, in the message") {
  try {
    vm(pk("cos\x1b[31m\nsystem\n"));
    FAIL("accepted");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(e.kind() == ErrorKind::security);
    CHECK(msg.find("system") != std::string::npos);
    CHECK(msg.find('\x1b') == std::string::npos);
    CHECK(msg.find("\\x1b") != std::string::npos);
  }
}

TEST_CASE("truncations and byte flips of a valid archive never crash") {
  PickleWriter p;
  p.proto().ordered_dict().op('(');
  p.tensor("a", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1});
  p.tensor("b", "FloatStorage", "0", 4, 1, {3}, {1});
  p.op('u').op('.');
  const Bytes good = make_pth(p.b, {{"0", zeros(16)}}).bytes;
  REQUIRE(parse_pth(memory_source("ok.pth", good), {}).tensors.size() == 2);
  const Bytes npz_good = npz_of(npy_of(kF4x4), "x.npy", true).bytes;
  REQUIRE(parse_npz(memory_source("ok.npz", npz_good), {}).tensors.size() == 1);
  std::size_t errors = 0;
  for (const Bytes* base : {&good, &npz_good}) {
    const bool is_pth = base == &good;
    for (std::size_t cut = 0; cut < base->size(); cut += 7) {
      Bytes b(base->begin(), base->begin() + cut);
      try {
        is_pth ? (void)parse_pth(memory_source("t", b), {})
               : (void)parse_npz(memory_source("t", b), {});
      } catch (const Error&) {
        ++errors;
      }
    }
    for (std::size_t at = 0; at < base->size(); ++at) {
      Bytes b = *base;
      b[at] ^= std::byte{0xFF};
      try {
        const Catalog cat =
            is_pth ? parse_pth(memory_source("t", b), {}) : parse_npz(memory_source("t", b), {});
        for (std::size_t i = 0; i < cat.tensors.size(); ++i) read_tensor_bytes(cat, i);
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  CHECK(errors > 0);
}
