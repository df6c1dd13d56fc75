// The run: reader coroutines on one io_context feed a oneTBB flow graph whose
// decode node writes straight into sink-owned memory.
//
// Threads: the calling thread runs the io_context (every reader coroutine and
// all bookkeeping below marked "io thread"); `threads` TBB workers run the
// kernels. Input buffers are slots of one preallocated region; a slot goes
// back to the readers as soon as its kernel ends (the backpressure).
#include <tbb/flow_graph.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/sources.hpp"
#include "mneme/error.hpp"
#include "mneme/pipeline.hpp"
#include "pipeline/buffers.hpp"
#include "pipeline/decoder.hpp"
#include "src/formats/inflate.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/zip.hpp"

namespace mneme {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using SlotChannel = asio::experimental::channel<void(boost::system::error_code, int)>;
using DoneChannel = asio::experimental::channel<void(boost::system::error_code)>;
using pipeline::Decoder;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Lane;

struct Job {
  std::size_t chunk = 0;  // for an inflating output, its first chunk
  const std::byte* input = nullptr;
  int slot = -1;           // input buffer slot, -1 for zero-copy input
  std::uint64_t held = 0;  // bytes of the slot counted against the budget
  // A decoder that reads through a sequential source itself: its lane waits
  // for the job to end before it reads on.
  Lane* lane = nullptr;
  std::uint64_t read = 0;  // source bytes the decoder read itself
  // A materialized tensor: its stored bytes (the zip member around it, when it
  // has one), read by the reader from source offset stored_at.
  std::shared_ptr<std::vector<std::byte>> stored;
  std::uint64_t stored_at = 0;
};

// The stored bytes a materialized tensor's normalisation reads: its extent,
// widened to its whole zip member (whose CRC-32 is checked).
std::pair<std::uint64_t, std::uint64_t> stored_range(const TensorInfo& t) {
  std::uint64_t lo = t.data.offset;
  std::uint64_t hi = t.data.offset + t.data.length;  // the parser checked both against size()
  if (const auto& m = t.layout.zip_member) {
    lo = std::min(lo, m->offset);
    hi = std::max(hi, m->offset + m->length);
  }
  return {lo, hi - lo};
}

// A materialized tensor in C order, little-endian, from the stored bytes the
// reader brought (no I/O: read_tensor_bytes reads them from memory).
std::vector<std::byte> normalise_stored(const Catalog& cat, std::size_t index,
                                        const std::vector<std::byte>& stored, std::uint64_t at) {
  const TensorInfo& t = cat.tensors.at(index);
  Catalog one;
  one.format = cat.format;
  one.sources.push_back(make_memory_source(cat.sources.at(t.data.source)->name(),
                                           std::span<const std::byte>(stored)));
  TensorInfo copy = t;
  copy.data.source = 0;
  copy.data.offset -= at;
  if (copy.layout.zip_member) {
    copy.layout.zip_member->offset -= at;
  }
  one.tensors.push_back(std::move(copy));
  return read_tensor_bytes(one, 0);
}

// Chunks of one source, in plan order; random-access sources are read by
// several coroutines at once, sequential ones by exactly one. An inflating
// output appears once, as its first chunk.
struct Lane {
  std::vector<std::size_t> chunks;
  std::size_t next = 0;
  std::unique_ptr<DoneChannel> done;  // a self-reading job on this lane ended
};

class Run {
 public:
  Run(asio::io_context& io, const Catalog& catalog, const Plan& plan, Sink& sink,
      const RunOptions& opt)
      : io_(io),
        catalog_(catalog),
        plan_(plan),
        sink_(sink),
        opt_(opt),
        // At most the cores TBB may use: its worker pool (cores - 1, plus the
        // calling thread) is all a run can have without a process-wide setting.
        threads_(std::clamp(opt.threads ? opt.threads : std::thread::hardware_concurrency(), 1u,
                            static_cast<unsigned>(std::max(1, tbb::info::default_concurrency())))),
        remaining_(plan.outputs.size()) {}

  RunStats execute();

