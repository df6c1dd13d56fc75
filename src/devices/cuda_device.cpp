// The CUDA backend of the upload queue. libcudart is loaded at run time
// ($MNEME_CUDART, then the sonames of CUDA 13, 12 and 11, then
// $CUDA_HOME/lib64): the build needs only the toolkit's headers, and a
// machine without CUDA gets Error{unsupported}, never a crash. The ring is
// one cudaHostAlloc; copies are cudaMemcpyAsync host-to-device on a few
// non-blocking streams (lane i on stream i mod 4), bracketed by two timing
// events per lane: the second is the lane's completion, and both place the
// copy on the device's clock (relative to an origin event recorded when the
// lanes open).
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <mutex>

#include "mneme/error.hpp"
#include "src/core/dynamic_library.hpp"
#include "src/devices/cuda_device.hpp"

namespace mneme::devices {
namespace {

struct CudaRuntime {
  decltype(&::cudaGetDeviceCount) get_device_count = nullptr;
  decltype(&::cudaSetDevice) set_device = nullptr;
  decltype(&::cudaGetErrorName) error_name = nullptr;
  decltype(&::cudaGetErrorString) error_string = nullptr;
  decltype(&::cudaHostAlloc) host_alloc = nullptr;
  decltype(&::cudaFreeHost) free_host = nullptr;
  decltype(&::cudaMalloc) malloc = nullptr;
  decltype(&::cudaFree) free = nullptr;
  decltype(&::cudaStreamCreateWithFlags) stream_create = nullptr;
  decltype(&::cudaStreamSynchronize) stream_synchronize = nullptr;
  decltype(&::cudaStreamDestroy) stream_destroy = nullptr;
  decltype(&::cudaEventCreate) event_create = nullptr;
  decltype(&::cudaEventRecord) event_record = nullptr;
  decltype(&::cudaEventQuery) event_query = nullptr;
  decltype(&::cudaEventSynchronize) event_synchronize = nullptr;
  decltype(&::cudaEventElapsedTime) event_elapsed = nullptr;
  decltype(&::cudaEventDestroy) event_destroy = nullptr;
  decltype(&::cudaMemcpyAsync) memcpy_async = nullptr;
  decltype(&::cudaMemcpy) memcpy = nullptr;

  static const CudaRuntime& get() {
    static const CudaRuntime runtime = load();  // a failed load is retried next time
    return runtime;
  }

  static CudaRuntime load() {
    const char* home = std::getenv("CUDA_HOME");
    const std::string under_home = home ? std::string(home) + "/lib64/libcudart.so" : "";
    const core::DynamicLibrary lib = core::DynamicLibrary::open(
        {std::getenv("MNEME_CUDART"), "libcudart.so", "libcudart.so.13", "libcudart.so.12",
         "libcudart.so.11.0", under_home.c_str()},
        "CUDA devices need the CUDA runtime (libcudart; $MNEME_CUDART names it)");
    CudaRuntime r;
    lib.bind(r.get_device_count, "cudaGetDeviceCount");
    lib.bind(r.set_device, "cudaSetDevice");
    lib.bind(r.error_name, "cudaGetErrorName");
    lib.bind(r.error_string, "cudaGetErrorString");
    lib.bind(r.host_alloc, "cudaHostAlloc");
    lib.bind(r.free_host, "cudaFreeHost");
    lib.bind(r.malloc, "cudaMalloc");
    lib.bind(r.free, "cudaFree");
    lib.bind(r.stream_create, "cudaStreamCreateWithFlags");
    lib.bind(r.stream_synchronize, "cudaStreamSynchronize");
    lib.bind(r.stream_destroy, "cudaStreamDestroy");
    lib.bind(r.event_create, "cudaEventCreate");
    lib.bind(r.event_record, "cudaEventRecord");
    lib.bind(r.event_query, "cudaEventQuery");
    lib.bind(r.event_synchronize, "cudaEventSynchronize");
    lib.bind(r.event_elapsed, "cudaEventElapsedTime");
    lib.bind(r.event_destroy, "cudaEventDestroy");
    lib.bind(r.memcpy_async, "cudaMemcpyAsync");
    lib.bind(r.memcpy, "cudaMemcpy");
    return r;
  }

  // "cudaMalloc: cudaErrorMemoryAllocation (2): out of memory"
  std::string describe(const char* call, cudaError_t e) const {
    return std::string(call) + ": " + error_name(e) + " (" + std::to_string(static_cast<int>(e)) +
           "): " + error_string(e);
  }

  void check(cudaError_t e, const char* call, ErrorKind kind = ErrorKind::io) const {
    if (e != cudaSuccess) {
      fail(kind, "CUDA " + describe(call, e));
    }
  }
};

// One stream or four made no difference on an H200 (docs/perf-experiments.md);
// a few let copies of different slots queue independently.
constexpr unsigned kStreams = 4;

class CudaDevice final : public UploadDevice {
 public:
  CudaDevice(const CudaRuntime& rt, int index) : rt_(rt), index_(index) {}
  ~CudaDevice() override { close_lanes(); }

