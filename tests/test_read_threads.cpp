// Every source read of a run happens on the run's reader side, never on a
// decode thread (design guide, "The data path" 4; issue 10): a source wrapper
// records the thread of every read, a sink the threads that decode.
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "pipeline/plan_detail.hpp"
#include "mneme/sinks.hpp"
#include "test_support.hpp"

using namespace mneme;

namespace {

struct Threads {
  std::mutex mutex;
  std::set<std::thread::id> ids;
  void add() {
    std::lock_guard lock(mutex);
    ids.insert(std::this_thread::get_id());
  }
};

// Delegates to a file source, with no zero-copy view, recording who reads.
class RecordingSource : public Source {
 public:
  RecordingSource(SourcePtr inner, Threads& readers)
      : inner_(std::move(inner)), readers_(readers) {}
  const std::string& name() const override { return inner_->name(); }
  std::optional<std::uint64_t> size() const override { return inner_->size(); }
  bool sequential() const override { return inner_->sequential(); }
  std::string_view kind() const override { return "recording"; }
  void read_at(std::uint64_t offset, std::span<std::byte> dst) override {
    readers_.add();
    inner_->read_at(offset, dst);
  }
  boost::asio::awaitable<void> async_read_at(std::uint64_t offset,
                                             std::span<std::byte> dst) override {
    readers_.add();
    co_await inner_->async_read_at(offset, dst);
  }

 private:
  SourcePtr inner_;
  Threads& readers_;
};

class RecordingSink : public MemorySink {
 public:
  explicit RecordingSink(Threads& decoders) : decoders_(decoders) {}
  std::span<std::byte> acquire(const Chunk& chunk) override {
    decoders_.add();
    return MemorySink::acquire(chunk);
  }
  void commit(const Chunk& chunk, std::span<std::byte> out) override {
    decoders_.add();
    MemorySink::commit(chunk, out);
  }

 private:
  Threads& decoders_;
};

}  // namespace

TEST_CASE("no source read runs on a decode thread: GPTQ weights and their companions",
          "[pipeline][threads]") {
  const auto model = std::filesystem::path(MNEME_SOURCE_DIR) / "fixtures" / "samples" / "gptq";
  boost::asio::io_context io(1);
  Catalog cat = open_catalog({model.string()}, io.get_executor());
  REQUIRE(std::any_of(cat.tensors.begin(), cat.tensors.end(),
                      [](const TensorInfo& t) { return has_companions(t.scheme); }));
  Threads readers, decoders;
  for (auto& s : cat.sources) s = std::make_shared<RecordingSource>(s, readers);
  const Plan plan = make_plan(cat, {.to = OutType::bf16, .max_chunk_bytes = 4096});
  RecordingSink sink(decoders);
  const RunStats stats =
      run_pipeline(io, cat, plan, sink, {.threads = 2, .budget_bytes = 512 << 10});
  CHECK(stats.bytes_read == cat.total_data_bytes());  // companions included
  CHECK(stats.peak_buffer_bytes <= 512 << 10);  // the assembled weight and companions included
  CHECK(stats.peak_whole_tensor_bytes > 0);
  REQUIRE(!readers.ids.empty());
  REQUIRE(!decoders.ids.empty());
  for (const auto& id : decoders.ids) {
    CHECK(readers.ids.count(id) == 0);
  }
}

TEST_CASE("no source read runs on a decode thread: a Fortran-order NPY tensor read whole",
          "[pipeline][threads]") {
  // A 3 x 4 F32 array stored column-major: the planner materializes it.
  const auto dir = test::scratch_dir("read-threads-npy");
  std::string header = "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size() & 0xFF);
  file += static_cast<char>(header.size() >> 8);
  file += header;
  for (int col = 0; col < 4; ++col) {
    for (int row = 0; row < 3; ++row) {
      const float v = static_cast<float>(row * 4 + col);
      file.append(reinterpret_cast<const char*>(&v), 4);
    }
  }
  std::ofstream(dir / "a.npy", std::ios::binary) << file;

  boost::asio::io_context io(1);
  Catalog cat = open_catalog({(dir / "a.npy").string()}, io.get_executor());
  REQUIRE(cat.tensors.size() == 1);
  REQUIRE(!cat.tensors[0].layout.trivial());
  Threads readers, decoders;
  for (auto& s : cat.sources) s = std::make_shared<RecordingSource>(s, readers);
  const Plan plan = make_plan(cat, {});
  REQUIRE(plan.detail->outputs.at(0).whole_bytes > 0);
  RecordingSink sink(decoders);
  run_pipeline(io, cat, plan, sink, {.threads = 2});
  for (const auto& id : decoders.ids) {
    CHECK(readers.ids.count(id) == 0);
  }
  const auto& t = sink.tensors().at(0);
  REQUIRE(t.bytes == 48);
  for (int i = 0; i < 12; ++i) {
    float v = 0;
    std::memcpy(&v, t.data.get() + 4 * i, 4);
    CHECK(v == static_cast<float>(i));  // row-major now
  }
}
