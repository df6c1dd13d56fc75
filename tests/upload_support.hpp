// Loading a model into a device through the upload ring and reading every
// tensor back, to compare with the in-memory load (remote_support.hpp's
// load_bytes gives the same map).
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "mneme/upload.hpp"
#include "remote_support.hpp"

namespace mneme::test {

struct UploadRun {
  UploadOptions ring;
  std::uint64_t max_chunk_bytes = 4ull << 20;
  unsigned threads = 2;
};

// Every output tensor's name, dtype, shape and bytes as the device holds
// them after the run; the device memory is freed again.
inline std::map<std::string, std::vector<std::byte>> upload_bytes(
    const std::vector<std::string>& sources, std::optional<OutType> to, UploadDevice& device,
    const UploadRun& how = {}) {
  boost::asio::io_context io;
  const Catalog catalog = open_catalog(sources, io.get_executor());
  PlanOptions plan_options;
  plan_options.to = to;
  plan_options.max_chunk_bytes = how.max_chunk_bytes;
  const Plan plan = make_plan(catalog, plan_options);
  UploadSink sink(device, how.ring);
  run_pipeline(io, catalog, plan, sink, RunOptions{.threads = how.threads});
  std::map<std::string, std::vector<std::byte>> out;
  for (const DeviceTensor& t : sink.take()) {
    std::vector<std::byte>& bytes = out[tensor_key(t.name, t.dtype, t.shape)];
    bytes.resize(t.bytes);
    device.copy_to_host(bytes, t.address);
    device.free(t.address);
  }
  return out;
}

// The device the upload checks use: $MNEME_UPLOAD_DEVICE (cuda:0 where a GPU
// is, as scripts/gpu-check.sh runs them), or the host backend.
inline const char* upload_device_spec() {
  const char* spec = std::getenv("MNEME_UPLOAD_DEVICE");
  return spec != nullptr && *spec != '\0' ? spec : nullptr;
}

// The model arrives on the device byte for byte as it loads into memory,
// through one slot smaller than a chunk (chunks pass through it in pieces),
// one slot that chunks decode into directly, two slots with slow copies, and
// slots larger than any tensor; on the host backend, nothing stays allocated.
inline void check_upload_matches(const std::vector<std::string>& sources,
                                 std::optional<OutType> to) {
  const auto want = load_bytes(sources, to);
  struct Case {
    const char* what;
    UploadRun run;
    double delay;
  };
  const Case cases[] = {
      {"1 slot of 64 KiB, 4 MiB chunks", {{.slot_bytes = 64 << 10, .slots = 1}}, 0},
      {"1 slot of 64 KiB, 16 KiB chunks", {{.slot_bytes = 64 << 10, .slots = 1}, 16 << 10}, 0},
      {"2 slots of 64 KiB, 16 KiB chunks, slow copies",
       {{.slot_bytes = 64 << 10, .slots = 2}, 16 << 10},
       200e-6},
      {"2 slots of 64 MiB", {{.slot_bytes = 64 << 20, .slots = 2}}, 0},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    if (const char* spec = upload_device_spec()) {
      const std::unique_ptr<UploadDevice> device = open_device(spec);
      CHECK(upload_bytes(sources, to, *device, c.run) == want);
      continue;
    }
    HostDevice device({.copy_delay_seconds = c.delay});
    CHECK(upload_bytes(sources, to, device, c.run) == want);
    CHECK(device.live_allocations() == 0);
    CHECK(device.live_staging_bytes() == 0);
    CHECK(device.copies_started() > 0);
  }
}

}  // namespace mneme::test