 private:
  asio::awaitable<void> read_lane(Lane& lane);
  // Reads the companions of `output` (scales, zeros...) into its decoder
  // before its first chunk is handed out; later callers wait for the first.
  // False when the run is stopping.
  asio::awaitable<bool> read_companions(std::uint32_t output);
  void decode(Job job);
  void decode_chunk(Job& job);
  void inflate_output(Job& job);
  void chunk_done(std::uint64_t bytes_out);  // io thread
  void prepare(const Chunk& c, Decoder& d);
  void job_finished(const Job& job, std::uint64_t bytes_out);  // io thread
  void reader_finished(std::exception_ptr e);                  // io thread
  void maybe_finish();                                         // io thread
  void record_error(std::exception_ptr e);
  bool stopped() const {
    return stop_.load(std::memory_order_relaxed) ||
           (opt_.cancel && opt_.cancel->load(std::memory_order_relaxed));
  }

  asio::io_context& io_;
  const Catalog& catalog_;
  const Plan& plan_;
  Sink& sink_;
  const RunOptions& opt_;
  unsigned threads_;

  std::unique_ptr<Decoder[]> decoders_;
  std::vector<std::atomic<std::uint64_t>> remaining_;  // chunks left per output
  std::vector<Lane> lanes_;                            // one per source
  // Companions per output (io thread): not read, being read, read (or failed).
  enum class CompanionState : std::uint8_t { none, reading, read, failed };
  std::vector<CompanionState> companion_state_;
  std::vector<std::uint64_t> companion_bytes_;
  std::vector<std::unique_ptr<asio::steady_timer>> companion_ready_;  // cancelled when read
  std::vector<std::vector<std::size_t>> inflate_chunks_;  // per inflating output, in order

  // Input buffer slots (io thread).
  pipeline::HugeRegion region_;
  std::size_t slot_bytes_ = 0;
  std::unique_ptr<SlotChannel> slots_;
  std::uint64_t held_bytes_ = 0;

  // Run state (io thread unless atomic).
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::size_t readers_alive_ = 0;
  std::size_t jobs_in_flight_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
  tbb::flow::function_node<Job>* decode_node_ = nullptr;

  // Statistics.
  RunStats stats_;
  std::uint64_t bytes_done_ = 0;
  unsigned reads_in_flight_ = 0;
  Clock::time_point io_busy_since_;
  std::mutex decode_mutex_;
  unsigned decoding_ = 0;
  Clock::time_point decode_idle_since_;
  Clock::duration decode_idle_{};
  std::atomic<std::uint64_t> decode_ns_{0};
  // Tensors held whole (assembled outputs, materialized inputs), any thread.
  std::atomic<std::uint64_t> whole_held_{0};
  std::atomic<std::uint64_t> whole_peak_{0};
  void hold_whole(std::uint64_t bytes) {
    const std::uint64_t now = whole_held_.fetch_add(bytes) + bytes;
    std::uint64_t peak = whole_peak_.load();
    while (now > peak && !whole_peak_.compare_exchange_weak(peak, now)) {
    }
  }
  void release_whole(std::uint64_t bytes) { whole_held_.fetch_sub(bytes); }
};

void Run::record_error(std::exception_ptr e) {
  {
    std::lock_guard lock(error_mutex_);
    if (!error_) {
      error_ = e;
    }
  }
  stop_.store(true);
  // Wake readers waiting for a buffer or a job; they see the closed channel
  // and leave.
  asio::post(io_, [this] {
    slots_->close();
    for (auto& lane : lanes_) {
      lane.done->close();
    }
  });
}

asio::awaitable<void> Run::read_lane(Lane& lane) {
  while (!stopped() && lane.next < lane.chunks.size()) {
    const std::size_t index = lane.chunks[lane.next++];
    const Chunk& c = plan_.chunks[index];
    Source& src = *catalog_.sources.at(c.input.source);
    const OutputTensor& o = plan_.outputs[c.output];
    if (!co_await read_companions(c.output)) co_return;
    Job job{index, nullptr, -1};
    if (o.materialize) {
      // Read whole here, normalised by the decoder from memory; no buffer slot.
      const auto [at, length] = stored_range(catalog_.tensors.at(o.source_tensor));
      job.stored = std::make_shared<std::vector<std::byte>>(length);
      job.stored_at = at;
      job.held = length;
      held_bytes_ += job.held;
      stats_.peak_buffer_bytes = std::max(stats_.peak_buffer_bytes, held_bytes_);
      try {
        co_await src.async_read_at(at, *job.stored);
      } catch (...) {
        held_bytes_ -= job.held;
        throw;
      }
    } else if (o.inflate) {
      // The decoder reads the compressed stream itself; the slot is its
      // working memory (Run::inflate_output).
      auto [ec, slot] = co_await slots_->async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        co_return;  // closed: the run is stopping
      }
      job.slot = slot;
      job.held = o.inflate_buffer_bytes;
      held_bytes_ += job.held;
      stats_.peak_buffer_bytes = std::max(stats_.peak_buffer_bytes, held_bytes_);
    } else if (const std::byte* base = src.contiguous()) {
      job.input = base + c.input.offset;  // parser checked the extent against size()
    } else {
      auto [ec, slot] = co_await slots_->async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        co_return;  // closed: the run is stopping
      }
      job.slot = slot;
      job.held = c.input.length;
      std::byte* buf = region_.data() + static_cast<std::size_t>(slot) * slot_bytes_;
      held_bytes_ += job.held;
      stats_.peak_buffer_bytes = std::max(stats_.peak_buffer_bytes, held_bytes_);
      if (reads_in_flight_++ == 0) {
        io_busy_since_ = Clock::now();
      }
      try {
        co_await src.async_read_at(c.input.offset, {buf, c.input.length});
      } catch (...) {
        if (--reads_in_flight_ == 0) {
          stats_.io_busy_seconds += seconds(Clock::now() - io_busy_since_);
        }
        held_bytes_ -= job.held;
        slots_->try_send(boost::system::error_code{}, slot);
        throw;
      }
      if (--reads_in_flight_ == 0) {
        stats_.io_busy_seconds += seconds(Clock::now() - io_busy_since_);
      }
      job.input = buf;
    }
    stats_.bytes_read += c.input.length;
    // A decoder that reads a sequential source itself must have it alone and
    // in order: this lane waits until that job has ended.
    const bool wait = o.inflate && src.sequential();
    if (wait) {
      job.lane = &lane;
    }
    ++jobs_in_flight_;
    decode_node_->try_put(job);
    if (wait) {
      auto [ec] = co_await lane.done->async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        co_return;  // closed: the run is stopping
      }
    }
  }
}

