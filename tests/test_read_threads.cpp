// Every source read of a run happens on the run's reader side, never on a
// decode thread (design guide, "The data path" 4; issue 10): a source wrapper
// records the thread of every read, a sink the threads that decode.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "memory_source_for_tests.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "pipeline/plan_detail.hpp"
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

namespace {

// Appends `part` (opened alone) to `into`: one catalog over both models'
// sources, every extent renumbered.
void append(Catalog& into, Catalog part) {
  const auto base = static_cast<std::uint32_t>(into.sources.size());
  for (auto& s : part.sources) into.sources.push_back(std::move(s));
  for (auto& t : part.tensors) {
    t.data.source += base;
    for (Companion* c : companions_of(t.scheme)) c->data.source += base;
    into.tensors.push_back(std::move(t));
  }
}

void write_file(const std::filesystem::path& p, const test::Bytes& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                           static_cast<std::streamsize>(b.size()));
}

}  // namespace

TEST_CASE("one run over GPTQ, a deflated NPZ member and a strided .pth tensor: every read on "
          "the reader side, within the budget",
          "[pipeline][threads][budget]") {
  using namespace mneme::test;
  const auto dir = scratch_dir("read-threads-mixed");
  // A deflated NPZ member (np.savez_compressed) of 20000 F32 values.
  Bytes values(20000 * 4);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::byte(i * 7 % 251);
  ZipMember member{"d.npy", deflate_raw(make_npy("{'descr': '<f4', 'fortran_order': False, "
                                                 "'shape': (20000,), }",
                                                 values))};
  member.method = 8;
  member.usize = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (20000,), }", values)
                     .size();
  write_file(dir / "m.npz", build_zip({member}).bytes);
  // A transposed view (strides {1, 64}) of a 64 x 64 F32 storage.
  PickleWriter p;
  p.proto().ordered_dict().op('(');
  p.tensor("t", "FloatStorage", "0", 4096, 0, {64, 64}, {1, 64});
  p.op('u').op('.');
  Bytes storage(4096 * 4), transposed(4096 * 4);
  for (std::uint32_t i = 0; i < 4096; ++i) {
    const float f = static_cast<float>(i);
    std::memcpy(storage.data() + 4 * i, &f, 4);
  }
  for (std::uint32_t r = 0; r < 64; ++r) {
    for (std::uint32_t c = 0; c < 64; ++c) {
      std::memcpy(transposed.data() + 4 * (r * 64 + c), storage.data() + 4 * (c * 64 + r), 4);
    }
  }
  write_file(dir / "v.pth", make_pth(p.b, {{"0", storage}}).bytes);

  boost::asio::io_context io(1);
  const auto gptq = std::filesystem::path(MNEME_SOURCE_DIR) / "fixtures" / "samples" / "gptq";
  Catalog cat = open_catalog({gptq.string()}, io.get_executor());
  append(cat, open_catalog({(dir / "m.npz").string()}, io.get_executor()));
  append(cat, open_catalog({(dir / "v.pth").string()}, io.get_executor()));
  const auto find = [&](std::string_view name) -> const TensorInfo& {
    for (const auto& t : cat.tensors)
      if (t.name == name) return t;
    FAIL("no tensor " << name);
    throw std::logic_error("unreachable");
  };
  REQUIRE(find("d").layout.compression == Layout::Compression::deflate);
  REQUIRE(!find("t").layout.strides.empty());
  REQUIRE(std::any_of(cat.tensors.begin(), cat.tensors.end(),
                      [](const TensorInfo& t) { return has_companions(t.scheme); }));
  Threads readers, decoders;
  for (auto& s : cat.sources) s = std::make_shared<RecordingSource>(s, readers);
  const Plan plan = make_plan(cat, {.to = OutType::f32, .max_chunk_bytes = 4096});

  SECTION("every read on the reader side, everything held within the budget") {
    constexpr std::uint64_t kBudget = 1 << 20;
    RecordingSink sink(decoders);
    const RunStats stats =
        run_pipeline(io, cat, plan, sink, {.threads = 2, .budget_bytes = kBudget});
    CHECK(stats.bytes_read >= cat.total_data_bytes());  // zip members are read whole
    REQUIRE(!readers.ids.empty());
    REQUIRE(!decoders.ids.empty());
    for (const auto& id : decoders.ids) CHECK(readers.ids.count(id) == 0);
    CHECK(stats.peak_buffer_bytes <= kBudget);
    CHECK(stats.peak_whole_tensor_bytes > 0);  // the GPTQ output and the strided view
    for (const auto& t : sink.tensors()) {
      if (t.name == "d") CHECK(std::equal(t.view().begin(), t.view().end(), values.begin()));
      if (t.name == "t") CHECK(std::equal(t.view().begin(), t.view().end(), transposed.begin()));
    }
  }
  SECTION("a budget too small for one tensor fails before any read, naming the tensor") {
    // The tensor that needs the most: what it holds plus one read.
    std::uint64_t need = 0;
    std::string name;
    for (std::size_t i = 0; i < plan.outputs.size(); ++i) {
      const auto& d = plan.detail->outputs[i];
      if (d.hold_bytes + d.read_bytes > need) {
        need = d.hold_bytes + d.read_bytes;
        name = plan.outputs[i].name;
      }
    }
    RecordingSink sink(decoders);
    try {
      run_pipeline(io, cat, plan, sink, {.threads = 2, .budget_bytes = need - 1});
      FAIL("a budget below one tensor's needs was accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::limit);
      CHECK_THAT(e.what(), Catch::Contains("\"" + name + "\"") &&
                               Catch::Contains("needs a budget of " + std::to_string(need)));
    }
    CHECK(readers.ids.empty());
    CHECK(decoders.ids.empty());
  }
}
