// The upload queue against its floors, on one device (scripts/gpu-check.sh):
//
//   upload_check DEVICE MODEL_DIR [--to bf16|f16|f32] [--checksums-only]
//
// 1. checksums: the model loaded into memory against the device's copy read
//    back, tensor by tensor (CRC-32 of each);
// 2. floors: reading the model's files from the page cache (pread, 8 MiB
//    blocks, one thread), and one copy of all its bytes from one pinned
//    buffer (UploadDevice::copy_async of the whole, timed by the device);
// 3. the ring alone, for slot sizes 4/16/64 MiB x 2/4/8 slots: slot-sized
//    copies from the staging ring, a slot reused once its copy completed,
//    against the one pinned copy;
// 4. loads into the device behind the pipeline (io_uring and mmap reads):
//    against the same load discarding its output, the copies' sustained rate
//    (bytes / device busy time) against the pinned copy, and the end-to-end
//    rate against min(page-cache read, pinned copy).
// Prints one line per figure; exits 1 when a checksum differs.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "mneme/upload.hpp"

namespace {

using namespace mneme;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::uint32_t crc(std::span<const std::byte> bytes) {
  uLong c = crc32(0L, Z_NULL, 0);
  for (std::size_t at = 0; at < bytes.size(); at += 1u << 30) {
    const std::size_t n = std::min<std::size_t>(1u << 30, bytes.size() - at);
    c = crc32(c, reinterpret_cast<const Bytef*>(bytes.data() + at), static_cast<uInt>(n));
  }
  return static_cast<std::uint32_t>(c);
}

struct Model {
  boost::asio::io_context io;
  Catalog catalog;
  Plan plan;
  Model(const std::string& dir, std::optional<OutType> to, FileIo file_io = FileIo::automatic,
        std::uint64_t chunk = 4ull << 20)
      : catalog(open_catalog({dir}, io.get_executor(), catalog_options(file_io))),
        plan(make_plan(catalog, options(to, chunk))) {}
  static CatalogOptions catalog_options(FileIo file_io) {
    CatalogOptions o;
    o.open.file_io = file_io;
    return o;
  }
  static PlanOptions options(std::optional<OutType> to, std::uint64_t chunk) {
    PlanOptions o;
    o.to = to;
    o.max_chunk_bytes = chunk;
    return o;
  }
};

// Every tensor's CRC-32 as the pipeline delivers it into memory.
std::map<std::string, std::uint32_t> memory_checksums(const std::string& dir,
                                                      std::optional<OutType> to) {
  Model m(dir, to);
  MemorySink sink;
  run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{});
  std::map<std::string, std::uint32_t> out;
  for (const auto& t : sink.tensors()) {
    out[t.name] = crc(t.view());
  }
  return out;
}

// Seconds to read every file of `dir` with pread in 8 MiB blocks.
double read_files(const std::string& dir) {
  std::vector<std::byte> buffer(8u << 20);
  const auto t0 = Clock::now();
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(ErrorKind::io, "cannot open " + e.path().string());
    off_t at = 0;
    for (ssize_t n; (n = ::pread(fd, buffer.data(), buffer.size(), at)) > 0;) at += n;
    ::close(fd);
  }
  return since(t0);
}

std::uint64_t dir_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

// One copy of `bytes` from one pinned buffer: device seconds.
double pinned_copy(UploadDevice& device, std::uint64_t bytes) {
  const std::span<std::byte> host = device.allocate_staging(bytes);
  std::memset(host.data(), 1, host.size());
  const DeviceAddress dst = device.allocate(bytes);
  device.open_lanes(1);
  std::vector<double> runs;
  for (int i = 0; i < 3; ++i) {
    device.copy_async(0, dst, host);
    const std::optional<CopyTime> t = device.copy_done(0, true);
    runs.push_back(t->end - t->start);
  }
  device.close_lanes();
  device.free(dst);
  device.free_staging(host);
  return median(runs);
}

