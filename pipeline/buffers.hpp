// Memory the pipeline allocates once and recycles (design guide: first touch
// of fresh pages costs 12-16 us per 4 KiB; reused huge pages almost nothing).
#pragma once

#include <cstddef>
#include <list>
#include <mutex>
#include <span>
#include <vector>

namespace mneme::pipeline {

// An anonymous mapping asking for transparent huge pages; unmapped on destruction.
class HugeRegion {
 public:
  HugeRegion() = default;
  explicit HugeRegion(std::size_t bytes);
  HugeRegion(HugeRegion&& o) noexcept;
  HugeRegion& operator=(HugeRegion&& o) noexcept;
  HugeRegion(const HugeRegion&) = delete;
  HugeRegion& operator=(const HugeRegion&) = delete;
  ~HugeRegion();

  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// Fixed-size output staging buffers for sinks, handed out to decode threads.
// Grows to as many buffers as there are concurrent decoders (each allocated
// once) and recycles them for the rest of the run. A request above the
// buffer size (a whole assembled tensor) gets a mapping of its own, unmapped
// when released.
class StagingPool {
 public:
  explicit StagingPool(std::size_t buffer_bytes) : buffer_bytes_(buffer_bytes) {}
  std::span<std::byte> acquire(std::size_t bytes);
  void release(std::byte* data);

 private:
  std::size_t buffer_bytes_;
  std::mutex mutex_;
  std::vector<HugeRegion> regions_;
  std::vector<std::byte*> free_;
  std::list<HugeRegion> oversized_;
};

}  // namespace mneme::pipeline
