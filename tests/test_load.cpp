// The one-call facade, tensor selection, and concurrent runs in one process
// (issue 10: API for servers).
#include <tbb/global_control.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "mneme/load.hpp"
#include "test_support.hpp"

using namespace mneme;

namespace {

const std::string kSample = std::string(MNEME_SOURCE_DIR) + "/fixtures/sample-model";

// A memory sink that records TBB's process-wide parallelism limit while it is
// being filled, and how many of its chunks were decoded at once.
class WatchingSink : public MemorySink {
 public:
  std::span<std::byte> acquire(const Chunk& chunk) override {
    const int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    const auto limit =
        tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
    if (limit != outside_) changed_limit_ = true;
    return MemorySink::acquire(chunk);
  }
  void commit(const Chunk& chunk, std::span<std::byte> out) override {
    --in_flight_;
    MemorySink::commit(chunk, out);
  }
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<bool> changed_limit_{false};
  const std::size_t outside_ =
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
};

}  // namespace

TEST_CASE("load_model opens, plans and runs into memory in one call", "[load]") {
  const LoadedModel m = load_model({kSample}, {.to = OutType::f32, .threads = 2});
  CHECK(m.format == Format::safetensors);
  REQUIRE(!m.tensors.empty());
  std::size_t floats = 0;
  for (const auto& t : m.tensors) {
    INFO(t.name << " " << dtype_name(t.dtype));
    const bool is_float = t.dtype == DType::f32;  // every float tensor was converted
    CHECK((is_float || dtype_name(t.dtype)[0] == 'I' || dtype_name(t.dtype)[0] == 'U'));
    floats += is_float ? 1 : 0;
  }
  CHECK(floats > 0);
  const auto* first = m.find(m.tensors.front().name);
  REQUIRE(first != nullptr);
  CHECK(first->bytes == m.tensors.front().bytes);
  CHECK(m.find("no such tensor") == nullptr);
  CHECK(m.stats.bytes_written > 0);
}

TEST_CASE("a plan can select tensors: the others are neither read nor delivered", "[load][plan]") {
  const LoadedModel all = load_model({kSample}, {});
  REQUIRE(all.tensors.size() >= 2);
  const std::string wanted = all.tensors[1].name;
  const LoadedModel one = load_model({kSample}, {.select = select_names({wanted})});
  REQUIRE(one.tensors.size() == 1);
  CHECK(one.tensors[0].name == wanted);
  CHECK(one.stats.bytes_read < all.stats.bytes_read);
  CHECK(std::memcmp(one.tensors[0].data.get(), all.tensors[1].data.get(), one.tensors[0].bytes) ==
        0);
}

TEST_CASE("two runs in one process keep their own concurrency and set nothing process-wide",
          "[load][concurrency]") {
  const LoadedModel reference = load_model({kSample}, {.to = OutType::bf16, .threads = 1});
  const auto run = [&](unsigned threads, WatchingSink& sink) {
    boost::asio::io_context io(1);
    const Catalog cat = open_catalog({kSample}, io.get_executor());
    const Plan plan = make_plan(cat, {.to = OutType::bf16, .max_chunk_bytes = 4096});
    for (int i = 0; i < 5; ++i) {
      run_pipeline(io, cat, plan, sink, {.threads = threads, .budget_bytes = 64 << 10});
    }
  };
  WatchingSink alone;
  run(3, alone);  // more threads than this machine may have cores
  CHECK(!alone.changed_limit_.load());
  WatchingSink one, two;
  std::thread a([&] { run(1, one); });
  std::thread b([&] { run(2, two); });
  a.join();
  b.join();
  CHECK(one.max_in_flight_.load() == 1);
  CHECK(two.max_in_flight_.load() <= 2);
  CHECK(!one.changed_limit_.load());
  CHECK(!two.changed_limit_.load());
  for (auto* sink : {&one, &two}) {
    REQUIRE(sink->tensors().size() == reference.tensors.size());
    for (std::size_t i = 0; i < reference.tensors.size(); ++i) {
      const auto& got = sink->tensors()[i];
      REQUIRE(got.bytes == reference.tensors[i].bytes);
      CHECK(std::memcmp(got.data.get(), reference.tensors[i].data.get(), got.bytes) == 0);
    }
  }
}
