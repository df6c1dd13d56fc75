// The upload queue (issue 13): the ring's rules on the host backend, and the
// CUDA backend where a GPU answers.
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>

#include <boost/asio/io_context.hpp>

#include "mneme/error.hpp"
#include "mneme/upload.hpp"
#include "test_support.hpp"
#include "upload_support.hpp"

using namespace mneme;

namespace {

const std::string kSample = std::string(MNEME_SOURCE_DIR) + "/fixtures/sample-model";

struct Opened {
  boost::asio::io_context io;
  Catalog catalog;
  Plan plan;
  explicit Opened(const std::string& source, std::uint64_t chunk = 16 << 10)
      : catalog(open_catalog({source}, io.get_executor())),
        plan(make_plan(catalog, PlanOptions{.to = OutType::f32, .max_chunk_bytes = chunk})) {}
};

Error run_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("no error");
  return Error(ErrorKind::io, "");
}

}  // namespace

TEST_CASE("the sample model arrives through the upload ring as it loads into memory", "[upload]") {
  test::check_upload_matches({kSample}, OutType::bf16);
  test::check_upload_matches({kSample}, std::nullopt);
}

TEST_CASE(
    "the NPZ, .pth and quantized safetensors goldens arrive through the upload ring as in memory",
    "[upload][fixtures]") {
  std::size_t cases = 0;
  for (const auto& [family, extension] :
       {std::pair{"npz", ".npz"}, {"pth", ".pth"}, {"safetensors", ".safetensors"}}) {
    for (const auto& path : test::fixture_files(family)) {
      // (fp8.safetensors needs the config.json test_fp8_pipeline writes; the
      // FP8 goldens go through the ring there.)
      if (path.extension() != extension || path.filename() == "fp8.safetensors") continue;
      INFO(path.filename().string());
      test::check_upload_matches({path.string()}, OutType::bf16);
      ++cases;
    }
  }
  CHECK(cases >= 6);
}

TEST_CASE("a tensor is announced once, when all its bytes are on the device", "[upload]") {
  Opened m(kSample);
  HostDevice device({.copy_delay_seconds = 100e-6});
  std::mutex mutex;
  std::set<std::string> seen;
  std::size_t incomplete = 0;
  std::atomic<int> at_once{0};
  std::atomic<int> most_at_once{0};
  UploadSink sink(device,
                  {.slot_bytes = 64 << 10, .slots = 2, .on_ready = [&](const DeviceTensor& t) {
                     most_at_once = std::max(most_at_once.load(), ++at_once);
                     std::vector<std::byte> now(t.bytes);
                     device.copy_to_host(now, t.address);
                     std::lock_guard lock(mutex);
                     incomplete += std::count(now.begin(), now.end(), std::byte{0xA5}) ==
                                       static_cast<std::ptrdiff_t>(t.bytes) &&
                                   t.bytes > 0;
                     CHECK(seen.insert(t.name).second);
                     --at_once;
                   }});
  run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{.threads = 2});
  CHECK(seen.size() == m.plan.outputs.size());
  CHECK(incomplete == 0);
  CHECK(most_at_once == 1);
  // The bytes are final when announced: the ring gives what memory gives.
  const auto tensors = sink.take();
  for (const DeviceTensor& t : tensors) {
    CHECK(t.owned);
    device.free(t.address);
  }
  CHECK(device.live_allocations() == 0);
}

TEST_CASE("a copy that fails ends the run with its error and frees everything", "[upload]") {
  for (const std::uint64_t failing : {0, 3, 20}) {
    for (const unsigned slots : {1u, 2u}) {
      INFO("copy " << failing << ", " << slots << " slots");
      Opened m(kSample);
      HostDevice device({.copy_delay_seconds = 50e-6, .fail_copy = failing});
      UploadSink sink(device, {.slot_bytes = 64 << 10, .slots = slots});
      const Error e =
          run_error([&] { run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{.threads = 2}); });
      CHECK(e.kind() == ErrorKind::io);
      CHECK_THAT(e.what(), Catch::Contains("copy " + std::to_string(failing) + " failed"));
      CHECK(device.live_allocations() == 0);
      CHECK(device.live_staging_bytes() == 0);
      CHECK_THROWS_AS(sink.take(), Error);
    }
  }
}

