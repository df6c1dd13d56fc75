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
  std::uint64_t chunk_count = 0;
  // Stored in a layout the streaming path does not normalise yet (big-endian
  // or strided, deflated or not): decoded as one chunk from the whole tensor
  // held in memory (at most PlanOptions::max_materialize_bytes).
  bool materialize = false;
  // A deflated zip member in a trivial element layout (np.savez_compressed,
  // deflated .pth storages), streamed. Deflate cannot be split, so its chunks
  // are consecutive output ranges of one zlib stream, every one with input
  // {source, data.offset, 0}: the pipeline decodes them all in one job, in
  // order, reading the compressed extent (the tensor's data) through the
  // source itself, inflate_piece_bytes at a time, and checks the member's
  // exact size and CRC-32 before it commits the last chunk.
  // inflate_buffer_bytes is that job's working memory, taken from the input
  // buffer budget: one compressed piece, plus one chunk of inflated elements
  // when they are converted (Plan::max_chunk_in covers it).
  bool inflate = false;
  std::uint64_t inflate_piece_bytes = 0;
  std::uint64_t inflate_buffer_bytes = 0;
  // Decoded in pieces that are not contiguous in the output (a GPTQ/AWQ chunk
  // of input rows is a column band of the [out, in] weight): the pipeline
  // acquires the whole tensor from the sink once, as one chunk with
  // out_offset 0 and out_bytes = bytes, decodes every chunk into it in place
  // and commits it once (at most PlanOptions::max_materialize_bytes).
  bool assembled = false;
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
  // Upper bound of one chunk's input bytes (rounded down to whole elements);
  // for a streamed deflated tensor, of its inflated and its output bytes.
  std::uint64_t max_chunk_bytes = 4ull << 20;
  // Cap for a tensor that must be held whole (OutputTensor::materialize, assembled).
  std::uint64_t max_materialize_bytes = 1ull << 30;
  // Which tensors to load (by their decoded name, dtype, shape, scheme);
  // unset: all. Unselected tensors are neither read nor delivered.
  std::function<bool(const TensorInfo&)> select;
};

// A PlanOptions::select that takes exactly these names.
std::function<bool(const TensorInfo&)> select_names(std::vector<std::string> names);

struct Plan {
  std::vector<OutputTensor> outputs;
  std::vector<Chunk> chunks;  // in read order: per source ascending offsets, sources interleaved
  std::uint64_t max_chunk_in = 0;
  std::uint64_t max_chunk_out = 0;
  std::uint64_t total_in = 0;
  std::uint64_t total_out = 0;
};

Plan make_plan(const Catalog& catalog, const PlanOptions& options);

// Sinks own the output memory and learn when chunks and tensors complete.
// acquire/commit/tensor_done are called from decode threads concurrently.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void begin(const Catalog& catalog, const Plan& plan) {}
  // Memory for exactly chunk.out_bytes of output. For an assembled output the
  // chunk is the whole tensor (see OutputTensor::assembled), larger than
  // Plan::max_chunk_out.
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
  unsigned threads = 0;                      // decode threads; 0 = hardware concurrency
  std::uint64_t budget_bytes = 64ull << 20;  // input buffer bytes in flight, at most
  std::atomic<bool>* cancel = nullptr;       // set from any thread to cancel the run
  // Progress: bytes produced so far and in total; called from the I/O thread.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress = {};
};

struct RunStats {
  std::uint64_t bytes_read = 0;     // from sources (zero-copy sources count as read)
  std::uint64_t bytes_written = 0;  // produced into the sink
  std::uint64_t chunks = 0;
  double wall_seconds = 0;
  double io_busy_seconds = 0;           // wall time with at least one read in flight
  double io_wait_seconds = 0;           // wall time with reads in flight and no decode running
  double decode_seconds = 0;            // summed over decode threads
  std::uint64_t peak_buffer_bytes = 0;  // input buffer bytes held at once, at most
  // Tensors held whole at once, at most: assembled outputs (GPTQ/AWQ) and
  // inputs read whole (strided, byte-swapped), up to PlanOptions::max_materialize_bytes each.
  std::uint64_t peak_whole_tensor_bytes = 0;
  std::uint64_t buffer_capacity = 0;    // bytes of the preallocated buffer pool
  unsigned threads = 0;
};

// Moves every tensor of `catalog` through `plan` into `sink`. Reads run as
// coroutines on `io` (the context the catalog's sources were opened on), which
// the run drives on a thread of its own for the duration: nothing else may run
// it meanwhile. Decoding runs on a oneTBB flow graph in the run's own arena of
// RunOptions::threads (at most the cores TBB may use), the calling thread one
// of them; nothing process-wide is set, so runs in one process do not limit
// each other.
// Throws the first mneme::Error any stage raised (the sink's abort() has run
// by then); never returns with work in flight.
RunStats run_pipeline(boost::asio::io_context& io, const Catalog& catalog, const Plan& plan,
                      Sink& sink, const RunOptions& options);

// The sinks mneme provides are in mneme/sinks.hpp.

}  // namespace mneme
