// A file of tensors written in place: the header first, then every tensor's
// bytes at their offsets, in any order, from any thread (pwrite). The
// destination is checked first (output_path.hpp); the bytes go to a temporary
// of a unique name in the destination's directory (so two runs writing the
// same output never share one), which commit() syncs and renames over the
// destination, then syncs the directory. Whatever ends the writer before a
// successful commit() (an error, a cancelled run, commit itself failing)
// removes the temporary: a failed run leaves nothing behind.
// The format writers (safetensors, GGUF) only compute header and offsets.
//
// On disk filesystems the temporary is preallocated and the bytes go to the
// device with O_DIRECT where they can: the whole pages a write covers, when
// its memory is aligned as its file offset is (see kDirectAlign); the rest
// of a write (a page it shares with a neighbour) goes through the page
// cache, so no page is ever written both ways. This skips the page cache's
// cost per fresh page, which bounds buffered writes (issue 15). tmpfs and
// filesystems that refuse O_DIRECT get buffered writes only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "src/formats/output_path.hpp"

namespace mneme {

class TensorFileWriter {
 public:
  // `offsets`/`sizes`: absolute place of each tensor's bytes; the file is
  // sized to file_size up front (sparse until written).
  TensorFileWriter(std::string path, std::span<const std::byte> header,
                   std::vector<std::uint64_t> offsets, std::vector<std::uint64_t> sizes,
                   std::uint64_t file_size, const OutputPolicy& policy);
  ~TensorFileWriter();  // discards an uncommitted file
  TensorFileWriter(const TensorFileWriter&) = delete;
  TensorFileWriter& operator=(const TensorFileWriter&) = delete;

  // Direct writes need memory and file offset aligned to this (4 KiB covers
  // every logical block size in use).
  static constexpr std::size_t kDirectAlign = 4096;

  // Writes bytes of tensor `index` starting `offset` bytes into its data;
  // bounds-checked against the declared size. Bytes whose address is
  // congruent to their file offset modulo kDirectAlign (file_offset) are
  // written around the page cache.
  void write(std::size_t index, std::uint64_t offset, std::span<const std::byte> bytes);
  // Where in the file byte `offset` of tensor `index` goes.
  std::uint64_t file_offset(std::size_t index, std::uint64_t offset) const {
    return offsets_.at(index) + offset;
  }
  // Whether writes may go around the page cache (false on tmpfs).
  bool direct() const { return direct_fd_ >= 0; }
  void commit();
  void discard() noexcept;

  std::uint64_t file_size() const { return file_size_; }
  // The temporary the bytes go to until commit(); empty once committed or discarded.
  const std::string& temporary_path() const { return temp_; }

 private:
  std::string path_;    // as given, for messages
  std::string target_;  // the file commit() creates or replaces
  std::string temp_;
  bool overwrite_ = true;
  int fd_ = -1;
  int direct_fd_ = -1;  // the temporary again, O_DIRECT; -1 where it is not used
  std::vector<std::uint64_t> offsets_;
  std::vector<std::uint64_t> sizes_;
  std::uint64_t file_size_ = 0;
};

}  // namespace mneme