TEST_CASE("a device allocation that fails ends the run before any copy and frees the others",
          "[upload]") {
  Opened m(kSample);
  HostDevice device({.fail_allocation = 2});
  UploadSink sink(device);
  const Error e =
      run_error([&] { run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{.threads = 2}); });
  CHECK(e.kind() == ErrorKind::limit);
  CHECK(device.copies_started() == 0);
  CHECK(device.live_allocations() == 0);
  CHECK(device.live_staging_bytes() == 0);
}

TEST_CASE("a cancelled upload frees every slot and device buffer", "[upload]") {
  Opened m(kSample);
  HostDevice device({.copy_delay_seconds = 200e-6});
  std::atomic<bool> cancel{false};
  UploadSink sink(device, {.slot_bytes = 64 << 10,
                           .slots = 2,
                           .on_ready = [&](const DeviceTensor&) { cancel = true; }});
  const Error e = run_error([&] {
    run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{.threads = 2, .cancel = &cancel});
  });
  INFO(e.what());
  CHECK(e.kind() == ErrorKind::cancelled);
  CHECK(device.live_allocations() == 0);
  CHECK(device.live_staging_bytes() == 0);
}

TEST_CASE("the ring is counted in the budget", "[upload]") {
  Opened m(kSample);
  const UploadOptions ring{.slot_bytes = 1 << 20, .slots = 3};
  SECTION("peak host memory stays within the budget, the ring included") {
    HostDevice device;
    UploadSink sink(device, ring);
    const RunStats s = run_pipeline(m.io, m.catalog, m.plan, sink,
                                    RunOptions{.threads = 2, .budget_bytes = 4 << 20});
    CHECK(s.budget_bytes == 4 << 20);
    CHECK(s.peak_buffer_bytes >= 3 << 20);
    CHECK(s.peak_buffer_bytes <= s.budget_bytes);
    CHECK(sink.stats().ring_bytes == 3 << 20);
  }
  SECTION("a budget smaller than the ring is refused before any copy") {
    // (The sample is read from a mapping, so a budget the ring fills exactly
    // would be enough: no input buffer is needed.)
    HostDevice device;
    UploadSink sink(device, ring);
    const Error e = run_error([&] {
      run_pipeline(m.io, m.catalog, m.plan, sink,
                   RunOptions{.threads = 2, .budget_bytes = 2 << 20});
    });
    CHECK(e.kind() == ErrorKind::limit);
    CHECK_THAT(e.what(), Catch::Contains("the sink holds"));
    CHECK(device.copies_started() == 0);
  }
  SECTION("the default budget adds the ring to what the reads get") {
    HostDevice device;
    UploadSink sink(device, ring);
    const RunStats s = run_pipeline(m.io, m.catalog, m.plan, sink, RunOptions{.threads = 2});
    CHECK(s.budget_bytes == (64ull << 20) + (3 << 20));
  }
}

TEST_CASE("a ring of no slot, or of slots under 64 KiB, is refused", "[upload]") {
  HostDevice device;
  CHECK_THROWS_AS(UploadSink(device, {.slots = 0}), Error);
  CHECK_THROWS_AS(UploadSink(device, {.slot_bytes = 4096}), Error);
  CHECK_THROWS_AS(open_device("gpu"), Error);
  CHECK_THROWS_AS(open_device("cuda:x"), Error);
}

TEST_CASE("the CLI loads into a device and reports the copies", "[upload][cli]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto r = test::run(std::string(cli) + " load " + test::shq(kSample) +
                           " --to bf16 --device host --slots 2 --slot-size 64k 2>&1");
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("to host: 192.56 KiB in"));
  CHECK_THAT(r.out, Catch::Contains("through 2 slots of 64.00 KiB"));
  const auto bad = test::run(std::string(cli) + " load " + test::shq(kSample) + " --slots 2 2>&1");
  CHECK(bad.status == 2);
}

// Without a GPU (every CI machine) the CUDA backend must say so, not crash;
// with one, it must deliver what the host backend delivers.
TEST_CASE("the CUDA backend uploads the sample as memory holds it, or says why it cannot",
          "[upload][cuda]") {
  std::unique_ptr<UploadDevice> gpu;
  try {
    gpu = open_device("cuda:0");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::unsupported);
    MNEME_SKIP_NO_HARDWARE(std::string("no CUDA device: ") + e.what());
    return;
  }
  const auto want = test::load_bytes({kSample}, OutType::bf16);
  for (const unsigned slots : {1u, 2u, 4u}) {
    INFO(slots << " slots");
    CHECK(test::upload_bytes({kSample}, OutType::bf16, *gpu,
                             {{.slot_bytes = 64 << 10, .slots = slots}, 16 << 10}) == want);
  }
}
