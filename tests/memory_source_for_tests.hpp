// A test-local Source over a byte vector that records every read, so tests
// can assert that parsers read headers only. It can also act as a sequential
// source (forward reads only, the first 64 KiB re-readable), like io/'s
// stream sources, without depending on them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zlib.h>

#include "mneme/error.hpp"
#include "mneme/source.hpp"

namespace mneme::test {

class MemorySourceForTests : public Source {
 public:
  static constexpr std::uint64_t kRetained = 64 * 1024;

  MemorySourceForTests(std::string name, std::vector<std::byte> bytes, bool sequential = false)
      : name_(std::move(name)), bytes_(std::move(bytes)), sequential_(sequential) {}

  const std::string& name() const override { return name_; }
  std::optional<std::uint64_t> size() const override { return bytes_.size(); }
  bool sequential() const override { return sequential_; }

  void read_at(std::uint64_t offset, std::span<std::byte> dst) override {
    if (offset > bytes_.size() || bytes_.size() - offset < dst.size()) {
      fail(ErrorKind::io, "memory source: read past the end");
    }
    if (sequential_ && offset < cursor_ && offset + dst.size() > kRetained) {
      fail(ErrorKind::unsupported, "memory source: backward read on a sequential source");
    }
    if (!dst.empty()) std::memcpy(dst.data(), bytes_.data() + offset, dst.size());
    cursor_ = std::max<std::uint64_t>(cursor_, offset + dst.size());
    reads_.emplace_back(offset, dst.size());
  }

  // Every (offset, length) read so far.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& reads() const { return reads_; }
  void clear_reads() { reads_.clear(); }
  std::uint64_t bytes_read() const {
    std::uint64_t n = 0;
    for (const auto& r : reads_) n += r.second;
    return n;
  }

 private:
  std::string name_;
  std::vector<std::byte> bytes_;
  bool sequential_;
  std::uint64_t cursor_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> reads_;
};

inline std::shared_ptr<MemorySourceForTests> memory_source(std::string name,
                                                           std::vector<std::byte> bytes,
                                                           bool sequential = false) {
  return std::make_shared<MemorySourceForTests>(std::move(name), std::move(bytes), sequential);
}

inline std::vector<std::byte> to_bytes(const std::vector<std::uint8_t>& v) {
  std::vector<std::byte> out(v.size());
  if (!v.empty()) std::memcpy(out.data(), v.data(), v.size());
  return out;
}

inline std::vector<std::byte> to_bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// --- Builders for synthetic archives (shared by the zip/npz/pth tests) ------

using Bytes = std::vector<std::byte>;

inline void put_le(Bytes& b, std::uint64_t v, int n) {
  for (int k = 0; k < n; ++k) b.push_back(static_cast<std::byte>((v >> (8 * k)) & 0xFF));
}
inline void patch_le(Bytes& b, std::size_t at, std::uint64_t v, int n) {
  for (int k = 0; k < n; ++k) b.at(at + k) = static_cast<std::byte>((v >> (8 * k)) & 0xFF);
}
inline void append(Bytes& b, std::string_view s) {
  for (char c : s) b.push_back(static_cast<std::byte>(c));
}
inline void append(Bytes& b, const Bytes& s) {
  b.insert(b.end(), s.begin(), s.end());
}

// Raw deflate (no zlib header), as zip members hold it.
inline Bytes deflate_raw(const Bytes& in, int level = 6) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&z, in.size()) + 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

struct ZipMember {
  ZipMember(std::string n, Bytes d) : name(std::move(n)), data(std::move(d)) {}
  std::string name;
  Bytes data;  // bytes as stored (compressed already when method 8)
  std::uint16_t method = 0;
  std::optional<std::uint64_t> usize;  // default: data.size() (stored)
  std::uint16_t flags = 0;
  bool zip64 = false;                // sizes and offset in a ZIP64 extra field of the directory
  bool torch_style = false;          // bit 3, zero local sizes, 64-bit data descriptor
  std::uint64_t align = 0;           // pad the local extra so the data starts aligned
  std::optional<std::uint32_t> crc;  // default: the CRC-32 of the (inflated) member
};

// CRC-32 of a member's uncompressed bytes: of `data` when stored, of what
// `data` inflates to when deflated (as far as it inflates, for broken streams).
inline std::uint32_t member_crc(const ZipMember& m) {
  if (m.crc) return *m.crc;
  if (m.method != 8) return crc32(0, reinterpret_cast<const Bytef*>(m.data.data()), m.data.size());
  z_stream z{};
  inflateInit2(&z, -MAX_WBITS);
  uLong crc = crc32(0, nullptr, 0);
  Bytes out(1 << 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(m.data.data()));
  z.avail_in = static_cast<uInt>(m.data.size());
  int rc = Z_OK;
  do {
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    rc = inflate(&z, Z_NO_FLUSH);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data()), out.size() - z.avail_out);
  } while (rc == Z_OK && z.avail_out == 0);
  inflateEnd(&z);
  return static_cast<std::uint32_t>(crc);
}

