// ZIP central-directory reader for NPZ and PyTorch archives (hostile-inputs.md
// §1.5, checklist 38-48). It reads only the end records and the central
// directory, trusts the central directory for methods and sizes (PyTorch
// writes zeros in local headers), and resolves a member's data offset from its
// local header on demand. Every entry's data must end before the next entry
// (or the central directory) starts: overlapping entries are the zip-bomb
// construction and are refused with Error{security}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mneme/limits.hpp"
#include "mneme/source.hpp"

namespace mneme {

// "PK\3\4" (a local header) or "PK\5\6" (the end record of an empty archive).
// Looks only at the first 4 bytes, never scans (hostile-inputs.md §1.3).
bool looks_like_zip(std::span<const std::byte> first_bytes);

}  // namespace mneme

namespace mneme::zip {

enum class Method : std::uint16_t { stored = 0, deflated = 8 };

struct Entry {
  std::string name;  // valid UTF-8, no NUL
  Method method = Method::stored;
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t local_header_offset = 0;
  // First byte after this entry's span: the next local header or the central
  // directory. The data (and any data descriptor) must end by then.
  std::uint64_t span_end = 0;
};

struct Archive {
  std::vector<Entry> entries;  // central-directory order
  std::uint64_t directory_offset = 0;
  std::uint64_t directory_size = 0;

  // nullptr when absent (names are unique, enforced at read time).
  const Entry* find(std::string_view name) const;

 private:
  friend Archive read_archive(Source& source, const Limits& limits);
  std::vector<std::uint32_t> by_name_;  // entry indices sorted by name
};

// Reads and validates the end records and the central directory. Sequential
// sources are refused (Error{unsupported}) unless the whole archive lies in
// their re-readable prefix (64 KiB), because the directory is at the end;
// when a stream's size is unknown, its end is found by walking the local
// headers forward inside that prefix (members with data descriptors, as
// PyTorch writes them, are refused there). zip.cpp's read_archive says why
// larger archives cannot stream.
Archive read_archive(Source& source, const Limits& limits = {});

// Absolute offset of an entry's data, from its local header: checks the
// signature, that the local name equals the directory name and that the data
// ends within the entry's span.
std::uint64_t data_offset(Source& source, const Entry& entry);

// CRC-32 (zlib's polynomial) of `bytes`, continuing from `crc` (0 to start).
std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> bytes);

// Error{parse} naming the member (and `what`, e.g. the tensor) when the
// CRC-32 computed over the whole member differs from the recorded one.
void check_crc(std::string_view source_name, std::string_view member, std::uint32_t expected,
               std::uint32_t computed, std::string_view what = {});

// The whole uncompressed member, for small metadata members (data.pkl,
// byteorder), its CRC-32 checked; Error{limit} when its size exceeds max_bytes.
std::vector<std::byte> read_member(Source& source, const Entry& entry, std::uint64_t max_bytes,
                                   const Limits& limits = {});

// The first min(n, uncompressed_size) bytes of a member; for a deflated
// member it inflates just enough of the stream (bounded reads). A prefix is
// not the whole member, so its CRC-32 is not checked.
std::vector<std::byte> read_member_prefix(Source& source, const Entry& entry,
                                          std::uint64_t data_start, std::size_t n,
                                          const Limits& limits = {});

}  // namespace mneme::zip
