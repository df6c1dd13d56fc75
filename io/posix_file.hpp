// POSIX file helpers shared by the file sources: an owned descriptor, opening
// with a useful error, and the pread loop that every blocking file read uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mneme/error.hpp"
#include "mneme/source.hpp"

namespace mneme::detail {

// Owns one file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// An open file and what fstat said about it.
struct OpenedFile {
  UniqueFd fd;
  std::uint64_t size = 0;      // meaningful when random_access
  bool random_access = false;  // regular file or block device: pread works
  FileId id;                   // meaningful when random_access
};

// Opens path read-only (O_CLOEXEC). A missing or unreadable path or a
// directory throws Error{io} naming `name` (the spec the user gave).
OpenedFile open_file(const std::string& path, const std::string& name);

// The same for a file mneme found rather than the user named: opened without
// blocking, and anything but a regular file is Error{io} (a FIFO's open()
// would wait for a writer forever).
OpenedFile open_regular_file(const std::string& path, const std::string& name);

// Describes an already open descriptor the same way (used for stdin).
OpenedFile describe_fd(UniqueFd fd, const std::string& name);

// Throws Error{io, "<name>: <what>: <strerror(err)>"}.
[[noreturn]] void fail_errno(const std::string& name, std::string_view what, int err);

// Throws Error{io} unless [offset, offset + len) lies inside [0, size).
void check_range(const std::string& name, std::uint64_t size, std::uint64_t offset,
                 std::size_t len);

// Reads exactly dst.size() bytes at offset, retrying short reads and EINTR.
// End of file inside the range (a file truncated after it was opened) throws
// Error{io}.
void pread_full(int fd, const std::string& name, std::uint64_t offset, std::span<std::byte> dst);

// Largest single read request: keeps every request well below the kernel's
// per-call cap (MAX_RW_COUNT, just under 2 GiB).
inline constexpr std::size_t kMaxReadChunk = std::size_t{1} << 30;

}  // namespace mneme::detail
