// Streaming raw-deflate stage (zlib, no zlib/gzip wrapper) for deflated zip
// members. The caller owns both buffers: feed compressed bytes as they arrive,
// receive inflated bytes into its span. The stream must produce exactly the
// declared size from exactly the declared compressed bytes; more output, an
// early end, trailing input or a truncated stream is Error{parse}, and a
// declared ratio above the limit is Error{limit} before anything is inflated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace mneme {

class Inflater {
 public:
  // Refuses a declared size above max_ratio times the compressed size
  // (Limits::max_zip_ratio; deflate's own ceiling is about 1032:1).
  Inflater(std::uint64_t compressed_size, std::uint64_t inflated_size, std::uint64_t max_ratio);
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  struct Progress {
    std::size_t consumed = 0;  // bytes of `in` used
    std::size_t produced = 0;  // bytes written to the front of `out`
  };

  // Inflates from `in` into `out` until one of them is used up or the stream
  // ends. Input past the declared compressed size is not consumed. Call again
  // with the rest of `in` and/or more room in `out` until finished().
  Progress feed(std::span<const std::byte> in, std::span<std::byte> out);

  // The stream ended, having produced exactly the declared inflated size from
  // exactly the declared compressed size.
  bool finished() const { return finished_; }
  std::uint64_t total_in() const { return total_in_; }
  std::uint64_t total_out() const { return total_out_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::uint64_t compressed_size_;
  std::uint64_t inflated_size_;
  std::uint64_t total_in_ = 0;
  std::uint64_t total_out_ = 0;
  bool finished_ = false;
};

}  // namespace mneme
