// The run: reader coroutines on one io_context feed decode threads that
// write straight into sink-owned memory.
//
// Threads: a thread of the run's own drives the io_context: every reader
// coroutine, every source read, and all bookkeeping below marked "io
// thread". The decoders are `threads` loops in the run's oneTBB arena (the
// calling thread one of them) taking jobs from a JobQueue the readers fill;
// they never read a source: they decode bytes the readers brought
// (Codec::decode) or feed them to a TensorStream. (A flow graph's
// function_node fed from the io thread, outside the arena, lost a job about
// once in 200 loads under load on oneTBB 2021.8: every thread asleep, the
// run hung. A decoder now sleeps only in the queue.)
//
// Memory: everything the run holds is counted against one budget (Budget,
// io thread): input buffer slots while occupied, each output's companions,
// assembled tensor, stream state and conversion scratch while it is in
// flight. Each reservation waits for room; a tensor whose own needs exceed
// the budget is refused before any read.
#include <tbb/info.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <new>
#include <optional>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "mneme/error.hpp"
#include "mneme/pipeline.hpp"
#include "pipeline/buffers.hpp"
#include "pipeline/job_queue.hpp"
#include "pipeline/plan_detail.hpp"
#include "src/formats/tensor_stream.hpp"
#include "src/schemes/codec.hpp"

