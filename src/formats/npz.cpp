#include "src/formats/npz.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/formats/inflate.hpp"
#include "src/formats/npy.hpp"
#include "src/formats/zip.hpp"

namespace mneme {

Catalog parse_npz(SourcePtr src, const Limits& limits) {
  Source& s = *src;
  zip::Limits zl;
  zl.max_entries = std::min<std::uint64_t>(zl.max_entries, limits.max_tensors);
  zl.max_directory_bytes = std::min<std::uint64_t>(zl.max_directory_bytes, limits.max_header_bytes);
  const zip::Archive ar = zip::read_archive(s, zl);

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
      auto prefix = zip::read_member_prefix(s, e, start, off + n, zl);
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

namespace mneme {

std::vector<std::byte> read_tensor_bytes(const Catalog& cat, std::size_t index) {
  const TensorInfo& t = cat.tensors.at(index);
  Source& src = *cat.sources.at(t.data.source);
  const std::size_t item = dtype_size(t.dtype);
  const std::uint64_t count = t.element_count();
  const auto& strides = t.layout.strides;
  if (!strides.empty() && strides.size() != t.shape.size()) {
    fail(ErrorKind::parse, "tensor " + printable(t.name) + ": strides and shape ranks differ");
  }
  if (count == 0) return {};

  // Elements the stored span holds: all of them, or what the strides reach.
  std::uint64_t span = count;
  if (!strides.empty()) {
    std::uint64_t last = 0;
    for (std::size_t k = 0; k < t.shape.size(); ++k) {
      last = checked_add(last, checked_mul(t.shape[k] - 1, strides[k], "view"), "view");
    }
    span = checked_add(last, 1, "view");
  }
  const std::uint64_t span_bytes = checked_mul(span, item, "view bytes");
  std::vector<std::byte> stored(span_bytes);
  const auto& member = t.layout.zip_member;
  const std::string what = "tensor \"" + printable(t.name) + "\"";
  std::uint32_t crc = 0;

  if (t.layout.compression == Layout::Compression::none) {
    if (t.data.length < span_bytes) {
      fail(ErrorKind::parse, "tensor " + printable(t.name) + ": extent shorter than its elements");
    }
    if (!member) {
      src.read_at(t.data.offset, stored);
    } else {
      // Read the whole stored member in bounded pieces so its CRC-32 can be
      // checked, keeping only the element span.
      if (t.data.offset < member->offset || t.data.offset - member->offset > member->length ||
          member->length - (t.data.offset - member->offset) < span_bytes) {
        fail(ErrorKind::parse, what + ": elements outside its zip member");
      }
      const std::uint64_t begin = t.data.offset - member->offset;
      std::vector<std::byte> piece(std::min<std::uint64_t>(member->length, 1 << 20));
      for (std::uint64_t at = 0; at < member->length;) {
        const std::uint64_t n = std::min<std::uint64_t>(piece.size(), member->length - at);
        const std::span<std::byte> got(piece.data(), n);
        src.read_at(member->offset + at, got);
        crc = zip::crc32_update(crc, got);
        const std::uint64_t lo = std::max(at, begin), hi = std::min(at + n, begin + span_bytes);
        if (lo < hi) std::memcpy(stored.data() + (lo - begin), piece.data() + (lo - at), hi - lo);
        at += n;
      }
      zip::check_crc(src, member->name, member->crc32, crc, what);
    }
  } else {
    const std::uint64_t begin = t.layout.inflated_offset;
    if (begin > t.layout.inflated_size || t.layout.inflated_size - begin < span_bytes) {
      fail(ErrorKind::parse, "tensor " + printable(t.name) + ": elements past the inflated size");
    }
    // Inflate the whole member (so its end is checked too), keeping only
    // [begin, begin + span_bytes).
    Inflater inf(t.data.length, t.layout.inflated_size);
    std::vector<std::byte> in(std::min<std::uint64_t>(t.data.length, 1 << 20));
    std::vector<std::byte> out(
        std::min<std::uint64_t>(std::max<std::uint64_t>(t.layout.inflated_size, 1), 1 << 20));
    std::uint64_t in_pos = 0, in_len = 0, in_used = 0;
    while (!inf.finished()) {
      if (in_used == in_len && in_pos < t.data.length) {
        in_len = std::min<std::uint64_t>(in.size(), t.data.length - in_pos);
        src.read_at(t.data.offset + in_pos, std::span<std::byte>(in.data(), in_len));
        in_pos += in_len;
        in_used = 0;
      }
      const std::uint64_t out_at = inf.total_out();
      const auto p =
          inf.feed(std::span<const std::byte>(in.data() + in_used, in_len - in_used), out);
      in_used += p.consumed;
      crc = zip::crc32_update(crc, std::span<const std::byte>(out.data(), p.produced));
      // Copy the overlap of [out_at, out_at + produced) with the element span.
      const std::uint64_t lo = std::max(out_at, begin);
      const std::uint64_t hi = std::min(out_at + p.produced, begin + span_bytes);
      if (lo < hi) std::memcpy(stored.data() + (lo - begin), out.data() + (lo - out_at), hi - lo);
      if (p.consumed == 0 && p.produced == 0 && !inf.finished() && in_used == in_len &&
          in_pos == t.data.length) {
        fail(ErrorKind::parse, "tensor " + printable(t.name) + ": deflate stream stalls");
      }
    }
    if (member) zip::check_crc(src, member->name, member->crc32, crc, what);
  }

  if (t.layout.byte_swapped && item > 1) {
    for (std::uint64_t k = 0; k < span_bytes; k += item) {
      std::reverse(stored.begin() + static_cast<std::ptrdiff_t>(k),
                   stored.begin() + static_cast<std::ptrdiff_t>(k + item));
    }
  }
  if (strides.empty()) return stored;

  // Gather in C order with an odometer: amortised O(1) per element whatever
  // the rank (many size-1 dimensions cost nothing extra per element).
  std::vector<std::byte> result(checked_mul(count, item, "tensor bytes"));
  const std::size_t rank = t.shape.size();
  std::vector<std::uint64_t> idx(rank, 0);
  std::uint64_t at = 0;  // element offset into the span
  for (std::uint64_t n = 0; n < count; ++n) {
    std::memcpy(result.data() + n * item, stored.data() + at * item, item);
    for (std::size_t d = rank; d-- > 0;) {
      if (++idx[d] < t.shape[d]) {
        at += strides[d];
        break;
      }
      at -= (t.shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  return result;
}

}  // namespace mneme