struct ZipLayout {
  Bytes bytes;
  std::vector<std::size_t> local;    // offset of each local header
  std::vector<std::size_t> central;  // offset of each directory header
  std::size_t cd_offset = 0, cd_size = 0, eocd = 0;
};

struct ZipOptions {
  bool zip64_end = false;
  std::string comment;
};

inline ZipLayout build_zip(const std::vector<ZipMember>& members, const ZipOptions& opt = {}) {
  ZipLayout z;
  Bytes& b = z.bytes;
  std::vector<std::uint64_t> usizes;
  for (const auto& m : members) {
    const std::uint64_t usize = m.usize.value_or(m.data.size());
    usizes.push_back(usize);
    z.local.push_back(b.size());
    const std::uint32_t crc = member_crc(m);
    put_le(b, 0x04034b50, 4);
    put_le(b, 20, 2);
    put_le(b, m.flags | (m.torch_style ? 8 : 0), 2);
    put_le(b, m.method, 2);
    put_le(b, 0, 4);
    put_le(b, m.torch_style ? 0 : crc, 4);
    put_le(b, m.torch_style ? 0 : m.data.size(), 4);
    put_le(b, m.torch_style ? 0 : usize, 4);
    put_le(b, m.name.size(), 2);
    std::size_t extra = 0;
    if (m.align) {
      const std::size_t here = b.size() + 2 + m.name.size() + 4;
      extra = 4 + (m.align - here % m.align) % m.align;
    }
    put_le(b, extra, 2);
    append(b, m.name);
    if (extra) {
      put_le(b, 0x5a5a, 2);  // PyTorch's "FB" padding id differs; any id works
      put_le(b, extra - 4, 2);
      b.insert(b.end(), extra - 4, std::byte{'Z'});
    }
    append(b, m.data);
    if (m.torch_style) {
      put_le(b, 0x08074b50, 4);
      put_le(b, crc, 4);
      put_le(b, m.data.size(), 8);
      put_le(b, usize, 8);
    }
  }
  z.cd_offset = b.size();
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& m = members[i];
    z.central.push_back(b.size());
    const std::uint32_t crc = member_crc(m);
    put_le(b, 0x02014b50, 4);
    put_le(b, 45, 2);
    put_le(b, 45, 2);
    put_le(b, m.flags | (m.torch_style ? 8 : 0), 2);
    put_le(b, m.method, 2);
    put_le(b, 0, 4);
    put_le(b, crc, 4);
    put_le(b, m.zip64 ? 0xFFFFFFFF : m.data.size(), 4);
    put_le(b, m.zip64 ? 0xFFFFFFFF : usizes[i], 4);
    put_le(b, m.name.size(), 2);
    put_le(b, m.zip64 ? 28 : 0, 2);
    put_le(b, 0, 2);
    put_le(b, 0, 2);
    put_le(b, 0, 2);
    put_le(b, 0, 4);
    put_le(b, m.zip64 ? 0xFFFFFFFF : z.local[i], 4);
    append(b, m.name);
    if (m.zip64) {
      put_le(b, 1, 2);
      put_le(b, 24, 2);
      put_le(b, usizes[i], 8);
      put_le(b, m.data.size(), 8);
      put_le(b, z.local[i], 8);
    }
  }
  z.cd_size = b.size() - z.cd_offset;
  if (opt.zip64_end) {
    const std::size_t rec = b.size();
    put_le(b, 0x06064b50, 4);
    put_le(b, 44, 8);
    put_le(b, 45, 2);
    put_le(b, 45, 2);
    put_le(b, 0, 4);
    put_le(b, 0, 4);
    put_le(b, members.size(), 8);
    put_le(b, members.size(), 8);
    put_le(b, z.cd_size, 8);
    put_le(b, z.cd_offset, 8);
    put_le(b, 0x07064b50, 4);
    put_le(b, 0, 4);
    put_le(b, rec, 8);
    put_le(b, 1, 4);
  }
  z.eocd = b.size();
  put_le(b, 0x06054b50, 4);
  put_le(b, 0, 2);
  put_le(b, 0, 2);
  put_le(b, opt.zip64_end ? 0xFFFF : members.size(), 2);
  put_le(b, opt.zip64_end ? 0xFFFF : members.size(), 2);
  put_le(b, opt.zip64_end ? 0xFFFFFFFF : z.cd_size, 4);
  put_le(b, opt.zip64_end ? 0xFFFFFFFF : z.cd_offset, 4);
  put_le(b, opt.comment.size(), 2);
  append(b, opt.comment);
  return z;
}

