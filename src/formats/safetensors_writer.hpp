// Streaming safetensors writer: the header is written first (every size is
// known from the plan), then tensor bytes land at their offsets in any order
// from any thread. The file is built as `path.partial` and renamed by commit().
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mneme/dtype.hpp"

namespace mneme {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::uint64_t bytes = 0;
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

// The header JSON (tensors in the given order, data laid out back to back),
// padded with spaces to a multiple of 8 bytes, without the length prefix.
std::string safetensors_header(const std::vector<SafetensorsEntry>& entries, const Metadata& metadata);

class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, const std::vector<SafetensorsEntry>& entries, const Metadata& metadata);
  ~SafetensorsWriter();  // discards an uncommitted file
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Writes bytes of tensor `index` starting `offset` bytes into its data.
  // Thread-safe (pwrite); bounds-checked against the declared tensor size.
  void write(std::size_t index, std::uint64_t offset, std::span<const std::byte> bytes);
  // Flushes and renames the partial file into place.
  void commit();
  // Removes the partial file. Idempotent.
  void discard() noexcept;

  std::uint64_t file_size() const { return file_size_; }

 private:
  std::string path_;
  std::string partial_;
  int fd_ = -1;
  std::vector<std::uint64_t> offsets_;  // absolute file offset of each tensor
  std::vector<std::uint64_t> sizes_;
  std::uint64_t file_size_ = 0;
};

}  // namespace mneme
