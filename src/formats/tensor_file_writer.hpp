// A file of tensors written in place: the header first, then every tensor's
// bytes at their offsets, in any order, from any thread (pwrite). Built as
// `path.partial` and renamed by commit(), so a failed run leaves nothing.
// The format writers (safetensors, GGUF) only compute header and offsets.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mneme {

class TensorFileWriter {
 public:
  // `offsets`/`sizes`: absolute place of each tensor's bytes; the file is
  // sized to file_size up front (sparse until written).
  TensorFileWriter(std::string path, std::span<const std::byte> header, std::vector<std::uint64_t> offsets,
                   std::vector<std::uint64_t> sizes, std::uint64_t file_size);
  ~TensorFileWriter();  // discards an uncommitted file
  TensorFileWriter(const TensorFileWriter&) = delete;
  TensorFileWriter& operator=(const TensorFileWriter&) = delete;

  // Writes bytes of tensor `index` starting `offset` bytes into its data;
  // bounds-checked against the declared size.
  void write(std::size_t index, std::uint64_t offset, std::span<const std::byte> bytes);
  void commit();
  void discard() noexcept;

  std::uint64_t file_size() const { return file_size_; }

 private:
  std::string path_;
  std::string partial_;
  int fd_ = -1;
  std::vector<std::uint64_t> offsets_;
  std::vector<std::uint64_t> sizes_;
  std::uint64_t file_size_ = 0;
};

}  // namespace mneme