// An NPY stream: magic, version, padded header dict, then `data`.
inline Bytes make_npy(std::string_view dict, const Bytes& data, int major = 1) {
  Bytes b;
  append(b, "\x93NUMPY");
  b.push_back(static_cast<std::byte>(major));
  b.push_back(std::byte{0});
  std::string h(dict);
  const std::size_t fixed = major == 1 ? 10 : 12;
  while ((fixed + h.size() + 1) % 64) h += ' ';
  h += '\n';
  put_le(b, h.size(), major == 1 ? 2 : 4);
  append(b, h);
  append(b, data);
  return b;
}

// Writes pickle opcodes the way torch.save (protocol 2) does.
struct PickleWriter {
  Bytes b;
  PickleWriter& op(unsigned char c) {
    b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  PickleWriter& proto(int v = 2) { return op(0x80).op(static_cast<unsigned char>(v)); }
  PickleWriter& global(std::string_view module, std::string_view name) {
    op('c');
    append(b, module);
    op('\n');
    append(b, name);
    return op('\n');
  }
  PickleWriter& str(std::string_view s) {
    op('X');
    put_le(b, s.size(), 4);
    append(b, s);
    return *this;
  }
  PickleWriter& integer(std::int64_t v) {
    if (v >= 0 && v < 256) return op('K').op(static_cast<unsigned char>(v));
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put_le(b, static_cast<std::uint32_t>(v), 4);
      return *this;
    }
    op(0x8a).op(8);
    put_le(b, static_cast<std::uint64_t>(v), 8);
    return *this;
  }
  PickleWriter& tuple(const std::vector<std::int64_t>& v) {
    op('(');
    for (auto x : v) integer(x);
    return op('t');
  }
  PickleWriter& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  // One `name: _rebuild_tensor_v2(...)` pair, to sit inside a SETITEMS mark.
  PickleWriter& tensor(std::string_view name, std::string_view storage_class, std::string_view key,
                       std::int64_t numel, std::int64_t offset,
                       const std::vector<std::int64_t>& shape,
                       const std::vector<std::int64_t>& stride) {
    str(name);
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(')
        .str("storage")
        .global("torch", storage_class)
        .str(key)
        .str("cpu")
        .integer(numel)
        .op('t');
    op('Q');
    integer(offset);
    tuple(shape);
    tuple(stride);
    op(0x89);
    ordered_dict();
    op('t');
    return op('R');
  }
};

// A torch.save-style archive: prefix/data.pkl, prefix/byteorder (unless
// empty), prefix/data/<key> for each storage, prefix/version.
inline ZipLayout make_pth(const Bytes& pickle,
                          const std::vector<std::pair<std::string, Bytes>>& storages,
                          std::string_view byteorder = "little", std::string prefix = "archive/") {
  std::vector<ZipMember> m;
  m.push_back({prefix + "data.pkl", pickle});
  m.back().torch_style = true;
  m.back().align = 64;
  if (!byteorder.empty()) m.push_back({prefix + "byteorder", to_bytes(byteorder)});
  for (const auto& [key, data] : storages) {
    m.push_back({prefix + "data/" + key, data});
    m.back().torch_style = true;
    m.back().align = 64;
  }
  m.push_back({prefix + "version", to_bytes("3\n")});
  return build_zip(m);
}

// --- Reference-library oracles ---------------------------------------------

// The first of $MNEME_PYTHON, python3, /usr/bin/python3 that can import
// `module`; empty when none can.
inline std::string python_with(const std::string& module) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MNEME_PYTHON"); env && *env) candidates.emplace_back(env);
  candidates.emplace_back("python3");
  candidates.emplace_back("/usr/bin/python3");
  for (const auto& py : candidates) {
    const std::string cmd = py + " -c 'import " + module + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return {};
}

struct OracleCase {
  std::string archive, tensor, raw, dtype;
  std::vector<std::uint64_t> shape;
};

// Runs scripts/gen_oracle_npz_pth.py `mode` into `dir` and reads its manifest.
inline std::vector<OracleCase> run_oracle(const std::string& python, const std::string& mode,
                                          const std::filesystem::path& dir) {
  const std::string cmd = python + " " + MNEME_SOURCE_DIR + "/scripts/gen_oracle_npz_pth.py " +
                          mode + " '" + dir.string() + "'";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("oracle script failed: " + cmd);
  std::ifstream in(dir / "manifest.tsv");
  std::vector<OracleCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    if (f.size() == 4) f.emplace_back();  // scalar: empty dims
    if (f.size() != 5) throw std::runtime_error("bad manifest line: " + line);
    OracleCase c{f[0], f[1], f[2], f[3], {}};
    std::stringstream ds(f[4]);
    while (std::getline(ds, field, ',')) c.shape.push_back(std::stoull(field));
    cases.push_back(std::move(c));
  }
  return cases;
}

inline Bytes file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes b(v.size());
  if (!v.empty()) std::memcpy(b.data(), v.data(), v.size());
  return b;
}

}  // namespace mneme::test