void Run::decode(Job job) {
  const Chunk& c = plan_.chunks[job.chunk];
  std::uint64_t produced = 0;
  if (!stopped()) {
    const auto start = Clock::now();
    {
      std::lock_guard lock(decode_mutex_);
      if (decoding_++ == 0) {
        decode_idle_ += start - decode_idle_since_;
      }
    }
    try {
      if (plan_.outputs[c.output].inflate) {
        inflate_output(job);  // every chunk of the output, each reported as it is committed
      } else {
        decode_chunk(job);
        produced = c.out_bytes;
      }
    } catch (...) {
      record_error(std::current_exception());
    }
    const auto end = Clock::now();
    decode_ns_ += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
    std::lock_guard lock(decode_mutex_);
    if (--decoding_ == 0) {
      decode_idle_since_ = end;
    }
  }
  asio::post(io_, [this, job, produced] { job_finished(job, produced); });
}

void Run::decode_chunk(Job& job) {
  const Chunk& c = plan_.chunks[job.chunk];
  Decoder& d = decoders_[c.output];
  if (!d.ready.load(std::memory_order_acquire)) {
    prepare(c, d);
  }
  const bool assembled = plan_.outputs[c.output].assembled;
  std::span<std::byte> out = assembled ? d.whole_out : sink_.acquire(c);
  if (!assembled && out.size() != c.out_bytes) {
    fail(ErrorKind::io, "sink gave an output span of the wrong size");
  }
  std::vector<std::byte> whole;
  struct Held {
    Run& run;
    std::uint64_t bytes = 0;
    ~Held() { run.release_whole(bytes); }
  } held{*this};
  if (plan_.outputs[c.output].materialize) {
    whole = normalise_stored(catalog_, plan_.outputs[c.output].source_tensor, *job.stored,
                             job.stored_at);
    job.stored.reset();  // the normalised copy is all the decode needs
    held.bytes = whole.size();
    hold_whole(held.bytes);
    job.input = whole.data();
  }
  d.decode(c, job.input, out);
  if (!assembled) {
    sink_.commit(c, out);
  }
  if (remaining_[c.output].fetch_sub(1) == 1) {
    if (assembled) {
      sink_.commit(d.whole, d.whole_out);
      release_whole(d.whole.out_bytes);
    }
    d.release_companions();  // every chunk of this output is done
    asio::post(io_, [this, n = companion_bytes_[c.output]] { held_bytes_ -= n; });
    sink_.tensor_done(c.output);
  }
}

