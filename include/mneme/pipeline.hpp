// The streaming pipeline: plan -> read -> decode -> deliver (design guide,
// "The data path" 3-6). One run moves every tensor of a catalog from its
// sources into a sink under one memory budget.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mneme/catalog.hpp"

namespace boost::asio {
class io_context;
}
#include "mneme/dtype.hpp"

namespace mneme {

// What one catalog tensor becomes.
struct OutputTensor {
  std::size_t source_tensor = 0;  // index into Catalog::tensors
  std::string name;
  DType dtype = DType::f32;  // output element type
  std::vector<std::uint64_t> shape;
  std::uint64_t bytes = 0;
  // Chunks the sink receives for this tensor (acquire/commit pairs): one per
  // Plan::chunks entry, or one covering the whole tensor for schemes whose
  // chunks are not contiguous in the output (GPTQ, AWQ).
  std::uint64_t chunk_count = 0;
};

// One unit of work: an input byte range that decodes on its own into one
// slice of one output tensor.
struct Chunk {
  std::uint32_t output = 0;  // index into Plan::outputs
  Extent input;
  std::uint64_t out_offset = 0;  // byte offset inside the output tensor
  std::uint64_t out_bytes = 0;
  std::uint64_t elements = 0;
};

struct PlanOptions {
  // Convert unquantized float tensors of another width to this type; others
  // (integers, and all tensors when unset) pass through unchanged.
  std::optional<OutType> to;
  // Upper bound of one chunk's input bytes and of its output bytes (rounded
  // down to whole elements or blocks; at least one); for a streamed deflated
  // tensor, of its inflated and its output bytes.
  std::uint64_t max_chunk_bytes = 4ull << 20;
  // Cap for a tensor that must be held whole: a GPTQ/AWQ output, a strided
  // or byte-swapped input (also counted in RunOptions::budget_bytes).
  std::uint64_t max_materialize_bytes = 1ull << 30;
  // Which tensors to load (by their decoded name, dtype, shape, scheme);
  // unset: all. Unselected tensors are neither read nor delivered.
  std::function<bool(const TensorInfo&)> select = {};
};

// A PlanOptions::select that takes exactly these names.
std::function<bool(const TensorInfo&)> select_names(std::vector<std::string> names);

// The planner's notes to the run (how each output is read and decoded);
// internal to the pipeline, opaque here.
struct PlanDetail;

struct Plan {
  std::vector<OutputTensor> outputs;
  // The units of decode work, in read order: per source ascending offsets,
  // sources interleaved.
  std::vector<Chunk> chunks;
  std::uint64_t max_chunk_in = 0;
  std::uint64_t max_chunk_out = 0;
  std::uint64_t total_in = 0;
  std::uint64_t total_out = 0;
  std::shared_ptr<const PlanDetail> detail;
};

Plan make_plan(const Catalog& catalog, const PlanOptions& options);

// Sinks own the output memory and learn when chunks and tensors complete.
// acquire/commit/tensor_done are called from decode threads concurrently.
class Sink {
 public:
  virtual ~Sink() = default;
  // Host memory the sink holds through the run besides the outputs it hands
  // out (a staging ring, bounce buffers), counted in the run's budget; asked
  // once, before begin, with the run's decode threads.
  virtual std::uint64_t held_bytes(const Plan& plan, unsigned threads) const { return 0; }
  virtual void begin(const Catalog& catalog, const Plan& plan) {}
  // Memory for exactly chunk.out_bytes of output. Usually one of
  // Plan::chunks; for a tensor whose chunks are not contiguous in the output
  // (GPTQ, AWQ) one chunk covering the whole tensor (OutputTensor::chunk_count).
  virtual std::span<std::byte> acquire(const Chunk& chunk) = 0;
  // The chunk's output bytes are in place in `out` (the span acquire gave).
  virtual void commit(const Chunk& chunk, std::span<std::byte> out) = 0;
  // Every chunk of plan.outputs[output] is committed.
  virtual void tensor_done(std::size_t output) {}
  // The run succeeded; flush and close.
  virtual void finish() {}
  // The run failed or was cancelled; release everything, leave no partial file.
  virtual void abort() noexcept {}
};

struct RunOptions {
  unsigned threads = 0;  // decode threads; 0 = hardware concurrency
  // Memory the run may hold at once: input buffers, companions, tensors held
  // whole (GPTQ/AWQ outputs, strided or byte-swapped inputs) and stream
  // state. A tensor that cannot fit is Error{limit} naming it, before any
  // read. What the sink holds through the run (Sink::held_bytes) is part of
  // it. 0: 64 MiB, or what the largest tensor needs when that is more, plus
  // what the sink holds.
  std::uint64_t budget_bytes = 0;
  std::atomic<bool>* cancel = nullptr;  // set from any thread to cancel the run
  // Progress: bytes produced so far and in total; called from the I/O thread.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress = {};
};

struct RunStats {
  std::uint64_t bytes_read = 0;     // from sources (zero-copy sources count as read)
  std::uint64_t bytes_written = 0;  // produced into the sink
  std::uint64_t chunks = 0;
  double wall_seconds = 0;
  double io_busy_seconds = 0;  // wall time with at least one read in flight
  double io_wait_seconds = 0;  // wall time with reads in flight and no decode running
  double decode_seconds = 0;   // summed over decode threads
  std::uint64_t peak_buffer_bytes =
      0;  // budgeted bytes held at once, at most (the sink's included)
  // Of those, tensors held whole at once, at most: GPTQ/AWQ outputs and
  // strided or byte-swapped inputs.
  std::uint64_t peak_whole_tensor_bytes = 0;
  std::uint64_t buffer_capacity = 0;  // bytes of the preallocated input buffer pool
  std::uint64_t budget_bytes = 0;     // the budget the run kept to
  unsigned threads = 0;
};

// Moves every tensor of `catalog` through `plan` into `sink`. Reads run as
// coroutines on `io` (the context the catalog's sources were opened on), which
// the run drives on a thread of its own for the duration: nothing else may run
// it meanwhile. Decoding runs on RunOptions::threads loops in the run's own
// oneTBB arena (at most the cores TBB may use), the calling thread one of
// them; nothing process-wide is set, so runs in one process do not limit
// each other.
// Throws the first mneme::Error any stage raised (the sink's abort() has run
// by then); never returns with work in flight.
RunStats run_pipeline(boost::asio::io_context& io, const Catalog& catalog, const Plan& plan,
                      Sink& sink, const RunOptions& options);

// The sinks mneme provides are in mneme/sinks.hpp.

}  // namespace mneme
