#include "src/formats/tensor_file_writer.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "mneme/error.hpp"

namespace mneme {
namespace {

[[noreturn]] void io_fail(const std::string& what, const std::string& path, int err = errno) {
  fail(ErrorKind::io, what + " " + printable(path) + ": " + std::strerror(err));
}

void write_all(int fd, const std::byte* data, std::size_t size, std::uint64_t offset,
               const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      io_fail("cannot write", path);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

// One write around the page cache; false where the filesystem refused it for
// its alignment (EINVAL): the caller writes the bytes through the cache.
bool write_direct(int fd, const std::byte* data, std::size_t size, std::uint64_t offset,
                  const std::string& path) {
  ssize_t n = 0;
  do {
    n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EINVAL) {
      return false;
    }
    io_fail("cannot write", path);
  }
  const auto done = static_cast<std::size_t>(n);
  write_all(fd, data + done, size - done, offset + done, path);  // after a short write
  return true;
}

// A second descriptor of the temporary that writes around the page cache,
// preallocated (no block allocation during the writes, and a full disk is
// an error now rather than at the end); -1 on tmpfs (its pages are the
// file: nothing to go around) or where the filesystem refuses O_DIRECT.
int open_direct(int fd, const std::string& path, std::uint64_t size) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0 || fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) {
    return -1;
  }
  // Opened by name, so it must be the same file: a name swapped for a link
  // or another file in between (a shared directory) gets no direct writes.
  const int direct = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
  if (direct < 0) {
    return -1;
  }
  struct stat ours {};
  struct stat again {};
  if (::fstat(fd, &ours) != 0 || ::fstat(direct, &again) != 0 || ours.st_dev != again.st_dev ||
      ours.st_ino != again.st_ino) {
    ::close(direct);
    return -1;
  }
  if (size > 0 && ::fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    if (err == ENOSPC) {
      ::close(direct);
      io_fail("no room for", path, err);
    }
    // EOPNOTSUPP and the like: the file stays sparse, which is fine.
  }
  return direct;
}

// The mode a new file gets from open(..., 0666): what the umask allows.
mode_t new_file_mode() {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

}  // namespace

TensorFileWriter::TensorFileWriter(std::string path, std::span<const std::byte> header,
                                   std::vector<std::uint64_t> offsets,
                                   std::vector<std::uint64_t> sizes, std::uint64_t file_size,
                                   const OutputPolicy& policy)
    : path_(std::move(path)),
      target_(check_output_path(path_, policy)),
      overwrite_(policy.overwrite),
      offsets_(std::move(offsets)),
      sizes_(std::move(sizes)),
      file_size_(file_size) {
  const std::string dir = directory_of(target_);
  std::string name = target_.substr(target_.rfind('/') + 1);
  std::string temp = dir + "/." + name + ".mneme-XXXXXX";
  fd_ = ::mkostemp(temp.data(), O_CLOEXEC);  // O_CREAT | O_EXCL: a name no other run has
  if (fd_ < 0) {
    io_fail("cannot create a temporary file in", dir);
  }
  temp_ = std::move(temp);
  // Keep the mode of the file being replaced, else what a new file would get.
  struct stat st {};
  const mode_t mode = ::stat(target_.c_str(), &st) == 0 ? (st.st_mode & 07777) : new_file_mode();
  try {
    if (::fchmod(fd_, mode) != 0) {
      io_fail("cannot set the mode of", temp_);
    }
    if (::ftruncate(fd_, static_cast<off_t>(file_size_)) != 0) {
      io_fail("cannot size", temp_);
    }
    write_all(fd_, header.data(), header.size(), 0, temp_);
    direct_fd_ = open_direct(fd_, temp_, file_size_);
  } catch (...) {
    discard();
    throw;
  }
}

TensorFileWriter::~TensorFileWriter() {
  discard();
}

void TensorFileWriter::write(std::size_t index, std::uint64_t offset,
                             std::span<const std::byte> bytes) {
  if (index >= sizes_.size() || offset > sizes_[index] || bytes.size() > sizes_[index] - offset) {
    fail(ErrorKind::io, "write outside tensor bounds in " + printable(temp_));
  }
  const std::uint64_t at = offsets_[index] + offset;
  const auto address = reinterpret_cast<std::uintptr_t>(bytes.data());
  if (direct_fd_ >= 0 && address % kDirectAlign == at % kDirectAlign) {
    // The whole pages inside [at, at + size) go around the page cache; the
    // partial pages at either end are shared with neighbouring writes and
    // go through it (pages written both ways could lose one of them).
    const std::uint64_t first = (at + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    const std::uint64_t last = (at + bytes.size()) / kDirectAlign * kDirectAlign;
    if (first < last) {
      const std::size_t head = first - at;
      const std::size_t whole = last - first;
      write_all(fd_, bytes.data(), head, at, temp_);
      if (!write_direct(direct_fd_, bytes.data() + head, whole, first, temp_)) {
        write_all(fd_, bytes.data() + head, whole, first, temp_);
      }
      write_all(fd_, bytes.data() + head + whole, at + bytes.size() - last, last, temp_);
      return;
    }
  }
  write_all(fd_, bytes.data(), bytes.size(), at, temp_);
}

void TensorFileWriter::commit() {
  if (fd_ < 0) {
    fail(ErrorKind::io, "writer for " + printable(path_) + " is closed");
  }
  try {
    if (direct_fd_ >= 0 && ::close(std::exchange(direct_fd_, -1)) != 0) {
      io_fail("cannot close", temp_);
    }
    if (::fsync(fd_) != 0) {
      io_fail("cannot sync", temp_);
    }
    if (::close(std::exchange(fd_, -1)) != 0) {
      io_fail("cannot close", temp_);
    }
    // Checked again at the last moment: the destination may have changed
    // since the run began; never rename over anything but a regular file.
    OutputPolicy last;
    last.overwrite = overwrite_;
    if (check_output_path(target_, last) != target_) {
      fail(ErrorKind::io, "output " + printable(path_) + " became a symlink during the run");
    }
    const int flags = overwrite_ ? 0 : RENAME_NOREPLACE;  // atomic refusal of a file that appeared
    if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), flags) != 0) {
      io_fail("cannot rename into", path_);
    }
  } catch (...) {
    discard();
    throw;
  }
  temp_.clear();
  // The rename is durable once the directory entry is.
  const int dir = ::open(directory_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    const int rc = ::fsync(dir);
    const int err = errno;
    ::close(dir);
    if (rc != 0 && err != EINVAL) {
      io_fail("cannot sync the directory of", path_, err);
    }
  }
}

void TensorFileWriter::discard() noexcept {
  if (direct_fd_ >= 0) {
    ::close(std::exchange(direct_fd_, -1));
  }
  if (fd_ >= 0) {
    ::close(std::exchange(fd_, -1));
  }
  if (!temp_.empty()) {
    ::unlink(std::exchange(temp_, {}).c_str());
  }
}

}  // namespace mneme