// A streamed deflated member (OutputTensor::inflate): one zlib stream yields
// the output's chunks in order, each inflated straight into the sink's memory
// (or into the slot's scratch, then converted). Compressed bytes come from a
// contiguous source in place, or are read synchronously through the source,
// one piece at a time, into the front of the job's slot. The bytes before the
// elements (an NPY header) and after them (the rest of a .pth storage) are
// inflated and dropped. The stream's exact end (Inflater) and the member's
// CRC-32 are checked before the last chunk is committed, so a corrupt member
// never completes its tensor.
void Run::inflate_output(Job& job) {
  const Chunk& first = plan_.chunks[job.chunk];
  const OutputTensor& o = plan_.outputs[first.output];
  const TensorInfo& t = catalog_.tensors.at(o.source_tensor);
  const Layout& layout = t.layout;
  const Decoder& d = decoders_[first.output];
  Source& src = *catalog_.sources.at(t.data.source);
  const std::string what = "tensor \"" + printable(t.name) + "\"";
  if (layout.inflated_offset > layout.inflated_size ||
      layout.inflated_size - layout.inflated_offset < t.byte_size()) {
    fail(ErrorKind::parse, what + ": elements past its inflated size");
  }

  std::byte* work = region_.data() + static_cast<std::size_t>(job.slot) * slot_bytes_;
  std::byte* scratch = work + o.inflate_piece_bytes;  // converted outputs only
  Inflater inf(t.data.length, layout.inflated_size);
  std::uint32_t crc = 0;
  const std::byte* in = nullptr;
  std::uint64_t in_len = 0, in_used = 0;
  if (const std::byte* base = src.contiguous()) {
    in = base + t.data.offset;
    in_len = t.data.length;
    job.read = t.data.length;
  }
  // Next compressed piece, once the current one is used up.
  const auto refill = [&] {
    if (in_used < in_len || job.read == t.data.length) {
      return;
    }
    if (stopped()) {
      fail(ErrorKind::cancelled, "the run is stopping");
    }
    in_len = std::min(o.inflate_piece_bytes, t.data.length - job.read);
    src.read_at(t.data.offset + job.read, {work, in_len});
    in = work;
    in_used = 0;
    job.read += in_len;
  };
  // One step of the stream into dst; returns the bytes produced.
  const auto step = [&](std::span<std::byte> dst) {
    refill();
    const auto p = inf.feed({in + in_used, in_len - in_used}, dst);
    in_used += p.consumed;
    if (p.consumed == 0 && p.produced == 0 && !inf.finished() && in_used == in_len &&
        job.read == t.data.length) {
      fail(ErrorKind::parse, what + ": deflate stream stalls");
    }
    crc = zip::crc32_update(crc, dst.first(p.produced));
    return p.produced;
  };
  // Inflates into the whole of dst.
  const auto fill = [&](std::span<std::byte> dst) {
    while (!dst.empty()) {
      if (inf.finished()) {
        fail(ErrorKind::parse, what + ": deflate stream ends early");
      }
      dst = dst.subspan(step(dst));
    }
  };
  const auto skip = [&](std::uint64_t n) {
    std::byte dropped[16384];
    while (n > 0) {
      const std::size_t k = std::min<std::uint64_t>(n, sizeof dropped);
      fill({dropped, k});
      n -= k;
    }
  };

  skip(layout.inflated_offset);
  const auto& chunks = inflate_chunks_[first.output];
  const std::size_t in_item = dtype_size(t.dtype);
  for (std::size_t k = 0; k < chunks.size(); ++k) {
    if (stopped()) {
      return;
    }
    const Chunk& c = plan_.chunks[chunks[k]];
    std::span<std::byte> out = sink_.acquire(c);
    if (out.size() != c.out_bytes) {
      fail(ErrorKind::io, "sink gave an output span of the wrong size");
    }
    if (d.convert) {
      const std::span<std::byte> elements(scratch, c.elements * in_item);
      fill(elements);
      d.convert(elements.data(), out.data(), c.elements);
    } else {
      fill(out);
    }
    if (k + 1 == chunks.size()) {
      // The rest of the member, then the stream's end: exact sizes, CRC-32.
      skip(layout.inflated_size - layout.inflated_offset - t.byte_size());
      std::byte probe[64];  // Inflater fails if the stream yields more
      while (!inf.finished()) {
        step(probe);
      }
      if (layout.zip_member) {
        zip::check_crc(src, layout.zip_member->name, layout.zip_member->crc32, crc, what);
      }
    }
    sink_.commit(c, out);
    asio::post(io_, [this, n = c.out_bytes] { chunk_done(n); });
    if (remaining_[c.output].fetch_sub(1) == 1) {
      sink_.tensor_done(c.output);
    }
  }
}

