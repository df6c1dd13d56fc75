// The host backend of the upload queue: "device" memory on the host, filled
// with a pattern so that a byte never copied shows; copies run in start order
// on a worker thread of their own, after an optional delay, so a slot reused
// before its copy ran would deliver the wrong bytes.
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "mneme/error.hpp"
#include "mneme/upload.hpp"

namespace mneme {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::byte kNeverWritten{0xA5};
}  // namespace

struct HostDevice::Impl {
  struct Lane {
    std::uint64_t started = 0;
    std::uint64_t finished = 0;
    CopyTime last;
    std::exception_ptr error;
  };
  struct Copy {
    unsigned lane;
    std::uint64_t index;  // in start order
    DeviceAddress dst;
    std::span<const std::byte> src;
  };

  HostDeviceOptions options;
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::vector<Lane> lanes;
  std::deque<Copy> queue;
  std::unordered_map<DeviceAddress, std::unique_ptr<std::byte[]>> memory;
  std::uint64_t staging_bytes = 0;
  std::uint64_t copies = 0;
  std::uint64_t allocations = 0;
  Clock::time_point opened = Clock::now();
  bool stopping = false;
  std::thread worker;

  double since_open() const { return std::chrono::duration<double>(Clock::now() - opened).count(); }

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      changed.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) {
        return;
      }
      const Copy c = queue.front();
      queue.pop_front();
      lock.unlock();
      if (options.copy_delay_seconds > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(options.copy_delay_seconds));
      }
      const double start = since_open();
      const bool fails = options.fail_copy && *options.fail_copy == c.index;
      if (!fails) {
        std::memcpy(reinterpret_cast<std::byte*>(c.dst), c.src.data(), c.src.size());
      }
      lock.lock();
      Lane& lane = lanes[c.lane];
      lane.last = CopyTime{start, since_open()};
      if (fails) {
        lane.error = std::make_exception_ptr(Error(
            ErrorKind::io, "host device: copy " + std::to_string(c.index) + " failed (injected)"));
      }
      ++lane.finished;
      changed.notify_all();
    }
  }
};

HostDevice::HostDevice(HostDeviceOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->worker = std::thread([this] { impl_->run(); });
}

HostDevice::~HostDevice() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->changed.notify_all();
  impl_->worker.join();
}

std::span<std::byte> HostDevice::allocate_staging(std::uint64_t bytes) {
  auto* p = static_cast<std::byte*>(::operator new(bytes));
  std::lock_guard lock(impl_->mutex);
  impl_->staging_bytes += bytes;
  return {p, bytes};
}

void HostDevice::free_staging(std::span<std::byte> staging) noexcept {
  ::operator delete(staging.data());
  std::lock_guard lock(impl_->mutex);
  impl_->staging_bytes -= staging.size();
}

DeviceAddress HostDevice::allocate(std::uint64_t bytes) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->options.fail_allocation && *impl_->options.fail_allocation == impl_->allocations++) {
    fail(ErrorKind::limit,
         "host device: allocation of " + std::to_string(bytes) + " bytes failed (injected)");
  }
  auto block = std::make_unique_for_overwrite<std::byte[]>(std::max<std::uint64_t>(bytes, 1));
  std::memset(block.get(), static_cast<int>(kNeverWritten), bytes);
  const auto address = reinterpret_cast<DeviceAddress>(block.get());
  impl_->memory.emplace(address, std::move(block));
  return address;
}

void HostDevice::free(DeviceAddress address) noexcept {
  std::lock_guard lock(impl_->mutex);
  impl_->memory.erase(address);
}

void HostDevice::open_lanes(unsigned count) {
  std::lock_guard lock(impl_->mutex);
  impl_->lanes.assign(count, {});
  impl_->opened = Clock::now();
}

void HostDevice::close_lanes() noexcept {
  std::unique_lock lock(impl_->mutex);
  impl_->changed.wait(lock, [&] { return impl_->queue.empty(); });
  for (const Impl::Lane& lane : impl_->lanes) {
    impl_->changed.wait(lock, [&] { return lane.finished == lane.started; });
  }
  impl_->lanes.clear();
}

void HostDevice::copy_async(unsigned lane, DeviceAddress dst, std::span<const std::byte> src) {
  std::lock_guard lock(impl_->mutex);
  Impl::Lane& l = impl_->lanes.at(lane);
  if (l.finished != l.started) {
    fail(ErrorKind::io, "host device: lane " + std::to_string(lane) + " is still copying");
  }
  ++l.started;
  l.error = nullptr;
  impl_->queue.push_back(Impl::Copy{lane, impl_->copies++, dst, src});
  impl_->changed.notify_all();
}

std::optional<CopyTime> HostDevice::copy_done(unsigned lane, bool wait) {
  std::unique_lock lock(impl_->mutex);
  Impl::Lane& l = impl_->lanes.at(lane);
  if (wait) {
    impl_->changed.wait(lock, [&] { return l.finished == l.started; });
  } else if (l.finished != l.started) {
    return std::nullopt;
  }
  if (l.error) {
    std::rethrow_exception(std::exchange(l.error, nullptr));
  }
  return l.last;
}

void HostDevice::copy_to_host(std::span<std::byte> dst, DeviceAddress src) {
  std::memcpy(dst.data(), reinterpret_cast<const std::byte*>(src), dst.size());
}

std::uint64_t HostDevice::live_allocations() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->memory.size();
}

std::uint64_t HostDevice::live_staging_bytes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->staging_bytes;
}

std::uint64_t HostDevice::copies_started() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->copies;
}

}  // namespace mneme
