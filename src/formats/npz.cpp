#include "src/formats/npz.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/formats/npy.hpp"
#include "src/formats/zip.hpp"

namespace mneme {

Catalog parse_npz(SourcePtr src, const Limits& limits) {
  Source& s = *src;
  const zip::Archive ar = zip::read_archive(s, limits);
  if (ar.entries.size() > limits.max_tensors) {
    over_limit("npz " + printable(s.name()), std::to_string(ar.entries.size()) + " arrays",
               &Limits::max_tensors, limits);
  }

  Catalog cat;
  cat.format = Format::npz;
  cat.sources = {src};
  cat.tensors.reserve(ar.entries.size());
  for (const auto& e : ar.entries) {
    const std::string what = s.name() + ":" + e.name;
    if (e.name.size() <= 4 || e.name.compare(e.name.size() - 4, 4, ".npy") != 0) {
      fail(ErrorKind::unsupported, "npz " + printable(what) + ": member is not a .npy array");
    }
    const std::uint64_t start = zip::data_offset(s, e);
    const bool deflated = e.method == zip::Method::deflated;
    const npy::ReadFn read = [&](std::uint64_t off, std::size_t n) {
      if (off > e.uncompressed_size || e.uncompressed_size - off < n) {
        fail(ErrorKind::parse, "npz " + printable(what) + ": truncated NPY header");
      }
      if (!deflated) {
        std::vector<std::byte> buf(n);
        if (n) s.read_at(start + off, buf);
        return buf;
      }
      // Inflate just the member's first off + n bytes (the header is capped
      // at 1 MiB, so this is bounded); the prefix is re-inflated per call.
      auto prefix = zip::read_member_prefix(s, e, start, off + n, limits);
      return std::vector<std::byte>(prefix.begin() + off, prefix.end());
    };
    const npy::Header h = npy::read_header(read, e.uncompressed_size, limits, what);

    TensorInfo t;
    t.name = e.name.substr(0, e.name.size() - 4);
    npy::describe(h, t);
    t.layout.zip_member = Layout::ZipMember{e.name, e.crc32, start, e.compressed_size};
    if (deflated) {
      t.data = Extent{0, start, e.compressed_size};
      t.layout.compression = Layout::Compression::deflate;
      t.layout.inflated_offset = h.data_offset;
      t.layout.inflated_size = e.uncompressed_size;
    } else {
      t.data = Extent{0, start + h.data_offset, h.data_bytes};
    }
    cat.tensors.push_back(std::move(t));
  }
  return cat;
}

}  // namespace mneme
