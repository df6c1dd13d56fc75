#include "src/formats/tensor_stream.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/formats/inflate.hpp"
#include "src/formats/zip.hpp"

namespace mneme {
namespace {

constexpr std::size_t kInflateBuffer = 64 << 10;

// Stored bytes the elements reach: all of them, or what the strides reach.
std::uint64_t span_bytes_of(const TensorInfo& t) {
  const auto& strides = t.layout.strides;
  if (!strides.empty() && strides.size() != t.shape.size()) {
    fail(ErrorKind::parse, "tensor " + printable(t.name) + ": strides and shape ranks differ");
  }
  const std::uint64_t count = t.element_count();
  if (count == 0) {
    return 0;
  }
  std::uint64_t span = count;
  if (!strides.empty()) {
    std::uint64_t last = 0;
    for (std::size_t k = 0; k < t.shape.size(); ++k) {
      last = checked_add(last, checked_mul(t.shape[k] - 1, strides[k], "view"), "view");
    }
    span = checked_add(last, 1, "view");
  }
  return checked_mul(span, dtype_size(t.dtype), "view bytes");
}

bool collects(const TensorInfo& t) {
  return !t.layout.strides.empty() || (t.layout.byte_swapped && dtype_size(t.dtype) > 1);
}

}  // namespace

Extent TensorStream::input(const TensorInfo& t) {
  Extent in = t.data;
  const auto& m = t.layout.zip_member;
  if (m && t.layout.compression == Layout::Compression::none) {
    // Parsers checked both ranges against the source's size.
    const std::uint64_t lo = std::min(in.offset, m->offset);
    const std::uint64_t hi = std::max(in.offset + in.length, m->offset + m->length);
    in.offset = lo;
    in.length = hi - lo;
  }
  return in;
}

std::uint64_t TensorStream::held_span_bytes(const TensorInfo& t) {
  return collects(t) ? span_bytes_of(t) : 0;
}

std::uint64_t TensorStream::held_bytes(const TensorInfo& t) {
  const std::uint64_t n = t.layout.compression == Layout::Compression::deflate ? kInflateBuffer : 0;
  return checked_add(n, held_span_bytes(t), "tensor bytes");
}

TensorStream::TensorStream(const TensorInfo& t, std::string source_name)
    : t_(t),
      source_name_(std::move(source_name)),
      what_("tensor \"" + printable(t.name) + "\""),
      input_(input(t)),
      span_bytes_(span_bytes_of(t)),
      collect_(collects(t)) {
  const Layout& layout = t.layout;
  if (layout.compression == Layout::Compression::deflate) {
    begin_ = layout.inflated_offset;
    if (begin_ > layout.inflated_size || layout.inflated_size - begin_ < span_bytes_) {
      fail(ErrorKind::parse, what_ + ": elements past its inflated size");
    }
    // The catalog checked the declared ratio against the user's Limits; the
    // inflater still holds the stream to its declared size.
    inflater_ = std::make_unique<Inflater>(t.data.length, layout.inflated_size,
                                           std::numeric_limits<std::uint64_t>::max());
    inflated_.resize(kInflateBuffer);
  } else {
    if (t.data.length < span_bytes_) {
      fail(ErrorKind::parse, "tensor " + printable(t.name) + ": extent shorter than its elements");
    }
    if (const auto& m = layout.zip_member;
        m && (t.data.offset < m->offset || t.data.offset - m->offset > m->length ||
              m->length - (t.data.offset - m->offset) < span_bytes_)) {
      fail(ErrorKind::parse, what_ + ": elements outside its zip member");
    }
    begin_ = t.data.offset - input_.offset;
  }
  if (collect_) {
    span_.resize(span_bytes_);
  }
}

TensorStream::~TensorStream() = default;

void TensorStream::feed(std::span<const std::byte> piece, const Emit& emit) {
  if (piece.size() > input_.length - fed_) {
    fail(ErrorKind::parse, what_ + ": fed past its stored bytes");
  }
  fed_ += piece.size();
  if (!inflater_) {
    stored_bytes(piece, emit);
    return;
  }
  while (true) {
    const auto p = inflater_->feed(piece, inflated_);
    piece = piece.subspan(p.consumed);
    stored_bytes({inflated_.data(), p.produced}, emit);
    if (p.consumed == 0 && p.produced == 0) {
      break;
    }
  }
  if (!piece.empty()) {
    fail(ErrorKind::parse, what_ + ": deflate stream stalls");
  }
}

void TensorStream::stored_bytes(std::span<const std::byte> bytes, const Emit& emit) {
  if (bytes.empty()) {
    return;
  }
  if (t_.layout.zip_member) {
    crc_ = zip::crc32_update(crc_, bytes);
  }
  // The overlap of [position_, position_ + size) with the element span.
  const std::uint64_t lo = std::max(position_, begin_);
  const std::uint64_t hi = std::min(position_ + bytes.size(), begin_ + span_bytes_);
  if (lo < hi) {
    const auto elements = bytes.subspan(lo - position_, hi - lo);
    if (collect_) {
      std::memcpy(span_.data() + (lo - begin_), elements.data(), elements.size());
    } else {
      emit(elements);
    }
  }
  position_ += bytes.size();
}

void TensorStream::finish(const Emit& emit) {
  if (fed_ != input_.length) {
    fail(ErrorKind::parse, what_ + ": its stored bytes end early");
  }
  if (inflater_) {
    while (!inflater_->finished()) {
      const auto p = inflater_->feed({}, inflated_);
      stored_bytes({inflated_.data(), p.produced}, emit);
      if (p.produced == 0 && !inflater_->finished()) {
        fail(ErrorKind::parse, what_ + ": deflate stream ends early");
      }
    }
  }
  if (const auto& m = t_.layout.zip_member) {
    zip::check_crc(source_name_, m->name, m->crc32, crc_, what_);
  }
  if (!collect_) {
    return;
  }
  const std::size_t item = dtype_size(t_.dtype);
  if (t_.layout.byte_swapped && item > 1) {
    for (std::size_t k = 0; k + item <= span_.size(); k += item) {
      std::reverse(span_.begin() + static_cast<std::ptrdiff_t>(k),
                   span_.begin() + static_cast<std::ptrdiff_t>(k + item));
    }
  }
  const auto& strides = t_.layout.strides;
  if (strides.empty()) {
    emit(span_);
    return;
  }
  // Gather in C order with an odometer (amortised O(1) per element whatever
  // the rank), emitting a bounded piece at a time.
  const std::uint64_t count = t_.element_count();
  const std::size_t rank = t_.shape.size();
  std::vector<std::uint64_t> idx(rank, 0);
  std::vector<std::byte> out(std::min<std::uint64_t>(count * item, kInflateBuffer) / item * item);
  std::size_t used = 0;
  std::uint64_t at = 0;  // element offset into the span
  for (std::uint64_t n = 0; n < count; ++n) {
    std::memcpy(out.data() + used, span_.data() + at * item, item);
    used += item;
    if (used == out.size()) {
      emit({out.data(), used});
      used = 0;
    }
    for (std::size_t d = rank; d-- > 0;) {
      if (++idx[d] < t_.shape[d]) {
        at += strides[d];
        break;
      }
      at -= (t_.shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  if (used) {
    emit({out.data(), used});
  }
}

std::vector<std::byte> read_tensor_bytes(const Catalog& cat, std::size_t index) {
  const TensorInfo& t = cat.tensors.at(index);
  Source& src = *cat.sources.at(t.data.source);
  TensorStream stream(t, src.name());
  std::vector<std::byte> result;
  result.reserve(t.byte_size());
  const TensorStream::Emit emit = [&](std::span<const std::byte> b) {
    result.insert(result.end(), b.begin(), b.end());
  };
  const Extent in = TensorStream::input(t);
  std::vector<std::byte> piece(std::min<std::uint64_t>(in.length, 1 << 20));
  for (std::uint64_t at = 0; at < in.length;) {
    const std::span<std::byte> got(piece.data(), std::min<std::uint64_t>(piece.size(), in.length - at));
    src.read_at(in.offset + at, got);
    stream.feed(got, emit);
    at += got.size();
  }
  stream.finish(emit);
  return result;
}

}  // namespace mneme
