// The upload queue: a sink that moves decoded tensors into device memory
// through a ring of staging slots, overlapped with reading and decoding.
//
//   std::unique_ptr<mneme::UploadDevice> gpu = mneme::open_device("cuda:0");
//   mneme::UploadSink sink(*gpu, {.slot_bytes = 16 << 20, .slots = 4});
//   mneme::run_pipeline(io, catalog, plan, sink, run_options);
//   std::vector<mneme::DeviceTensor> weights = sink.take();  // now the caller's
//
// The contract, chunk by chunk. Decode threads call acquire/commit
// concurrently and in any order (chunks of one tensor and of different
// tensors interleave). acquire hands out one free slot of the ring, waiting
// for one whose copy has completed when none is free: that wait is the
// backpressure into decoding and, through the budget, into reading. commit
// starts the slot's asynchronous copy to the tensor's device address plus the
// chunk's offset; the slot returns to the ring only once the device reports
// that copy complete (one completion event per slot). A chunk larger than a
// slot, and a tensor decoded whole (GPTQ, AWQ), are decoded into host memory
// of their own and go through the ring slot by slot. A tensor is ready on the
// device (UploadOptions::on_ready) once its last chunk is committed and every
// copy of it has completed; finish() waits for the last copies. A copy that
// fails ends the run with the device's error; abort() (any failure or a
// cancel) waits for what is in flight and frees the ring and every device
// buffer the sink allocated.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mneme/pipeline.hpp"

namespace mneme {

// A device memory address (a CUDA device pointer, or a host address for the
// host backend).
using DeviceAddress = std::uint64_t;

// When one copy ran on the device, in seconds since its lanes were opened.
struct CopyTime {
  double start = 0;
  double end = 0;
};

// What the sink needs of a device: staging memory it can copy from
// asynchronously, device memory, and copies that complete per lane. Lanes are
// the ring's slots: one copy in flight on each, and one completion to wait on.
// copy_async and copy_done are called from decode threads, several at once
// but never two on one lane. Errors are mneme::Error naming the device call.
class UploadDevice {
 public:
  virtual ~UploadDevice() = default;
  virtual std::string name() const = 0;  // "cuda:0", "host"
  // Host memory for the ring, page-locked where the device needs that to
  // copy asynchronously; allocated once per run.
  virtual std::span<std::byte> allocate_staging(std::uint64_t bytes) = 0;
  virtual void free_staging(std::span<std::byte> staging) noexcept = 0;
  virtual DeviceAddress allocate(std::uint64_t bytes) = 0;
  virtual void free(DeviceAddress address) noexcept = 0;
  // Prepares `count` lanes (completion events, streams); called once per run.
  virtual void open_lanes(unsigned count) = 0;
  virtual void close_lanes() noexcept = 0;
  // Starts copying `src` (inside the staging memory) to `dst` on `lane`.
  virtual void copy_async(unsigned lane, DeviceAddress dst, std::span<const std::byte> src) = 0;
  // Whether the last copy started on `lane` has completed (waiting for it
  // when `wait`): when it ran, or nothing while it is in flight. Throws the
  // copy's error.
  virtual std::optional<CopyTime> copy_done(unsigned lane, bool wait) = 0;
  // Synchronous device-to-host copy, for checks.
  virtual void copy_to_host(std::span<std::byte> dst, DeviceAddress src) = 0;
};

// "cuda" or "cuda:N" (loads libcudart at run time; Error{unsupported} when
// mneme was built without CUDA or no driver or GPU answers), or "host".
std::unique_ptr<UploadDevice> open_device(std::string_view spec);

// The host backend: device memory on the host, copies on a worker thread of
// its own. For tests and machines without a GPU; faults are injectable.
struct HostDeviceOptions {
  double copy_delay_seconds = 0;                      // each copy waits this long before it runs
  std::optional<std::uint64_t> fail_copy = {};        // this copy (0-based, in start order) fails
  std::optional<std::uint64_t> fail_allocation = {};  // this device allocation fails
};
class HostDevice final : public UploadDevice {
 public:
  explicit HostDevice(HostDeviceOptions options = {});
  ~HostDevice() override;
  std::string name() const override { return "host"; }
  std::span<std::byte> allocate_staging(std::uint64_t bytes) override;
  void free_staging(std::span<std::byte> staging) noexcept override;
  DeviceAddress allocate(std::uint64_t bytes) override;
  void free(DeviceAddress address) noexcept override;
  void open_lanes(unsigned count) override;
  void close_lanes() noexcept override;
  void copy_async(unsigned lane, DeviceAddress dst, std::span<const std::byte> src) override;
  std::optional<CopyTime> copy_done(unsigned lane, bool wait) override;
  void copy_to_host(std::span<std::byte> dst, DeviceAddress src) override;

  // What is still allocated, and how many copies were started: for checks
  // that a run leaves nothing behind.
  std::uint64_t live_allocations() const;
  std::uint64_t live_staging_bytes() const;
  std::uint64_t copies_started() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One tensor in device memory.
struct DeviceTensor {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  DeviceAddress address = 0;
  std::uint64_t bytes = 0;
  bool owned = false;  // allocated by the sink (free with UploadDevice::free)
};

struct UploadOptions {
  // 16 MiB x 4: the copies reach 0.98 of one pinned copy's rate on an H200,
  // and more slots did not load faster (docs/performance.md).
  std::uint64_t slot_bytes = 16ull << 20;  // at least 64 KiB
  unsigned slots = 4;                      // at least 1
  // Where each tensor goes: an address with room for tensor.bytes (in the
  // caller's arena, say). Unset: the device allocates each tensor, and the
  // sink frees them unless take() was called after a successful run.
  std::function<DeviceAddress(const OutputTensor& tensor)> place = {};
  // A tensor is complete on the device. Called from a decode thread (or from
  // finish()), once per tensor, never two at once.
  std::function<void(const DeviceTensor& tensor)> on_ready = {};
};

struct UploadStats {
  std::uint64_t bytes = 0;       // copied to the device
  std::uint64_t copies = 0;      // slot copies started
  double busy_seconds = 0;       // device time with at least one copy running
  double wait_seconds = 0;       // decode threads waiting for a free slot, summed
  std::uint64_t ring_bytes = 0;  // staging slots, allocated once
  unsigned slots = 0;
};

class UploadSink : public Sink {
 public:
  explicit UploadSink(UploadDevice& device, UploadOptions options = {});
  ~UploadSink() override;
  std::uint64_t held_bytes(const Plan& plan, unsigned threads) const override;
  void begin(const Catalog& catalog, const Plan& plan) override;
  std::span<std::byte> acquire(const Chunk& chunk) override;
  void commit(const Chunk& chunk, std::span<std::byte> out) override;
  void tensor_done(std::size_t output) override;
  void finish() override;
  void abort() noexcept override;

  // After a successful run: every tensor, in plan order; device memory the
  // sink allocated is now the caller's.
  std::vector<DeviceTensor> take();
  UploadStats stats() const;

 private:
  struct State;
  unsigned take_slot();
  void start_copy(unsigned lane, std::uint32_t output, DeviceAddress dst, std::uint64_t bytes);
  void complete(unsigned lane, const CopyTime& time, std::vector<std::uint32_t>& ready);
  void reap(std::vector<std::uint32_t>& ready);
  void announce(const std::vector<std::uint32_t>& ready);
  DeviceTensor device_tensor(std::uint32_t output) const;

  UploadDevice& device_;
  UploadOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace mneme
