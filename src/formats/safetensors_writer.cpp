#include "src/formats/safetensors_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

std::string quoted(std::string_view s) { return boost::json::serialize(boost::json::string(s)); }

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

std::string safetensors_header(const std::vector<SafetensorsEntry>& entries, const Metadata& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (std::size_t i = 0; i < metadata.size(); ++i) {
      if (i) h += ',';
      h += quoted(metadata[i].first) + ':' + quoted(metadata[i].second);
    }
    h += '}';
  }
  std::uint64_t offset = 0;
  for (const auto& e : entries) {
    if (h.size() > 1) h += ',';
    h += quoted(e.name) + ":{\"dtype\":\"" + std::string(dtype_name(e.dtype)) + "\",\"shape\":[";
    for (std::size_t d = 0; d < e.shape.size(); ++d) {
      if (d) h += ',';
      h += std::to_string(e.shape[d]);
    }
    const std::uint64_t end = checked_add(offset, e.bytes, "safetensors output size");
    h += "],\"data_offsets\":[" + std::to_string(offset) + ',' + std::to_string(end) + "]}";
    offset = end;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

SafetensorsWriter::SafetensorsWriter(std::string path, const std::vector<SafetensorsEntry>& entries,
                                     const Metadata& metadata)
    : path_(std::move(path)), partial_(path_ + ".partial") {
  const std::string header = safetensors_header(entries, metadata);
  std::uint64_t offset = 8 + header.size();
  offsets_.reserve(entries.size());
  for (const auto& e : entries) {
    offsets_.push_back(offset);
    sizes_.push_back(e.bytes);
    offset = checked_add(offset, e.bytes, "safetensors output size");
  }
  file_size_ = offset;

  fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) io_fail("cannot create", partial_);
  if (::ftruncate(fd_, static_cast<off_t>(file_size_)) != 0) {
    discard();
    io_fail("cannot size", partial_);
  }
  std::byte prefix[8];
  std::uint64_t n = header.size();
  for (auto& b : prefix) {
    b = static_cast<std::byte>(n & 0xFF);
    n >>= 8;
  }
  write_all(fd_, prefix, 8, 0, partial_);
  write_all(fd_, reinterpret_cast<const std::byte*>(header.data()), header.size(), 8, partial_);
}

SafetensorsWriter::~SafetensorsWriter() { discard(); }

void SafetensorsWriter::write(std::size_t index, std::uint64_t offset, std::span<const std::byte> bytes) {
  if (index >= sizes_.size() || offset > sizes_[index] || bytes.size() > sizes_[index] - offset) {
    fail(ErrorKind::io, "write outside tensor bounds in " + printable(partial_));
  }
  write_all(fd_, bytes.data(), bytes.size(), offsets_[index] + offset, partial_);
}

void SafetensorsWriter::commit() {
  if (fd_ < 0) fail(ErrorKind::io, "writer for " + printable(path_) + " is closed");
  if (::close(std::exchange(fd_, -1)) != 0) io_fail("cannot close", partial_);
  if (std::rename(partial_.c_str(), path_.c_str()) != 0) io_fail("cannot rename into", path_);
}

void SafetensorsWriter::discard() noexcept {
  if (fd_ >= 0) {
    ::close(std::exchange(fd_, -1));
    ::unlink(partial_.c_str());
  }
}

}  // namespace mneme
