#include "pipeline/buffers.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "mneme/error.hpp"

namespace mneme::pipeline {

HugeRegion::HugeRegion(std::size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fail(ErrorKind::limit, "cannot map " + std::to_string(bytes) +
                               " bytes of buffer memory: " + std::strerror(errno));
  }
  ::madvise(p, bytes, MADV_HUGEPAGE);  // advisory: fine if THP is off
  data_ = static_cast<std::byte*>(p);
}

HugeRegion::HugeRegion(HugeRegion&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

HugeRegion& HugeRegion::operator=(HugeRegion&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

HugeRegion::~HugeRegion() {
  if (data_) ::munmap(data_, size_);
}

std::span<std::byte> StagingPool::acquire(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  if (bytes > buffer_bytes_) {
    // A whole assembled tensor: its own mapping, returned to the system on
    // release, so the recycled buffers stay chunk-sized.
    oversized_.emplace_back(bytes);
    return {oversized_.back().data(), bytes};
  }
  if (free_.empty()) {
    regions_.emplace_back(buffer_bytes_ == 0 ? 1 : buffer_bytes_);
    free_.push_back(regions_.back().data());
  }
  std::byte* p = free_.back();
  free_.pop_back();
  return {p, bytes};
}

void StagingPool::release(std::byte* data) {
  std::lock_guard lock(mutex_);
  for (auto it = oversized_.begin(); it != oversized_.end(); ++it) {
    if (it->data() == data) {
      oversized_.erase(it);
      return;
    }
  }
  free_.push_back(data);
}

}  // namespace mneme::pipeline
