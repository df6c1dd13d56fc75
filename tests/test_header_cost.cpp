// Issue 14, item 5: what a tensor costs beyond the header bytes themselves.
// MoE checkpoints name ~90 000 tensors in one header; reading one must cost a
// bounded, small number of bytes and allocations per tensor, not a document
// tree and copies of the catalog. This binary counts every allocation (a
// replaced global operator new) while a 20 000-tensor header is read and a
// load is planned. Times are shown by bench.py, not asserted here.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "memory_source_for_tests.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"

namespace {

std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};
std::atomic<std::int64_t> g_calls{0};

// Bytes asked for are recorded in a 16-byte header in front of each block
// (alignment kept), so frees know their size.
constexpr std::size_t kHeader = 16;

void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n + kHeader);
  if (!p) throw std::bad_alloc();
  *static_cast<std::size_t*>(p) = n;
  const std::int64_t live =
      g_live.fetch_add(static_cast<std::int64_t>(n)) + static_cast<std::int64_t>(n);
  std::int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
  g_calls.fetch_add(1);
  return static_cast<char*>(p) + kHeader;
}

void counted_free(void* p) noexcept {
  if (!p) return;
  void* base = static_cast<char*>(p) - kHeader;
  g_live.fetch_sub(static_cast<std::int64_t>(*static_cast<std::size_t*>(base)));
  std::free(base);
}

// What a stretch of code allocated: its peak above where it started, and calls.
struct Counted {
  std::int64_t start_live = g_live.load();
  std::int64_t start_calls = g_calls.load();
  Counted() { g_peak.store(start_live); }
  std::int64_t peak() const { return g_peak.load() - start_live; }
  std::int64_t calls() const { return g_calls.load() - start_calls; }
};

}  // namespace

// Every form a plain delete may free (Catch allocates with nothrow new; under
// ASan a form left out would come from ASan's allocator).
void* operator new(std::size_t n) {
  return counted_alloc(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void* operator new[](std::size_t n) {
  return counted_alloc(n);
}
void operator delete(void* p) noexcept {
  counted_free(p);
}
void operator delete[](void* p) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  counted_free(p);
}

using namespace mneme;

TEST_CASE(
    "issue 14: a header of 20 000 tensors costs a bounded few bytes and allocations per tensor") {
  // Names as MoE checkpoints spell them (30-odd bytes: past the inline
  // string buffer), empty tensors as in the measurement.
  constexpr int kTensors = 20'000;
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  for (int i = 0; i < kTensors; ++i) {
    header += ",\"model.layers." + std::to_string(i / 256) + ".mlp.experts." +
              std::to_string(i % 256) +
              ".w\":{\"dtype\":\"BF16\",\"shape\":[0,4096],\"data_offsets\":[0,0]}";
  }
  header += "}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  file += header;
  auto source = test::memory_source("moe.safetensors", test::to_bytes(std::string_view(file)));

  Catalog cat;
  std::int64_t parse_peak = 0, parse_calls = 0;
  {
    const Counted c;
    cat = parse_safetensors(source, {});
    parse_peak = c.peak();
    parse_calls = c.calls();
  }
  REQUIRE(cat.tensors.size() == kTensors);
  // The header text is read whole (its own bytes); everything else is per tensor.
  const double parse_bytes = double(parse_peak - std::int64_t(header.size())) / kTensors;
  const double parse_allocs = double(parse_calls) / kTensors;

  std::int64_t plan_peak = 0, plan_calls = 0;
  {
    const Counted c;
    const Plan plan = make_plan(cat, {});
    plan_peak = c.peak();
    plan_calls = c.calls();
    CHECK(plan.outputs.size() == kTensors);
  }
  const double plan_bytes = double(plan_peak) / kTensors;
  const double plan_allocs = double(plan_calls) / kTensors;
  WARN("per tensor: header read " << parse_bytes << " bytes, " << parse_allocs
                                  << " allocations; plan " << plan_bytes << " bytes, "
                                  << plan_allocs << " allocations");
  // Before this work: a duplicate-key pass, a JSON tree and two copies of a
  // 696-byte TensorInfo list, over 2 000 bytes and 15 allocations a tensor.
  CHECK(parse_bytes <= 240);
  CHECK(parse_allocs <= 2.1);  // the name and the shape
  CHECK(plan_bytes <= 240);
  CHECK(plan_allocs <= 3.1);  // the name, the shape, a codec asked and dropped
}
