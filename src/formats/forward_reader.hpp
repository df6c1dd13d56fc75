// Sequential, buffered reading of a header from any source: reads move
// forward only (so stdin and sockets work), 64 KiB at a time, and every
// length is checked against the bytes the source can still have before it is
// used or allocated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "mneme/error.hpp"
#include "mneme/source.hpp"

namespace mneme {

class ForwardReader {
 public:
  ForwardReader(Source& source, std::string what)
      : src_(source), what_(std::move(what)), size_(source.size()) {}

  std::uint64_t position() const { return pos_; }
  // Bytes the source may still hold after the current position (unbounded when unknown).
  std::uint64_t remaining() const { return size_ ? *size_ - pos_ : ~std::uint64_t{0}; }

  void read(void* dst, std::size_t n) {
    auto* out = static_cast<std::byte*>(dst);
    while (n > 0) {
      if (head_ == buf_.size()) {
        refill(n);
      }
      const std::size_t k = std::min(n, buf_.size() - head_);
      std::memcpy(out, buf_.data() + head_, k);
      head_ += k;
      pos_ += k;
      out += k;
      n -= k;
    }
  }

  template <typename T>
  T get() {
    T v;
    read(&v, sizeof v);
    return v;  // little-endian hosts only (x86-64, aarch64)
  }

  // A length-prefixed string whose length was already read and checked
  // against its cap: it must be in the source before it is allocated.
  std::string string(std::uint64_t len) {
    need(len);
    std::string s(len, '\0');
    read(s.data(), len);
    return s;
  }

  void skip(std::uint64_t n) {
    need(n);
    while (n > 0) {
      if (head_ == buf_.size()) {
        refill(1);
      }
      const std::uint64_t k = std::min<std::uint64_t>(n, buf_.size() - head_);
      head_ += k;
      pos_ += k;
      n -= k;
    }
  }

  // Throws unless n more bytes can exist.
  void need(std::uint64_t n) const {
    if (n > remaining()) {
      fail(ErrorKind::parse, what_ + ": needs " + std::to_string(n) + " bytes at offset " +
                                 std::to_string(pos_) + " but the file ends first");
    }
  }

 private:
  // Random-access sources are read 64 KiB ahead; sequential ones exactly as
  // far as asked, so the pipeline can still read the bytes after the header.
  void refill(std::size_t want) {
    const std::uint64_t left = remaining();
    if (left == 0) {
      fail(ErrorKind::parse, what_ + ": truncated at offset " + std::to_string(pos_));
    }
    const std::uint64_t ahead = src_.sequential() ? want : std::max<std::uint64_t>(want, kChunk);
    buf_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(left, ahead)));
    try {
      src_.read_at(pos_, buf_);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::io && !size_) {
        fail(ErrorKind::parse, what_ + ": truncated at offset " + std::to_string(pos_));
      }
      throw;
    }
    head_ = 0;
  }

  static constexpr std::uint64_t kChunk = 64 << 10;
  Source& src_;
  std::string what_;
  std::optional<std::uint64_t> size_;
  std::vector<std::byte> buf_;
  std::size_t head_ = 0;
  std::uint64_t pos_ = 0;
};

}  // namespace mneme