// Under AddressSanitizer the bytes of an input slot past the read it holds
// are poisoned, so a decoder reading past its chunk is reported even though
// the next slot's memory lies right behind it.
#if defined(__SANITIZE_ADDRESS__)
#define MNEME_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MNEME_ASAN 1
#endif
#endif
#ifdef MNEME_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace mneme {
namespace {

namespace asio = boost::asio;

void poison(const std::byte* p, std::size_t n) {
#ifdef MNEME_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

void unpoison(const std::byte* p, std::size_t n) {
#ifdef MNEME_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}
using Clock = std::chrono::steady_clock;
using DoneChannel = asio::experimental::channel<void(boost::system::error_code)>;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Bytes held against the run's budget (io thread). A reservation that does
// not fit waits; waiters are served first-fit in arrival order, so that a
// large reservation never holds back the small ones that let the run move.
class Budget {
 public:
  Budget(asio::io_context& io, std::uint64_t limit) : io_(io), limit_(limit) {}
  std::uint64_t limit() const { return limit_; }
  std::uint64_t held() const { return held_; }
  std::uint64_t peak() const { return peak_; }

  // True once `bytes` are held, with `headroom` bytes still free beside them
  // when granted; false when the run stopped first.
  asio::awaitable<bool> reserve(std::uint64_t bytes, std::uint64_t headroom = 0) {
    if (closed_) {
      co_return false;
    }
    if (fits(bytes, headroom)) {
      take(bytes);
      co_return true;
    }
    asio::steady_timer wake(io_, asio::steady_timer::time_point::max());
    auto waiter = waiters_.insert(waiters_.end(), Waiter{bytes, headroom, &wake, false});
    boost::system::error_code ec;
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const bool granted = waiter->granted;
    waiters_.erase(waiter);
    co_return granted;
  }
  void release(std::uint64_t bytes) {
    held_ -= bytes;
    for (auto& w : waiters_) {
      if (!w.granted && !closed_ && fits(w.bytes, w.headroom)) {
        take(w.bytes);
        w.granted = true;
        w.wake->cancel();
      }
    }
  }
  // The run is stopping: every waiter leaves empty-handed.
  void close() {
    closed_ = true;
    for (auto& w : waiters_) {
      w.wake->cancel();
    }
  }

 private:
  struct Waiter {
    std::uint64_t bytes;
    std::uint64_t headroom;
    asio::steady_timer* wake;
    bool granted;
  };
  bool fits(std::uint64_t bytes, std::uint64_t headroom) const {
    // The first reservation always fits alone (choose_budget checked it).
    return held_ + bytes + headroom <= limit_ || (held_ == 0 && bytes <= limit_);
  }
  void take(std::uint64_t bytes) {
    held_ += bytes;
    peak_ = std::max(peak_, held_);
  }
  asio::io_context& io_;
  std::uint64_t limit_;
  std::uint64_t held_ = 0;
  std::uint64_t peak_ = 0;
  bool closed_ = false;
  std::list<Waiter> waiters_;
};

struct Job {
  std::size_t chunk = 0;  // for a stream piece, the output's first chunk
  const std::byte* input = nullptr;
  std::uint64_t length = 0;  // stream pieces: bytes at `input`
  bool piece = false;        // a piece of a stream output
  bool last_piece = false;
  int slot = -1;           // input buffer slot, -1 for zero-copy input
  std::uint64_t held = 0;  // budget bytes the job's input holds
  // Nothing to convert, in a contiguous source: the decoder copies the chunk
  // with Source::read_at (a mapped file: pread, which skips the mapping's
  // page tables; perf-experiments P12), so it is not prefetched.
  bool read_by_decoder = false;
};

// Per output: its codec, and what its first chunk prepares (io thread) for
// all of them: the budget it holds, its companions, its assembled tensor or
// its stream.
struct OutputRun {
  std::unique_ptr<Codec> codec;
  std::atomic<std::uint64_t> remaining{0};  // work chunks left

  enum class State : std::uint8_t { none, opening, open, failed };
  State state = State::none;                   // io thread
  std::unique_ptr<asio::steady_timer> opened;  // cancelled once open (or failed)
  std::uint64_t reserved = 0;                  // budget held until the output is done
  std::vector<std::vector<std::byte>> companions;

  // Assembled outputs: the whole tensor as one chunk, and the sink memory
  // (acquired by the first decode: sinks are called on decode threads only).
  Chunk whole;
  std::once_flag whole_acquired;
  std::span<std::byte> whole_out;

  // Stream outputs: the stream, its chunks in order, the one being filled.
  std::unique_ptr<TensorStream> stream;
  std::unique_ptr<DoneChannel> piece_done;  // the previous piece's job ended
  std::vector<std::size_t> stream_chunks;
  std::size_t filling = 0;
  std::uint64_t filled = 0;
  std::span<std::byte> fill_out;
  std::vector<std::byte> scratch;
  bool last_ready = false;  // the last chunk is full, held back until the stream's end checks
};

// Chunks of one source (lanes_[i] is catalog source i), in plan order; a
// sequential source is read by exactly one coroutine, the random-access ones
// by a set of readers they share. A stream output appears once, as its first
// chunk.
struct Lane {
  std::vector<std::size_t> chunks;
  std::size_t next = 0;
};

class Run {
 public:
  Run(asio::io_context& io, const Catalog& catalog, const Plan& plan, Sink& sink,
      const RunOptions& opt)
      : io_(io),
        catalog_(catalog),
        plan_(plan),
        detail_(*plan.detail),
        sink_(sink),
        opt_(opt),
        // At most the cores TBB may use: its worker pool (cores - 1, plus the
        // calling thread) is all a run can have without a process-wide setting.
        threads_(std::clamp(opt.threads ? opt.threads : std::thread::hardware_concurrency(), 1u,
                            cores())),
        outputs_(plan.outputs.size()) {}

  ~Run() { unpoison(region_.data(), region_.size()); }  // before the unmapping
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  RunStats execute();

 private:
  void prepare_outputs();
  std::uint64_t choose_budget();
  void make_slots(std::uint64_t budget);
  asio::awaitable<void> read_lane(Lane& lane);
  asio::awaitable<void> read_lanes_in_turn();
  // Reads the lane's next chunk (or starts its stream); false when the run
  // is stopping.
  asio::awaitable<bool> read_next(Lane& lane);
  asio::awaitable<void> read_stream(std::uint32_t output);
  // Input for chunk `c` (a buffer slot holding its bytes, or a pointer into a
  // contiguous source); false when the run is stopping.
  asio::awaitable<bool> read_input(const Extent& in, Job& job);
  // Job::read_by_decoder for chunk c.
  bool read_by_decoder(const Chunk& c) const {
    return !detail_.outputs[c.output].assembled && outputs_[c.output].codec->copies() &&
           catalog_.sources[c.input.source]->contiguous() != nullptr;
  }
  // Prepares `output` for its chunks when its first one is reached: budget,
  // companions, assembled tensor, stream. Later callers wait for the first.
  // False when the run is stopping.
  asio::awaitable<bool> open_output(std::uint32_t output);
  void submit(Job job);
  void decode(Job job);
  void decode_chunk(const Job& job);
  void decode_piece(const Job& job);
  void fill(std::uint32_t output, std::span<const std::byte> elements);
  void deliver(std::uint32_t output, std::size_t chunk, std::span<std::byte> out);
  void work_done(std::uint32_t output);
  void release_input(const Job& job);  // io thread
  void return_slot(int slot) {         // io thread
    poison(region_.data() + static_cast<std::size_t>(slot) * slot_bytes_, slot_bytes_);
    slot_stack_.push_back(slot);
    free_slots_->release(1);
  }
  void job_finished(const Job& job, std::uint64_t bytes_out);  // io thread
  void chunk_done(std::uint64_t bytes_out);                    // io thread
  void reader_finished(std::exception_ptr e);                  // io thread
  void maybe_finish();                                         // io thread
  void watch_cancel();                                         // io thread
  void record_error(std::exception_ptr e);
  bool stopped() const {
    return stop_.load(std::memory_order_relaxed) ||
           (opt_.cancel && opt_.cancel->load(std::memory_order_relaxed));
  }
  void check_stopped() const {
    if (stopped()) {
      fail(ErrorKind::cancelled, "the run is stopping");
    }
  }
  const TensorInfo& tensor(std::uint32_t output) const {
    return catalog_.tensors.at(plan_.outputs[output].source_tensor);
  }

  asio::io_context& io_;
  const Catalog& catalog_;
  const Plan& plan_;
  const PlanDetail& detail_;
  Sink& sink_;
  const RunOptions& opt_;
  // The cores TBB may use (asked once per process).
  static unsigned cores() {
    static const auto n = static_cast<unsigned>(std::max(1, tbb::info::default_concurrency()));
    return n;
  }
  // The io thread fills a mapping's page tables ahead of the decoders only
  // where it has a core of its own: with every core decoding it would take
  // their time (docs/perf-experiments.md, P8).
  bool prefetch() const { return threads_ < cores(); }

  unsigned threads_;
  std::uint64_t sink_held_ = 0;  // Sink::held_bytes, taken off the top of the budget

  std::vector<OutputRun> outputs_;
  std::vector<Lane> lanes_;  // one per source
  std::optional<Budget> budget_;
  std::optional<Budget> open_streams_;  // streams being read at once, at most threads_

  // Input buffer slots (io thread).
  pipeline::HugeRegion region_;
  std::size_t slot_bytes_ = 0;
  std::size_t slot_count_ = 0;
  // Free slots, the last returned first (its pages are warm); a slot is
  // taken only after `free_slots_` granted one.
  std::vector<int> slot_stack_;
  std::optional<Budget> free_slots_;

  // Run state (io thread unless atomic).
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::size_t readers_alive_ = 0;
  std::size_t jobs_in_flight_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
  pipeline::JobQueue<Job>* jobs_ = nullptr;  // the decoders' work, pushed by the io thread
  std::optional<asio::steady_timer> cancel_watch_;

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
  std::uint64_t whole_held_ = 0;  // io thread
  std::uint64_t whole_peak_ = 0;
};

void Run::record_error(std::exception_ptr e) {
  {
    std::lock_guard lock(error_mutex_);
    if (!error_) {
      error_ = e;
    }
  }
  stop_.store(true);
  // Wake readers waiting for a buffer, the budget or a job; they see the
  // closed channel (or a refused reservation) and leave.
  asio::post(io_, [this] {
    free_slots_->close();
    budget_->close();
    open_streams_->close();
    for (auto& o : outputs_) {
      if (o.piece_done) {
        o.piece_done->close();
      }
    }
  });
}

asio::awaitable<bool> Run::read_input(const Extent& in, Job& job) {
  Source& src = *catalog_.sources.at(in.source);
  stats_.bytes_read += in.length;
  if (const std::byte* base = src.contiguous()) {
    if (!job.read_by_decoder && prefetch()) {
      src.prefetch(in.offset, in.length);  // here, on the io thread, not in a decoder
    }
    job.input = base + in.offset;  // the parser checked the extent against size()
    co_return true;
  }
  if (!co_await budget_->reserve(in.length)) {
    co_return false;
  }
  job.held = in.length;
  if (!co_await free_slots_->reserve(1)) {
    budget_->release(job.held);
    co_return false;  // the run is stopping
  }
  const int slot = slot_stack_.back();
  slot_stack_.pop_back();
  job.slot = slot;
  std::byte* buf = region_.data() + static_cast<std::size_t>(slot) * slot_bytes_;
  unpoison(buf, in.length);
  if (reads_in_flight_++ == 0) {
    io_busy_since_ = Clock::now();
  }
  const auto read_done = [&] {
    if (--reads_in_flight_ == 0) {
      stats_.io_busy_seconds += seconds(Clock::now() - io_busy_since_);
    }
  };
  try {
    co_await src.async_read_at(in.offset, {buf, in.length});
  } catch (...) {
    read_done();
    budget_->release(job.held);
    return_slot(slot);
    throw;
  }
  read_done();
  job.input = buf;
  co_return true;
}

void Run::submit(Job job) {
  ++jobs_in_flight_;
  jobs_->push(job);
}

// A sequential source's one reader. (`if (!co_await ...)` inside these loops
// compiled to an illegal instruction with GCC 12: the result is named first.)
asio::awaitable<void> Run::read_lane(Lane& lane) {
  while (!stopped() && lane.next < lane.chunks.size()) {
    const bool more = co_await read_next(lane);
    if (!more) {
      co_return;
    }
  }
}

// The readers of every random-access source, shared: each takes the next
// chunk of the first source that has one left, so a sharded model's shards
// are read in turn and its first tensors complete first, with as many reads
// in flight as one source would have had.
asio::awaitable<void> Run::read_lanes_in_turn() {
  for (std::size_t at = 0; !stopped() && at < lanes_.size();) {
    Lane& lane = lanes_[at];
    if (catalog_.sources[at]->sequential() || lane.next >= lane.chunks.size()) {
      ++at;
      continue;
    }
    const bool more = co_await read_next(lane);
    if (!more) {
      co_return;
    }
  }
}

asio::awaitable<bool> Run::read_next(Lane& lane) {
  const std::size_t index = lane.chunks[lane.next++];
  const Chunk& c = plan_.chunks[index];
  if (detail_.outputs[c.output].stream) {  // opened by read_stream, once it may run
    if (catalog_.sources.at(c.input.source)->sequential()) {
      co_await read_stream(c.output);  // a stream source is read in order, by this reader alone
    } else {
      // A reader of its own, so that streams decode side by side (as many
      // as open_streams_ allows) while the others read on.
      ++readers_alive_;
      asio::co_spawn(io_, read_stream(c.output),
                     [this](std::exception_ptr e) { reader_finished(e); });
    }
    co_return !stopped();
  }
  if (!co_await open_output(c.output)) {
    co_return false;
  }
  Job job{index};
  job.read_by_decoder = read_by_decoder(c);
  if (!co_await read_input(c.input, job)) {
    co_return false;
  }
  submit(job);
  co_return true;
}

// The stored bytes of a stream output, front to back, a piece at a time;
// each piece's job is submitted once the previous one has ended (a stream
// decodes in order), while the next piece is being read.
asio::awaitable<void> Run::read_stream(std::uint32_t output) {
  const PlanDetail::Output& d = detail_.outputs[output];
  OutputRun& o = outputs_[output];
  const Extent& in = d.stream_input;
  // A stream decodes on one thread at a time: more streams open than decode
  // threads would only hold buffers.
  if (!co_await open_streams_->reserve(1)) {
    co_return;
  }
  struct Close {
    Budget& streams;
    ~Close() { streams.release(1); }
  } close{*open_streams_};
  // Its memory is taken only now: a stream waiting for its turn holds nothing.
  if (!co_await open_output(output)) {
    co_return;
  }
  bool first = true;
  for (std::uint64_t at = 0; !stopped();) {
    const std::uint64_t n = std::min(d.piece_bytes, in.length - at);
    Job job{o.stream_chunks.front()};
    job.piece = true;
    job.length = n;
    job.last_piece = at + n == in.length;
    if (!co_await read_input(Extent{in.source, in.offset + at, n}, job)) {
      co_return;
    }
    if (!first) {
      auto [ec] = co_await o.piece_done->async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        release_input(job);  // closed: the run is stopping
        co_return;
      }
    }
    submit(job);
    first = false;
    at += n;
    if (job.last_piece) {
      co_return;
    }
  }
}

asio::awaitable<bool> Run::open_output(std::uint32_t output) {
  OutputRun& o = outputs_[output];
  if (o.state == OutputRun::State::open) {
    co_return true;
  }
  if (o.state == OutputRun::State::failed) {
    co_return false;
  }
  if (o.state == OutputRun::State::opening) {
    boost::system::error_code ec;  // operation_aborted: the opener is done
    co_await o.opened->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return o.state == OutputRun::State::open;
  }
  o.state = OutputRun::State::opening;
  o.opened = std::make_unique<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
  const PlanDetail::Output& d = detail_.outputs[output];
  const TensorInfo& t = tensor(output);
  bool ok = false;
  try {
    // What an output holds leaves room for one read, so that holds granted
    // to outputs opened side by side can never starve the reads that would
    // finish them (choose_budget checked hold + read against the budget).
    ok = co_await budget_->reserve(d.hold_bytes, plan_.max_chunk_in);
    if (ok) {
      o.reserved = d.hold_bytes;
      whole_held_ += d.whole_bytes;
      whole_peak_ = std::max(whole_peak_, whole_held_);
      // Companions: read whole, then bound to the codec (which checks them).
      const std::vector<Extent> extents = o.codec->companions();
      o.companions.resize(extents.size());
      std::vector<std::span<const std::byte>> bytes;
      for (std::size_t i = 0; i < extents.size(); ++i) {
        Source& src = *catalog_.sources.at(extents[i].source);
        if (src.sequential()) {
          fail(ErrorKind::unsupported, "tensor \"" + printable(t.name) +
                                           "\": quantized weights need a random-access source");
        }
        o.companions[i].resize(extents[i].length);
        co_await src.async_read_at(extents[i].offset, o.companions[i]);
        stats_.bytes_read += extents[i].length;
        bytes.emplace_back(o.companions[i]);
      }
      if (!extents.empty()) {
        o.codec->bind(bytes);
      }
      if (d.assembled) {
        o.whole = Chunk{output, Extent{}, 0, plan_.outputs[output].bytes, t.element_count()};
      }
      if (d.stream) {
        o.stream = std::make_unique<TensorStream>(t, catalog_.sources.at(t.data.source)->name());
        o.scratch.resize(d.scratch_bytes);
        o.piece_done = std::make_unique<DoneChannel>(io_, 1);
        if (stopped()) {
          o.piece_done->close();
        }
      }
    }
  } catch (...) {
    o.state = OutputRun::State::failed;
    o.opened->cancel();
    throw;
  }
  o.state = ok ? OutputRun::State::open : OutputRun::State::failed;
  o.opened->cancel();
  co_return ok;
}

void Run::decode(Job job) {
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
      if (job.piece) {
        decode_piece(job);  // commits (and reports) the chunks the piece completes
      } else {
        decode_chunk(job);
        produced = plan_.chunks[job.chunk].out_bytes;
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

void Run::decode_chunk(const Job& job) {
  const Chunk& c = plan_.chunks[job.chunk];
  OutputRun& o = outputs_[c.output];
  const bool assembled = detail_.outputs[c.output].assembled;
  if (assembled) {
    std::call_once(o.whole_acquired, [&] {
      o.whole_out = sink_.acquire(o.whole);
      if (o.whole_out.size() != o.whole.out_bytes) {
        fail(ErrorKind::io, "sink gave an output span of the wrong size");
      }
    });
  }
  std::span<std::byte> out = assembled ? o.whole_out : sink_.acquire(c);
  if (!assembled && out.size() != c.out_bytes) {
    fail(ErrorKind::io, "sink gave an output span of the wrong size");
  }
  Source& src = *catalog_.sources[c.input.source];
  if (job.read_by_decoder) {
    src.read_at(c.input.offset, out);
  } else {
    const std::uint64_t first = c.out_offset / dtype_size(plan_.outputs[c.output].dtype);
    o.codec->decode(first, c.elements, job.input, out);
    src.check_intact();  // a mapping that lost pages decoded zeros
  }
  if (!assembled) {
    sink_.commit(c, out);
  }
  work_done(c.output);
}

// One chunk of an output's work is done; the last one completes the output.
void Run::work_done(std::uint32_t output) {
  OutputRun& o = outputs_[output];
  if (o.remaining.fetch_sub(1) != 1) {
    return;
  }
  if (detail_.outputs[output].assembled) {
    sink_.commit(o.whole, o.whole_out);
  }
  sink_.tensor_done(output);
  // What the output held goes back to the budget (io thread; no decode of it remains).
  asio::post(io_, [this, output] {
    OutputRun& done = outputs_[output];
    done.companions = {};
    done.stream.reset();
    done.scratch = {};
    whole_held_ -= detail_.outputs[output].whole_bytes;
    budget_->release(done.reserved);
    done.reserved = 0;
  });
}

// A piece of a stream output's stored bytes: the stream turns it into
// elements, which fill the output's chunks in order. The last chunk is held
// back until the stream's end has been checked (exact size, CRC-32), so a
// corrupt member never completes its tensor.
void Run::decode_piece(const Job& job) {
  const std::uint32_t output = plan_.chunks[job.chunk].output;
  OutputRun& o = outputs_[output];
  const TensorStream::Emit emit = [&](std::span<const std::byte> e) { fill(output, e); };
  o.stream->feed({job.input, job.length}, emit);
  catalog_.sources[detail_.outputs[output].stream_input.source]->check_intact();
  if (!job.last_piece) {
    return;
  }
  o.stream->finish(emit);
  if (!o.stream_chunks.empty()) {
    if (!o.last_ready) {
      fail(ErrorKind::parse, "tensor \"" + printable(tensor(output).name) +
                                 "\": its stored bytes hold fewer elements than its shape");
    }
    deliver(output, o.stream_chunks.back(), o.fill_out);
  }
}

void Run::fill(std::uint32_t output, std::span<const std::byte> elements) {
  OutputRun& o = outputs_[output];
  const std::size_t in_item = dtype_size(tensor(output).dtype);
  const bool convert = !o.scratch.empty();
  while (!elements.empty()) {
    check_stopped();
    if (o.last_ready || o.filling >= o.stream_chunks.size()) {
      fail(ErrorKind::parse, "tensor \"" + printable(tensor(output).name) +
                                 "\": its stored bytes hold more elements than its shape");
    }
    const std::size_t index = o.stream_chunks[o.filling];
    const Chunk& c = plan_.chunks[index];
    if (o.fill_out.empty()) {
      o.fill_out = sink_.acquire(c);
      if (o.fill_out.size() != c.out_bytes) {
        fail(ErrorKind::io, "sink gave an output span of the wrong size");
      }
    }
    const std::uint64_t need = c.elements * in_item;
    std::byte* dst = convert ? o.scratch.data() : o.fill_out.data();
    const std::size_t n = std::min<std::uint64_t>(elements.size(), need - o.filled);
    std::memcpy(dst + o.filled, elements.data(), n);
    o.filled += n;
    elements = elements.subspan(n);
    if (o.filled < need) {
      continue;
    }
    if (convert) {
      o.codec->decode(c.out_offset / dtype_size(plan_.outputs[output].dtype), c.elements,
                      o.scratch.data(), o.fill_out);
    }
    if (o.filling + 1 == o.stream_chunks.size()) {
      o.last_ready = true;  // delivered after the stream's end checks
      continue;
    }
    deliver(output, index, o.fill_out);
    ++o.filling;
    o.filled = 0;
    o.fill_out = {};
  }
}

void Run::deliver(std::uint32_t output, std::size_t index, std::span<std::byte> out) {
  const Chunk& c = plan_.chunks[index];
  sink_.commit(c, out);
  asio::post(io_, [this, n = c.out_bytes] { chunk_done(n); });
  work_done(output);
}

void Run::release_input(const Job& job) {
  if (job.held) {
    budget_->release(job.held);
  }
  if (job.slot >= 0) {
    return_slot(job.slot);
  }
}

void Run::job_finished(const Job& job, std::uint64_t bytes_out) {
  --jobs_in_flight_;
  release_input(job);
  if (job.piece) {
    const auto& o = outputs_[plan_.chunks[job.chunk].output];
    if (o.piece_done) {
      o.piece_done->try_send(boost::system::error_code{});  // fails only once closed
    }
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
    if (cancel_watch_) cancel_watch_->cancel();
  }
}

// RunOptions::cancel, looked at every 50 ms: a reader waiting for memory or
// for a slow source is woken like on an error (record_error closes what it waits on).
void Run::watch_cancel() {
  cancel_watch_->expires_after(std::chrono::milliseconds(50));
  cancel_watch_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // the run has ended
    if (opt_.cancel->load()) {
      record_error(std::make_exception_ptr(Error(ErrorKind::cancelled, "the run was cancelled")));
      return;
    }
    watch_cancel();
  });
}

// Codecs, work counts and lanes; every check that needs no I/O.
void Run::prepare_outputs() {
  if (!plan_.detail || detail_.outputs.size() != plan_.outputs.size()) {
    fail(ErrorKind::limit, "plan: not made by make_plan");
  }
  for (std::size_t i = 0; i < plan_.outputs.size(); ++i) {
    const OutputTensor& out = plan_.outputs[i];
    const PlanDetail::Output& d = detail_.outputs[i];
    std::optional<OutType> to;
    if (out.dtype == DType::f32 || out.dtype == DType::f16 || out.dtype == DType::bf16) {
      to = out.dtype == DType::f32   ? OutType::f32
           : out.dtype == DType::f16 ? OutType::f16
                                     : OutType::bf16;
    }
    outputs_[i].codec = make_codec(tensor(static_cast<std::uint32_t>(i)), to);
    if (outputs_[i].codec->output() != out.dtype) {
      fail(ErrorKind::limit, "plan: output type differs from its codec's");
    }
    outputs_[i].remaining.store(d.work_chunks);
  }
  lanes_.resize(catalog_.sources.size());
  for (std::size_t i = 0; i < plan_.chunks.size(); ++i) {
    const Chunk& c = plan_.chunks[i];
    auto& list = outputs_.at(c.output).stream_chunks;
    if (detail_.outputs[c.output].stream) {
      if (list.empty()) {
        lanes_.at(c.input.source).chunks.push_back(i);
      }
      list.push_back(i);
      continue;
    }
    lanes_.at(c.input.source).chunks.push_back(i);
  }
  // A stream fills its output front to back: its chunks must tile it in order.
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    auto& list = outputs_[i].stream_chunks;
    std::sort(list.begin(), list.end(), [&](std::size_t a, std::size_t b) {
      return plan_.chunks[a].out_offset < plan_.chunks[b].out_offset;
    });
    const TensorInfo& t = tensor(static_cast<std::uint32_t>(i));
    const bool convert = outputs_[i].codec->output() != t.dtype;
    std::uint64_t at = 0;
    for (std::size_t k : list) {
      const Chunk& c = plan_.chunks[k];
      if (c.out_offset != at ||
          (convert && c.elements * dtype_size(t.dtype) > detail_.outputs[i].scratch_bytes)) {
        fail(ErrorKind::limit, "plan: chunks of a stream output do not tile it");
      }
      at += c.out_bytes;
    }
    if (!list.empty() && at != plan_.outputs[i].bytes) {
      fail(ErrorKind::limit, "plan: chunks of a stream output do not cover it");
    }
  }
}

// The budget: RunOptions::budget_bytes, or by default 64 MiB raised to what
// the largest tensor needs, plus what the sink holds. What the sink holds for
// the whole run comes off the top; every tensor must fit the rest on its own:
// what it holds while in flight plus one input buffer. Returns the part left
// to the run.
std::uint64_t Run::choose_budget() {
  std::uint64_t largest = 0;
  std::size_t largest_output = 0;
  for (std::size_t i = 0; i < plan_.outputs.size(); ++i) {
    const PlanDetail::Output& d = detail_.outputs[i];
    if (d.work_chunks == 0) {
      continue;
    }
    const Source& src = *catalog_.sources.at(tensor(static_cast<std::uint32_t>(i)).data.source);
    const std::uint64_t need = d.hold_bytes + (src.contiguous() ? 0 : d.read_bytes);
    if (need > largest) {
      largest = need;
      largest_output = i;
    }
  }
  if (opt_.budget_bytes == 0) {
    return std::max<std::uint64_t>(64ull << 20, largest);
  }
  if (sink_held_ > opt_.budget_bytes || largest > opt_.budget_bytes - sink_held_) {
    if (largest <= opt_.budget_bytes) {
      fail(ErrorKind::limit, "the sink holds " + std::to_string(sink_held_) +
                                 " bytes for the run (its staging), and tensor \"" +
                                 printable(plan_.outputs[largest_output].name) + "\" needs " +
                                 std::to_string(largest) + " more, above the budget of " +
                                 std::to_string(opt_.budget_bytes) + " bytes");
    }
    const PlanDetail::Output& d = detail_.outputs[largest_output];
    fail(ErrorKind::limit,
         "tensor \"" + printable(plan_.outputs[largest_output].name) + "\" needs a budget of " +
             std::to_string(largest) + " bytes (" + std::to_string(d.hold_bytes) +
             " held while it decodes, " + std::to_string(largest - d.hold_bytes) +
             " per read), above the budget of " + std::to_string(opt_.budget_bytes) + " bytes");
  }
  return opt_.budget_bytes - sink_held_;
}

// Input buffer slots: page-aligned where the budget allows, never more than
// the budget (less what one output may hold) or the buffered reads can use.
void Run::make_slots(std::uint64_t budget) {
  std::size_t buffered = 0;
  std::uint64_t largest_hold = 0;
  for (const auto& lane : lanes_) {
    for (std::size_t i : lane.chunks) {
      const Chunk& c = plan_.chunks[i];
      const PlanDetail::Output& d = detail_.outputs[c.output];
      largest_hold = std::max(largest_hold, d.hold_bytes);
      if (catalog_.sources[c.input.source]->contiguous() == nullptr) {
        buffered += d.stream ? std::max<std::uint64_t>(
                                   1, (d.stream_input.length + d.piece_bytes - 1) / d.piece_bytes)
                             : 1;
      }
    }
  }
  free_slots_.emplace(io_, 0);
  if (buffered == 0 || plan_.max_chunk_in == 0) {
    return;
  }
  const std::size_t aligned = (plan_.max_chunk_in + 4095) & ~std::size_t{4095};
  slot_bytes_ = aligned <= budget ? aligned : plan_.max_chunk_in;
  const std::uint64_t room =
      budget > largest_hold + slot_bytes_ ? budget - largest_hold : slot_bytes_;
  slot_count_ = std::clamp<std::size_t>(room / slot_bytes_, 1, buffered);
  region_ = pipeline::HugeRegion(slot_count_ * slot_bytes_);
  poison(region_.data(), region_.size());  // each read unpoisons what it fills
  stats_.buffer_capacity = slot_count_ * slot_bytes_;
  free_slots_.emplace(io_, slot_count_);
  for (std::size_t s = slot_count_; s-- > 0;) {
    slot_stack_.push_back(static_cast<int>(s));
  }
}

RunStats Run::execute() {
  const auto t0 = Clock::now();
  stats_.threads = threads_;
  prepare_outputs();
  if (plan_.max_chunk_in > 0 && opt_.budget_bytes != 0 && opt_.budget_bytes < plan_.max_chunk_in) {
    fail(ErrorKind::limit, "budget of " + std::to_string(opt_.budget_bytes) +
                               " bytes is smaller than one chunk (" +
                               std::to_string(plan_.max_chunk_in) + " bytes)");
  }
  sink_held_ = sink_.held_bytes(plan_, threads_);
  const std::uint64_t budget = choose_budget();
  budget_.emplace(io_, budget);
  open_streams_.emplace(io_, threads_);
  stats_.budget_bytes = budget + sink_held_;
  make_slots(budget);

  try {
    sink_.begin(catalog_, plan_);
    for (std::size_t i = 0; i < plan_.outputs.size(); ++i) {
      if (detail_.outputs[i].work_chunks == 0) {
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
  pipeline::JobQueue<Job> jobs;
  jobs_ = &jobs;
  decode_idle_since_ = Clock::now();

  // Readers: one per sequential lane; the random-access lanes share as many
  // as the most any one of them may use.
  guard_.emplace(io_.get_executor());
  if (opt_.cancel) {
    cancel_watch_.emplace(io_);
    watch_cancel();
  }
  std::size_t shared_readers = 0;
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = lanes_[i];
    if (lane.chunks.empty()) {
      continue;
    }
    const Source& src = *catalog_.sources[i];
    if (src.sequential()) {
      ++readers_alive_;
      asio::co_spawn(io_, read_lane(lane), [this](std::exception_ptr e) { reader_finished(e); });
      continue;
    }
    shared_readers = std::max(
        shared_readers, src.contiguous() ? std::size_t{1}
                                         : std::clamp<std::size_t>(
                                               slot_count_, 1, std::max(1u, src.concurrency())));
  }
  for (std::size_t r = 0; r < shared_readers; ++r) {
    ++readers_alive_;
    asio::co_spawn(io_, read_lanes_in_turn(), [this](std::exception_ptr e) { reader_finished(e); });
  }
  maybe_finish();
  // The decoders take jobs from the queue until the io thread has ended
  // (every read done, every job finished, or the run failed).
  std::thread io_thread([&] {
    try {
      io_.restart();
      io_.run();
    } catch (...) {
      record_error(std::current_exception());
    }
    jobs.close();
  });
  arena.execute([&] {
    const auto decode_jobs = [&] {
      while (std::optional<Job> job = jobs.pop()) {
        decode(*job);
      }
    };
    tbb::task_group decoders;
    for (unsigned i = 1; i < threads_; ++i) {
      decoders.run(decode_jobs);
    }
    decode_jobs();
    decoders.wait();
  });
  io_thread.join();

  stats_.decode_seconds = static_cast<double>(decode_ns_.load()) * 1e-9;
  stats_.io_wait_seconds = seconds(decode_idle_);
  stats_.bytes_written = bytes_done_;
  stats_.peak_buffer_bytes = budget_->peak() + sink_held_;
  stats_.peak_whole_tensor_bytes = whole_peak_;
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