struct Arena {
  UploadDevice& device;
  DeviceAddress base = 0;
  std::map<std::string, DeviceAddress> at;
  Arena(UploadDevice& d, const Plan& plan) : device(d) {
    std::uint64_t total = 0;
    for (const auto& o : plan.outputs) total += (o.bytes + 255) & ~std::uint64_t{255};
    base = device.allocate(std::max<std::uint64_t>(total, 1));
    std::uint64_t offset = 0;
    for (const auto& o : plan.outputs) {
      at[o.name] = base + offset;
      offset += (o.bytes + 255) & ~std::uint64_t{255};
    }
  }
  ~Arena() { device.free(base); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: upload_check DEVICE MODEL_DIR [--to bf16|f16|f32] [--checksums-only]\n");
    return 2;
  }
  const std::string spec = argv[1];
  const std::string dir = argv[2];
  std::optional<OutType> to;
  std::string to_name;
  bool checks_only = false;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--checksums-only") {
      checks_only = true;
    } else if (arg == "--to" && i + 1 < argc) {
      to_name = argv[++i];
      to = to_name == "bf16" ? OutType::bf16 : to_name == "f16" ? OutType::f16 : OutType::f32;
    }
  }
  try {
    const std::unique_ptr<UploadDevice> device = open_device(spec);
    const std::string label =
        std::filesystem::path(dir).filename().string() + (to ? " --to " + to_name : "");

    // 1. checksums.
    const auto want = memory_checksums(dir, to);
    std::uint64_t total_out = 0;
    std::size_t bad = 0;
    {
      Model m(dir, to);
      UploadSink sink(*device);
      run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{});
      std::vector<std::byte> back;
      for (const DeviceTensor& t : sink.take()) {
        back.resize(t.bytes);
        device->copy_to_host(back, t.address);
        device->free(t.address);
        total_out += t.bytes;
        if (crc(back) != want.at(t.name)) {
          std::printf("MISMATCH %s: tensor %s\n", label.c_str(), t.name.c_str());
          ++bad;
        }
      }
      std::printf("checksums %s: %zu tensors, %.3f GB, %s\n", label.c_str(), want.size(),
                  total_out / 1e9, bad ? "MISMATCH" : "every checksum equal");
    }

    if (checks_only) return bad ? 1 : 0;

    // 2. floors.
    read_files(dir);  // warm the page cache
    std::vector<double> reads;
    for (int i = 0; i < 3; ++i) reads.push_back(read_files(dir));
    const double read_rate = static_cast<double>(dir_bytes(dir)) / median(reads);
    const double pinned_rate = static_cast<double>(total_out) / pinned_copy(*device, total_out);
    std::printf("floor page-cache read (pread 8 MiB): %.2f GB/s\n", read_rate / 1e9);
    std::printf("floor one copy from pinned memory of %.3f GB: %.2f GB/s\n", total_out / 1e9,
                pinned_rate / 1e9);
    const double floor =
        std::min(read_rate * static_cast<double>(total_out) / static_cast<double>(dir_bytes(dir)),
                 pinned_rate);

    // 3. the ring alone: slot-sized copies from the staging ring, each slot
    // reused once its copy completed, no pipeline.
    for (const std::uint64_t slot_mib : {4, 16, 64}) {
      for (const unsigned slots : {2u, 4u, 8u}) {
        const std::uint64_t slot = slot_mib << 20;
        const std::span<std::byte> ring = device->allocate_staging(slot * slots);
        std::memset(ring.data(), 2, ring.size());
        const DeviceAddress dst = device->allocate(total_out);
        device->open_lanes(slots);
        std::vector<bool> busy(slots, false);
        double first = 1e300, last = 0;
        const auto t0 = Clock::now();
        unsigned lane = 0;
        for (std::uint64_t at = 0; at < total_out; at += slot, lane = (lane + 1) % slots) {
          if (busy[lane]) {
            const CopyTime t = *device->copy_done(lane, true);
            first = std::min(first, t.start);
            last = std::max(last, t.end);
          }
          device->copy_async(lane, dst + at,
                             ring.subspan(lane * slot, std::min(slot, total_out - at)));
          busy[lane] = true;
        }
        for (unsigned i = 0; i < slots; ++i) {
          if (busy[i]) {
            const CopyTime t = *device->copy_done(i, true);
            first = std::min(first, t.start);
            last = std::max(last, t.end);
          }
        }
        const double wall = since(t0);
        device->close_lanes();
        device->free(dst);
        device->free_staging(ring);
        std::printf(
            "ring alone: %2llu MiB x %u slots: %.2f GB/s on the device (%.2f of pinned), %.2f GB/s "
            "wall\n",
            static_cast<unsigned long long>(slot_mib), slots,
            static_cast<double>(total_out) / (last - first) / 1e9,
            static_cast<double>(total_out) / (last - first) / pinned_rate,
            static_cast<double>(total_out) / wall / 1e9);
      }
    }

    // 4. the pipeline alone (discarding), then with the ring behind it:
    // 16 MiB chunks and slots (the CLI's default), one slot per decode
    // thread and 4 slots, io_uring reads and a mapping.
    for (const FileIo file_io : {FileIo::automatic, FileIo::mmap}) {
      const char* io_name = file_io == FileIo::mmap ? "mmap" : "auto";
      double alone = 0;
      {
        Model m(dir, to, file_io, 16 << 20);
        DiscardSink sink;
        const auto t0 = Clock::now();
        run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{});
        alone = since(t0);
      }
      for (const unsigned slots : {0u, 4u}) {
        Model m(dir, to, file_io, 16 << 20);
        Arena arena(*device, m.plan);
        UploadSink sink(
            *device, {.slot_bytes = 16 << 20, .slots = slots, .place = [&](const OutputTensor& o) {
                        return arena.at.at(o.name);
                      }});
        const auto t0 = Clock::now();
        run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{});
        const double wall = since(t0);
        const UploadStats s = sink.stats();
        const double sustained = static_cast<double>(s.bytes) / s.busy_seconds;
        const double end_to_end = static_cast<double>(s.bytes) / wall;
        std::printf(
            "load %s: io %s, 16 MiB chunks: pipeline alone %.3f s; into the device through %u x 16 "
            "MiB "
            "slots %.3f s (%.2f of alone), copies sustained %.2f GB/s (%.2f of pinned), end to end "
            "%.2f GB/s (%.2f of min(read, pinned)), slot waits %.3f s\n",
            label.c_str(), io_name, alone, s.slots, wall, wall / alone, sustained / 1e9,
            sustained / pinned_rate, end_to_end / 1e9, end_to_end / floor, s.wait_seconds);
      }
    }
    return bad ? 1 : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "upload_check: %s\n", e.what());
    return e.kind() == ErrorKind::unsupported ? 77 : 1;
  }
}
