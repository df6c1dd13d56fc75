#include "io/posix_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mneme::detail {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

void fail_errno(const std::string& name, std::string_view what, int err) {
  fail(ErrorKind::io, printable(name) + ": " + std::string(what) + ": " + std::strerror(err));
}

OpenedFile open_file(const std::string& path, const std::string& name) {
  if (path.empty()) fail(ErrorKind::io, "cannot open an empty path");
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail_errno(name, "cannot open", errno);
  return describe_fd(UniqueFd(fd), name);
}

OpenedFile open_regular_file(const std::string& path, const std::string& name) {
  if (path.empty()) fail(ErrorKind::io, "cannot open an empty path");
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail_errno(name, "cannot open", errno);
  UniqueFd owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno(name, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    fail(ErrorKind::io, printable(name) + ": is " + what +
                            "; a shard or split must be a regular file (name a stream on the "
                            "command line to read it as one)");
  }
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    fail_errno(name, "cannot clear O_NONBLOCK", errno);
  }
  return describe_fd(std::move(owned), name);
}

OpenedFile describe_fd(UniqueFd fd, const std::string& name) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_errno(name, "cannot stat", errno);
  OpenedFile f;
  if (S_ISDIR(st.st_mode)) fail(ErrorKind::io, printable(name) + ": is a directory");
  if (S_ISREG(st.st_mode)) {
    f.size = static_cast<std::uint64_t>(st.st_size);
    f.random_access = true;
  } else if (S_ISBLK(st.st_mode)) {
    // st_size is 0 for block devices; the end offset is their size.
    const off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) fail_errno(name, "cannot find the size of the block device", errno);
    f.size = static_cast<std::uint64_t>(end);
    f.random_access = true;
  }
  f.id = {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
  f.fd = std::move(fd);
  return f;
}

void check_range(const std::string& name, std::uint64_t size, std::uint64_t offset,
                 std::size_t len) {
  std::uint64_t end;
  if (__builtin_add_overflow(offset, static_cast<std::uint64_t>(len), &end) || end > size) {
    fail(ErrorKind::io, printable(name) + ": read of " + std::to_string(len) + " bytes at offset " +
                            std::to_string(offset) + " is past the end (size " +
                            std::to_string(size) + " bytes)");
  }
}

void pread_full(int fd, const std::string& name, std::uint64_t offset, std::span<std::byte> dst) {
  while (!dst.empty()) {
    const std::size_t want = std::min(dst.size(), kMaxReadChunk);
    const ssize_t n = ::pread(fd, dst.data(), want, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno(name, "read at offset " + std::to_string(offset) + " failed", errno);
    }
    if (n == 0) {
      fail(ErrorKind::io, printable(name) + ": unexpected end of file at offset " +
                              std::to_string(offset) + " (" + std::to_string(dst.size()) +
                              " bytes still wanted; truncated while open?)");
    }
    dst = dst.subspan(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

}  // namespace mneme::detail