  std::string name() const override { return "cuda:" + std::to_string(index_); }

  std::span<std::byte> allocate_staging(std::uint64_t bytes) override {
    use();
    void* p = nullptr;
    rt_.check(rt_.host_alloc(&p, bytes, cudaHostAllocDefault), "cudaHostAlloc", ErrorKind::limit);
    return {static_cast<std::byte*>(p), bytes};
  }

  void free_staging(std::span<std::byte> staging) noexcept override {
    (void)rt_.free_host(staging.data());
  }

  DeviceAddress allocate(std::uint64_t bytes) override {
    use();
    void* p = nullptr;
    rt_.check(rt_.malloc(&p, bytes), "cudaMalloc", ErrorKind::limit);
    return reinterpret_cast<DeviceAddress>(p);
  }

  void free(DeviceAddress address) noexcept override {
    (void)rt_.set_device(index_);
    (void)rt_.free(reinterpret_cast<void*>(address));
  }

  void open_lanes(unsigned count) override {
    close_lanes();
    use();
    streams_.resize(std::min(count, kStreams));
    for (cudaStream_t& s : streams_) {
      rt_.check(rt_.stream_create(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    }
    starts_.resize(count);
    ends_.resize(count);
    for (unsigned i = 0; i < count; ++i) {
      rt_.check(rt_.event_create(&starts_[i]), "cudaEventCreate");
      rt_.check(rt_.event_create(&ends_[i]), "cudaEventCreate");
    }
    rt_.check(rt_.event_create(&origin_), "cudaEventCreate");
    rt_.check(rt_.event_record(origin_, streams_.front()), "cudaEventRecord");
    rt_.check(rt_.event_synchronize(origin_), "cudaEventSynchronize");
  }

  void close_lanes() noexcept override {
    if (streams_.empty()) {
      return;
    }
    (void)rt_.set_device(index_);
    for (cudaStream_t s : streams_) {
      (void)rt_.stream_synchronize(s);
    }
    for (std::vector<cudaEvent_t>* events : {&starts_, &ends_}) {
      for (cudaEvent_t e : *events) {
        (void)rt_.event_destroy(e);
      }
      events->clear();
    }
    (void)rt_.event_destroy(origin_);
    for (cudaStream_t s : streams_) {
      (void)rt_.stream_destroy(s);
    }
    streams_.clear();
  }

  void copy_async(unsigned lane, DeviceAddress dst, std::span<const std::byte> src) override {
    use();
    cudaStream_t s = streams_.at(lane % streams_.size());
    rt_.check(rt_.event_record(starts_.at(lane), s), "cudaEventRecord");
    rt_.check(rt_.memcpy_async(reinterpret_cast<void*>(dst), src.data(), src.size(),
                               cudaMemcpyHostToDevice, s),
              "cudaMemcpyAsync");
    rt_.check(rt_.event_record(ends_.at(lane), s), "cudaEventRecord");
  }

  std::optional<CopyTime> copy_done(unsigned lane, bool wait) override {
    use();
    const cudaError_t e =
        wait ? rt_.event_synchronize(ends_.at(lane)) : rt_.event_query(ends_.at(lane));
    if (e == cudaErrorNotReady) {
      return std::nullopt;
    }
    rt_.check(e, wait ? "cudaEventSynchronize" : "cudaEventQuery");
    float start_ms = 0;
    float end_ms = 0;
    rt_.check(rt_.event_elapsed(&start_ms, origin_, starts_[lane]), "cudaEventElapsedTime");
    rt_.check(rt_.event_elapsed(&end_ms, origin_, ends_[lane]), "cudaEventElapsedTime");
    return CopyTime{start_ms * 1e-3, end_ms * 1e-3};
  }

  void copy_to_host(std::span<std::byte> dst, DeviceAddress src) override {
    use();
    rt_.check(rt_.memcpy(dst.data(), reinterpret_cast<const void*>(src), dst.size(),
                         cudaMemcpyDeviceToHost),
              "cudaMemcpy");
  }

 private:
  // The runtime's current device is per thread; decode threads come and go.
  void use() const { rt_.check(rt_.set_device(index_), "cudaSetDevice"); }

  const CudaRuntime& rt_;
  int index_;
  std::vector<cudaStream_t> streams_;
  std::vector<cudaEvent_t> starts_;
  std::vector<cudaEvent_t> ends_;
  cudaEvent_t origin_ = nullptr;
};

}  // namespace

std::unique_ptr<UploadDevice> open_cuda_device(int index) {
  const CudaRuntime& rt = CudaRuntime::get();
  int count = 0;
  const cudaError_t e = rt.get_device_count(&count);
  if (e != cudaSuccess) {
    fail(ErrorKind::unsupported, "no usable CUDA device: " + rt.describe("cudaGetDeviceCount", e));
  }
  if (index >= count) {
    fail(ErrorKind::unsupported,
         "no CUDA device " + std::to_string(index) + " (" + std::to_string(count) + " found)");
  }
  return std::make_unique<CudaDevice>(rt, index);
}

}  // namespace mneme::devices
