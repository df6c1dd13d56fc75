#include "src/formats/inflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <string>

#include "mneme/error.hpp"

namespace mneme {

struct Inflater::State {
  z_stream z{};
  bool initialised = false;
  ~State() {
    if (initialised) inflateEnd(&z);
  }
};

Inflater::Inflater(std::uint64_t compressed_size, std::uint64_t inflated_size,
                   std::uint64_t max_ratio)
    : state_(std::make_unique<State>()),
      compressed_size_(compressed_size),
      inflated_size_(inflated_size) {
  if (compressed_size == 0) fail(ErrorKind::parse, "deflated member has no compressed bytes");
  std::uint64_t ceiling;
  if (!__builtin_mul_overflow(compressed_size, max_ratio, &ceiling) && inflated_size > ceiling) {
    fail(ErrorKind::limit, "deflated member declares " + std::to_string(inflated_size) +
                               " bytes from " + std::to_string(compressed_size) +
                               " compressed: ratio above " + std::to_string(max_ratio) +
                               ":1 (zip bomb?)");
  }
  // Raw deflate (negative window bits): zip members carry no zlib header.
  if (inflateInit2(&state_->z, -MAX_WBITS) != Z_OK) {
    fail(ErrorKind::limit, "cannot initialise zlib inflate");
  }
  state_->initialised = true;
}

Inflater::~Inflater() = default;

Inflater::Progress Inflater::feed(std::span<const std::byte> in, std::span<std::byte> out) {
  Progress p;
  z_stream& z = state_->z;
  std::byte scratch[1];
  while (!finished_) {
    const std::uint64_t in_left =
        std::min<std::uint64_t>(in.size() - p.consumed, compressed_size_ - total_in_);
    const auto in_avail = static_cast<uInt>(std::min<std::uint64_t>(in_left, UINT_MAX));
    // Once the declared size is reached, a one-byte probe tells whether the
    // stream ends there or would produce more.
    const bool probe = total_out_ == inflated_size_;
    const std::uint64_t out_left =
        std::min<std::uint64_t>(out.size() - p.produced, inflated_size_ - total_out_);
    const auto out_avail =
        probe ? 1u : static_cast<uInt>(std::min<std::uint64_t>(out_left, UINT_MAX));
    if (out_avail == 0) break;  // the caller's output span is full

    z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data() + p.consumed));
    z.avail_in = in_avail;
    z.next_out = reinterpret_cast<Bytef*>(probe ? scratch : out.data() + p.produced);
    z.avail_out = out_avail;
    const int rc = ::inflate(&z, Z_NO_FLUSH);
    const std::size_t used = in_avail - z.avail_in;
    const std::size_t made = out_avail - z.avail_out;
    p.consumed += used;
    total_in_ += used;
    if (probe && made > 0) {
      fail(ErrorKind::parse, "deflate stream inflates past its declared size of " +
                                 std::to_string(inflated_size_) + " bytes");
    }
    if (!probe) {
      p.produced += made;
      total_out_ += made;
    }
    if (rc == Z_STREAM_END) {
      if (total_out_ != inflated_size_) {
        fail(ErrorKind::parse, "deflate stream ends early: " + std::to_string(total_out_) + " of " +
                                   std::to_string(inflated_size_) + " bytes");
      }
      if (total_in_ != compressed_size_) {
        fail(ErrorKind::parse, "deflate stream ends before the member's compressed size");
      }
      finished_ = true;
      break;
    }
    if (rc == Z_MEM_ERROR) fail(ErrorKind::limit, "zlib inflate out of memory");
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      fail(ErrorKind::parse, std::string("corrupt deflate stream: ") + (z.msg ? z.msg : "error"));
    }
    if (used == 0 && made == 0) {
      // No progress with room to write: zlib needs input.
      if (total_in_ == compressed_size_) {
        fail(ErrorKind::parse, "truncated deflate stream (member data ends mid-stream)");
      }
      break;  // wait for the caller's next input
    }
  }
  return p;
}

}  // namespace mneme
