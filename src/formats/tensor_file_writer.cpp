#include "src/formats/tensor_file_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "mneme/error.hpp"

namespace mneme {
namespace {

[[noreturn]] void io_fail(const std::string& what, const std::string& path) {
  fail(ErrorKind::io, what + " " + printable(path) + ": " + std::strerror(errno));
}

void write_all(int fd, const std::byte* data, std::size_t size, std::uint64_t offset, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      io_fail("cannot write", path);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

}  // namespace

TensorFileWriter::TensorFileWriter(std::string path, std::span<const std::byte> header,
                                   std::vector<std::uint64_t> offsets, std::vector<std::uint64_t> sizes,
                                   std::uint64_t file_size)
    : path_(std::move(path)),
      partial_(path_ + ".partial"),
      offsets_(std::move(offsets)),
      sizes_(std::move(sizes)),
      file_size_(file_size) {
  fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) io_fail("cannot create", partial_);
  if (::ftruncate(fd_, static_cast<off_t>(file_size_)) != 0) {
    const int e = errno;
    discard();
    errno = e;
    io_fail("cannot size", partial_);
  }
  write_all(fd_, header.data(), header.size(), 0, partial_);
}

TensorFileWriter::~TensorFileWriter() { discard(); }

void TensorFileWriter::write(std::size_t index, std::uint64_t offset, std::span<const std::byte> bytes) {
  if (index >= sizes_.size() || offset > sizes_[index] || bytes.size() > sizes_[index] - offset) {
    fail(ErrorKind::io, "write outside tensor bounds in " + printable(partial_));
  }
  write_all(fd_, bytes.data(), bytes.size(), offsets_[index] + offset, partial_);
}

void TensorFileWriter::commit() {
  if (fd_ < 0) fail(ErrorKind::io, "writer for " + printable(path_) + " is closed");
  if (::close(std::exchange(fd_, -1)) != 0) io_fail("cannot close", partial_);
  if (std::rename(partial_.c_str(), path_.c_str()) != 0) io_fail("cannot rename into", path_);
}

void TensorFileWriter::discard() noexcept {
  if (fd_ >= 0) {
    ::close(std::exchange(fd_, -1));
    ::unlink(partial_.c_str());
  }
}

}  // namespace mneme
