// TensorStream: one tensor's stored elements in C order, little-endian, from
// its stored bytes fed front to back. It hides what a layout other than the
// trivial one needs (catalog.hpp, Layout): raw deflate, the zip member's
// CRC-32, the bytes before and after the elements (an NPY header, the rest of
// a .pth storage), byte swapping and strides; and it checks the exact sizes
// and the CRC-32 at the end. It does no I/O: whoever owns the reads feeds it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mneme/catalog.hpp"

namespace mneme {

class Inflater;

class TensorStream {
 public:
  // Receives element bytes, in order; may be called many times per feed.
  using Emit = std::function<void(std::span<const std::byte>)>;

  // The stored bytes to feed, in order: the tensor's extent, widened to its
  // whole zip member when it has one (so that the CRC-32 covers the member).
  static Extent input(const TensorInfo& t);
  // Memory a stream of `t` holds between feeds: its inflate buffer, and the
  // whole element span when strides or byte order need every element first
  // (held_span_bytes; 0 otherwise).
  static std::uint64_t held_bytes(const TensorInfo& t);
  static std::uint64_t held_span_bytes(const TensorInfo& t);

  // Checks the layout against the shape (Error{parse}); `source_name` names
  // the source in CRC messages.
  TensorStream(const TensorInfo& t, std::string source_name);
  ~TensorStream();
  TensorStream(const TensorStream&) = delete;
  TensorStream& operator=(const TensorStream&) = delete;

  // The next bytes of input(), in order.
  void feed(std::span<const std::byte> piece, const Emit& emit);
  // After the last piece: the stream's exact end and the CRC-32, then any
  // elements held back (strided or byte-swapped tensors). Error{parse} when
  // the input was short, long or corrupt.
  void finish(const Emit& emit);

 private:
  void stored_bytes(std::span<const std::byte> bytes, const Emit& emit);
  void element_bytes(std::span<const std::byte> bytes, const Emit& emit);

  const TensorInfo& t_;
  std::string source_name_;
  std::string what_;  // "tensor \"name\"" for messages
  Extent input_;
  std::uint64_t fed_ = 0;         // input bytes fed so far
  std::uint64_t position_ = 0;    // stored (inflated) bytes seen so far
  std::uint64_t begin_ = 0;       // where the element span starts in the stored bytes
  std::uint64_t span_bytes_ = 0;  // stored bytes the elements reach
  std::uint32_t crc_ = 0;
  std::unique_ptr<Inflater> inflater_;
  std::vector<std::byte> inflated_;  // deflate output buffer
  bool collect_ = false;             // strides or byte swap: hold the span, emit at finish
  std::vector<std::byte> span_;
};

// The elements of catalog tensor `index` in C order, little-endian, read
// whole through its source (for tests and small tensors).
std::vector<std::byte> read_tensor_bytes(const Catalog& catalog, std::size_t index);

}  // namespace mneme
