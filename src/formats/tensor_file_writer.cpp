#include "src/formats/tensor_file_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
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
  write_all(fd_, bytes.data(), bytes.size(), offsets_[index] + offset, temp_);
}

void TensorFileWriter::commit() {
  if (fd_ < 0) {
    fail(ErrorKind::io, "writer for " + printable(path_) + " is closed");
  }
  try {
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
  if (fd_ >= 0) {
    ::close(std::exchange(fd_, -1));
  }
  if (!temp_.empty()) {
    ::unlink(std::exchange(temp_, {}).c_str());
  }
}

}  // namespace mneme