// The first chunk of an output to arrive reads its companions and, for an
// assembled output, acquires the whole tensor from the sink; later chunks of
// it wait here until that is done.
asio::awaitable<bool> Run::read_companions(std::uint32_t output) {
  const TensorInfo& t = catalog_.tensors.at(plan_.outputs[output].source_tensor);
  auto& state = companion_state_[output];
  if (state == CompanionState::read) {
    co_return true;
  }
  if (state == CompanionState::failed) {
    co_return false;
  }
  if (state == CompanionState::none &&
      (t.encoding == Encoding::plain || t.encoding == Encoding::gguf_blocks ||
       t.quant.companions.empty())) {
    state = CompanionState::read;
    co_return true;
  }
  if (state == CompanionState::reading) {
    boost::system::error_code ec;  // operation_aborted: the reader is done
    co_await companion_ready_[output]->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return state == CompanionState::read;
  }
  state = CompanionState::reading;
  companion_ready_[output] =
      std::make_unique<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
  Decoder& d = decoders_[output];
  std::uint64_t bytes = 0;
  try {
    d.companions.resize(t.quant.companions.size());
    for (std::size_t i = 0; i < t.quant.companions.size(); ++i) {
      const Companion& comp = t.quant.companions[i];
      if (!Decoder::needs_companion(comp)) {
        continue;
      }
      Source& src = *catalog_.sources.at(comp.data.source);
      if (src.sequential()) {
        fail(ErrorKind::unsupported,
             "tensor \"" + printable(t.name) + "\": quantized weights need a random-access source");
      }
      d.companions[i].resize(comp.data.length);
      bytes += comp.data.length;
      held_bytes_ += comp.data.length;
      stats_.peak_buffer_bytes = std::max(stats_.peak_buffer_bytes, held_bytes_);
      co_await src.async_read_at(comp.data.offset, d.companions[i]);
      stats_.bytes_read += comp.data.length;
    }
  } catch (...) {
    held_bytes_ -= bytes;
    state = CompanionState::failed;
    companion_ready_[output]->cancel();
    throw;
  }
  companion_bytes_[output] = bytes;
  state = CompanionState::read;
  companion_ready_[output]->cancel();
  co_return true;
}

void Run::prepare(const Chunk& c, Decoder& d) {
  std::lock_guard lock(d.mutex);
  if (d.ready.load(std::memory_order_relaxed)) {
    return;
  }
  const OutputTensor& o = plan_.outputs[c.output];
  const TensorInfo& t = catalog_.tensors.at(o.source_tensor);
  d.load_scheme(t);
  if (o.assembled) {
    d.whole = Chunk{c.output, Extent{}, 0, o.bytes, t.element_count()};
    d.whole_out = sink_.acquire(d.whole);
    if (d.whole_out.size() != o.bytes) {
      fail(ErrorKind::io, "sink gave an output span of the wrong size");
    }
    hold_whole(o.bytes);
  }
  d.ready.store(true, std::memory_order_release);
}

void Run::job_finished(const Job& job, std::uint64_t bytes_out) {
  --jobs_in_flight_;
  held_bytes_ -= job.held;
  if (job.slot >= 0) {
    slots_->try_send(boost::system::error_code{}, job.slot);  // fails only once closed
  }
  stats_.bytes_read += job.read;
  if (job.lane) {
    job.lane->done->try_send(boost::system::error_code{});  // fails only once closed
  }
  if (bytes_out) {
    chunk_done(bytes_out);
  }
  maybe_finish();
}

