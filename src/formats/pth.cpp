#include "src/formats/pth.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/formats/pickle.hpp"
#include "src/formats/zip.hpp"

namespace mneme {
namespace {

constexpr std::uint64_t kMaxByteorderBytes = 64;
// A view may repeat storage bytes (zero strides, overlapping views), but the
// whole file may not expand beyond Limits::max_view_expansion times its
// storages, plus this slack for small expanded scalars: a 4-byte storage is
// not a 4 TB tensor.
constexpr std::uint64_t kExpansionSlack = 1ull << 20;

[[noreturn]] void bad(const Source& src, const std::string& why) {
  fail(ErrorKind::parse, "pth " + printable(src.name()) + ": " + why);
}

void refuse_legacy(Source& src) {
  const auto size = src.size();
  const std::uint64_t n = std::min<std::uint64_t>(size.value_or(8), 264);
  if (n < 4) bad(src, "too short to be a PyTorch archive");
  std::vector<std::byte> head(n);
  src.read_at(0, head);
  const auto b = [&](std::size_t i) { return std::to_integer<unsigned>(head[i]); };
  if (b(0) == 0x80 && b(1) <= 5) {
    fail(ErrorKind::unsupported,
         "pth " + printable(src.name()) +
             ": legacy (pre-1.6) raw-pickle checkpoint; re-save it with torch.save(obj, path, "
             "_use_new_zipfile_serialization=True) (the default since PyTorch 1.6)");
  }
  if (n >= 262 && std::memcmp(head.data() + 257, "ustar", 5) == 0) {
    fail(ErrorKind::unsupported,
         "pth " + printable(src.name()) +
             ": legacy tar checkpoint; re-save it with torch.save (PyTorch >= 1.6)");
  }
  if (!looks_like_zip(head)) bad(src, "not a PyTorch zip archive");
}

// "<prefix>/data.pkl" with a prefix of one path component (PyTorch writes
// "archive/" or "<model_name>/"), or a bare "data.pkl".
std::string find_prefix(const Source& src, const zip::Archive& ar) {
  std::optional<std::string> prefix;
  for (const auto& e : ar.entries) {
    const std::string_view n = e.name;
    std::string p;
    if (n == "data.pkl") {
      p = "";
    } else if (n.size() > 9 && n.substr(n.size() - 9) == "/data.pkl" &&
               n.substr(0, n.size() - 9).find('/') == std::string_view::npos) {
      p = std::string(n.substr(0, n.size() - 8));
    } else {
      continue;
    }
    if (prefix) bad(src, "several data.pkl records");
    prefix = std::move(p);
  }
  if (!prefix) bad(src, "no data.pkl record (not a torch.save archive)");
  return *prefix;
}

bool c_contiguous(const std::vector<std::uint64_t>& shape,
                  const std::vector<std::uint64_t>& stride) {
  std::uint64_t expect = 1;
  for (std::size_t k = shape.size(); k-- > 0;) {
    if (shape[k] != 1 && stride[k] != expect) return false;
    expect *= shape[k];  // bounded by the checked element count
  }
  return true;
}

}  // namespace

Catalog parse_pth(SourcePtr src, const Limits& limits) {
  Source& s = *src;
  refuse_legacy(s);
  const zip::Archive ar = zip::read_archive(s, limits);
  const std::string prefix = find_prefix(s, ar);
  if (ar.find(prefix + "constants.pkl")) {
    fail(ErrorKind::unsupported, "pth " + printable(s.name()) +
                                     ": TorchScript archive (constants.pkl); only torch.save "
                                     "state dicts are read");
  }

  bool big_endian = false;
  if (const auto* e = ar.find(prefix + "byteorder")) {
    const auto b = zip::read_member(s, *e, kMaxByteorderBytes, limits);
    const std::string_view v(reinterpret_cast<const char*>(b.data()), b.size());
    if (v == "big") {
      big_endian = true;
    } else if (v != "little") {
      bad(s, "byteorder record is neither little nor big: " + printable(v));
    }
  }

  const auto pkl =
      zip::read_member(s, *ar.find(prefix + "data.pkl"), limits.max_header_bytes, limits);
  const auto refs = pickle::load_state_dict(pkl, limits);

  Catalog cat;
  cat.format = Format::pth;
  cat.sources = {src};
  cat.tensors.reserve(refs.size());
  std::map<std::string, std::uint64_t> data_start;  // storage key -> member data offset
  std::set<std::string> names;
  std::uint64_t storage_bytes = 0, logical_bytes = 0;

  for (const auto& r : refs) {
    const std::string what = "tensor " + printable(r.name);
    if (!names.insert(r.name).second) bad(s, "duplicate " + what);
    const auto* rec = ar.find(prefix + "data/" + r.storage.key);
    if (!rec) bad(s, what + " names missing storage record data/" + printable(r.storage.key));
    const std::uint64_t item = dtype_size(r.storage.dtype);
    const std::uint64_t bytes = checked_mul(r.storage.numel, item, "pth storage size");
    if (bytes != rec->uncompressed_size) {
      bad(s, "storage " + printable(r.storage.key) + " declares " + std::to_string(bytes) +
                 " bytes but its record holds " + std::to_string(rec->uncompressed_size));
    }
    auto [it, fresh] = data_start.try_emplace(r.storage.key, 0);
    if (fresh) {
      it->second = zip::data_offset(s, *rec);
      storage_bytes = checked_add(storage_bytes, bytes, "pth storage total");
    }

    TensorInfo t;
    t.name = r.name;
    t.dtype = r.storage.dtype;
    t.shape = r.shape;
    const std::uint64_t count = t.element_count();
    logical_bytes = checked_add(logical_bytes, t.byte_size(), "pth total size");
    // The elements the view touches: [offset, offset + span) of the storage.
    std::uint64_t span = 0;
    if (count > 0) {
      std::uint64_t last = 0;
      for (std::size_t k = 0; k < r.shape.size(); ++k) {
        last = checked_add(last, checked_mul(r.shape[k] - 1, r.stride[k], "pth view"), "pth view");
      }
      span = checked_add(last, 1, "pth view");
    }
    if (r.storage_offset > r.storage.numel || r.storage.numel - r.storage_offset < span) {
      bad(s, what + " reaches past the end of its storage");
    }
    if (count > 0 && !c_contiguous(r.shape, r.stride)) t.layout.strides = r.stride;
    t.layout.byte_swapped = big_endian && item > 1;
    const std::uint64_t first = r.storage_offset * item;  // <= bytes, no overflow
    t.layout.zip_member =
        Layout::ZipMember{rec->name, rec->crc32, it->second, rec->compressed_size};
    if (rec->method == zip::Method::deflated) {
      t.data = Extent{0, it->second, rec->compressed_size};
      t.layout.compression = Layout::Compression::deflate;
      t.layout.inflated_offset = first;
      t.layout.inflated_size = rec->uncompressed_size;
    } else {
      t.data = Extent{0, it->second + first, span * item};
    }
    cat.tensors.push_back(std::move(t));
  }
  std::uint64_t ceiling = 0;  // saturates: no storage expands past 2^64 bytes
  if (__builtin_mul_overflow(storage_bytes, limits.max_view_expansion, &ceiling) ||
      __builtin_add_overflow(ceiling, kExpansionSlack, &ceiling)) {
    ceiling = std::numeric_limits<std::uint64_t>::max();
  }
  if (logical_bytes > ceiling) {
    over_limit("pth " + printable(s.name()),
               "tensor views expanding " + std::to_string(storage_bytes) + " storage bytes to " +
                   std::to_string(logical_bytes),
               &Limits::max_view_expansion, limits);
  }
  return cat;
}

}  // namespace mneme