void Run::chunk_done(std::uint64_t bytes_out) {
  bytes_done_ += bytes_out;
  ++stats_.chunks;
  if (opt_.progress) {
    try {
      opt_.progress(bytes_done_, plan_.total_out);
    } catch (...) {
      record_error(std::current_exception());
    }
  }
}

void Run::reader_finished(std::exception_ptr e) {
  if (e) {
    record_error(e);
  }
  --readers_alive_;
  maybe_finish();
}

void Run::maybe_finish() {
  if (readers_alive_ == 0 && jobs_in_flight_ == 0) {
    guard_.reset();
  }
}

RunStats Run::execute() {
  const auto t0 = Clock::now();
  stats_.threads = threads_;

  // Kernels per output (quantized schemes finish preparing on first use).
  decoders_ = std::make_unique<Decoder[]>(plan_.outputs.size());
  companion_state_.assign(plan_.outputs.size(), CompanionState::none);
  companion_bytes_.assign(plan_.outputs.size(), 0);
  companion_ready_.resize(plan_.outputs.size());
  for (std::size_t i = 0; i < plan_.outputs.size(); ++i) {
    const auto& o = plan_.outputs[i];
    const TensorInfo& t = catalog_.tensors.at(o.source_tensor);
    remaining_[i].store(o.chunk_count);
    decoders_[i].init(t, o);
    if (o.inflate) {
      // Working memory (a compressed piece, then room for one chunk's
      // inflated elements when converting) must fit the buffer slots.
      if (o.inflate_piece_bytes == 0 || o.inflate_piece_bytes > o.inflate_buffer_bytes ||
          o.inflate_buffer_bytes > plan_.max_chunk_in) {
        fail(ErrorKind::limit, "plan: inflate working memory does not fit its buffer");
      }
    }
  }

  // Lanes, and the input buffer pool for sources that need reading. An
  // inflating output is one job (its first chunk) that takes a buffer slot
  // as working memory even from a contiguous source.
  lanes_.resize(catalog_.sources.size());
  for (auto& lane : lanes_) {
    lane.done = std::make_unique<DoneChannel>(io_, 1);
  }
  inflate_chunks_.resize(plan_.outputs.size());
  std::size_t buffered_chunks = 0;
  for (std::size_t i = 0; i < plan_.chunks.size(); ++i) {
    const Chunk& c = plan_.chunks[i];
    const OutputTensor& o = plan_.outputs.at(c.output);
    if (o.inflate) {
      const DType stored = catalog_.tensors.at(o.source_tensor).dtype;
      if (stored != o.dtype &&
          c.elements > (o.inflate_buffer_bytes - o.inflate_piece_bytes) / dtype_size(stored)) {
        fail(ErrorKind::limit, "plan: a chunk of an inflating output exceeds its scratch memory");
      }
      auto& list = inflate_chunks_[c.output];
      if (list.empty()) {
        lanes_.at(c.input.source).chunks.push_back(i);
        ++buffered_chunks;
      }
      list.push_back(i);
      continue;
    }
    lanes_.at(c.input.source).chunks.push_back(i);
    buffered_chunks += catalog_.sources[c.input.source]->contiguous() == nullptr;
  }
  // One zlib stream produces an inflating output front to back: its chunks
  // must tile it in order.
  for (std::size_t o = 0; o < plan_.outputs.size(); ++o) {
    auto& list = inflate_chunks_[o];
    std::sort(list.begin(), list.end(), [&](std::size_t a, std::size_t b) {
      return plan_.chunks[a].out_offset < plan_.chunks[b].out_offset;
    });
    std::uint64_t at = 0;
    for (std::size_t i : list) {
      if (plan_.chunks[i].out_offset != at) {
        fail(ErrorKind::limit, "plan: chunks of an inflating output leave gaps");
      }
      at += plan_.chunks[i].out_bytes;
    }
    if (!list.empty() && at != plan_.outputs[o].bytes) {
      fail(ErrorKind::limit, "plan: chunks of an inflating output do not cover it");
    }
  }
  std::size_t slot_count = 0;
  slots_ = std::make_unique<SlotChannel>(io_, 0);
  if (buffered_chunks > 0 && plan_.max_chunk_in > 0) {
    if (opt_.budget_bytes < plan_.max_chunk_in) {
      fail(ErrorKind::limit, "budget of " + std::to_string(opt_.budget_bytes) +
                                 " bytes is smaller than one chunk (" +
                                 std::to_string(plan_.max_chunk_in) + " bytes)");
    }
    // Page-aligned slots where the budget allows; never more slots than chunks.
    const std::size_t aligned = (plan_.max_chunk_in + 4095) & ~std::size_t{4095};
    slot_bytes_ = aligned <= opt_.budget_bytes ? aligned : plan_.max_chunk_in;
    slot_count = std::min<std::size_t>(opt_.budget_bytes / slot_bytes_, buffered_chunks);
    region_ = pipeline::HugeRegion(slot_count * slot_bytes_);
    stats_.buffer_capacity = slot_count * slot_bytes_;
    slots_ = std::make_unique<SlotChannel>(io_, slot_count);
    for (std::size_t s = 0; s < slot_count; ++s) {
      slots_->try_send(boost::system::error_code{}, static_cast<int>(s));
    }
  }

  try {
    sink_.begin(catalog_, plan_);
    for (std::size_t i = 0; i < plan_.outputs.size(); ++i) {
      if (plan_.outputs[i].chunk_count == 0) {
        sink_.tensor_done(i);
      }
    }
  } catch (...) {
    sink_.abort();
    throw;
  }

  // The run's own arena bounds its decode concurrency; nothing process-wide
  // is set, so concurrent runs in one process do not limit each other. The
  // calling thread is one of the decoders (the arena's reserved master slot);
  // the reads run on a thread of their own.
  tbb::task_arena arena(static_cast<int>(threads_), 1);
  std::unique_ptr<tbb::flow::graph> graph;
  std::unique_ptr<tbb::flow::function_node<Job>> node;
  arena.execute([&] {
    graph = std::make_unique<tbb::flow::graph>();
    node = std::make_unique<tbb::flow::function_node<Job>>(*graph, threads_,
                                                           [this](const Job& j) { decode(j); });
  });
  decode_node_ = node.get();
  decode_idle_since_ = Clock::now();

  // Readers: one per sequential lane, several per random-access lane.
  guard_.emplace(io_.get_executor());
  for (auto& lane : lanes_) {
    if (lane.chunks.empty()) {
      continue;
    }
    const Source& src = *catalog_.sources[plan_.chunks[lane.chunks.front()].input.source];
    const std::size_t readers = src.sequential()   ? 1
                                : src.contiguous() ? 1
                                                   : std::clamp<std::size_t>(slot_count, 1, 8);
    for (std::size_t r = 0; r < readers; ++r) {
      ++readers_alive_;
      asio::co_spawn(io_, read_lane(lane), [this](std::exception_ptr e) { reader_finished(e); });
    }
  }
  maybe_finish();
  // The graph is held busy until reading has ended, so the calling thread
  // stays in the arena decoding while the io thread reads.
  graph->reserve_wait();
  std::thread io_thread([&] {
    try {
      io_.restart();
      io_.run();
    } catch (...) {
      record_error(std::current_exception());
    }
    graph->release_wait();
  });
  arena.execute([&] { graph->wait_for_all(); });
  io_thread.join();

  stats_.decode_seconds = static_cast<double>(decode_ns_.load()) * 1e-9;
  stats_.io_wait_seconds = seconds(decode_idle_);
  stats_.bytes_written = bytes_done_;
  stats_.peak_whole_tensor_bytes = whole_peak_.load();
  if (!error_ && opt_.cancel && opt_.cancel->load()) {
    error_ = std::make_exception_ptr(Error(ErrorKind::cancelled, "the run was cancelled"));
  }
  if (!error_) {
    try {
      sink_.finish();
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  if (error_) {
    sink_.abort();
    try {
      std::rethrow_exception(error_);
    } catch (const Error&) {
      throw;
    } catch (const std::bad_alloc&) {
      fail(ErrorKind::limit, "out of memory");
    } catch (const std::exception& e) {
      fail(ErrorKind::io, e.what());
    }
  }
  stats_.wall_seconds = seconds(Clock::now() - t0);
  return stats_;
}

}  // namespace

RunStats run_pipeline(asio::io_context& io, const Catalog& catalog, const Plan& plan, Sink& sink,
                      const RunOptions& options) {
  Run run(io, catalog, plan, sink, options);
  return run.execute();
}

}  // namespace mneme
