// The file sink writes behind the decoders: commit() queues a finished chunk
// for one writer thread and returns, so a decode thread goes back to decoding
// while the kernel-to-page-cache copy of the previous chunk runs beside it
// (with one decode thread, remember took the sum of decode and write time).
// At most kMaxQueued chunks wait; a full queue blocks commit (backpressure),
// so staging memory stays bounded by (decode threads + kMaxQueued + 1) chunks.
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "mneme/error.hpp"
#include "mneme/pipeline.hpp"
#include "pipeline/buffers.hpp"
#include "src/formats/gguf_writer.hpp"
#include "src/formats/safetensors_writer.hpp"

namespace mneme {
namespace {
constexpr std::size_t kMaxQueued = 3;
}

struct FileSink::State {
  explicit State(std::size_t staging) : pool(staging) {}
  pipeline::StagingPool pool;
  std::unique_ptr<TensorFileWriter> writer;

  struct Pending {
    std::size_t output;
    std::uint64_t offset;
    std::span<std::byte> bytes;
  };
  std::mutex mutex;
  std::condition_variable work, space;
  std::deque<Pending> queue;
  bool closing = false;
  std::exception_ptr error;
  std::thread thread;

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      work.wait(lock, [&] { return closing || !queue.empty(); });
      if (queue.empty()) return;  // closing, and everything is written
      const Pending p = queue.front();
      queue.pop_front();
      space.notify_one();
      lock.unlock();
      try {
        if (!error) writer->write(p.output, p.offset, p.bytes);
      } catch (...) {
        std::lock_guard relock(mutex);
        error = std::current_exception();
      }
      pool.release(p.bytes.data());
      lock.lock();
    }
  }

  // Stops the writer thread once the queue is drained.
  void close() {
    {
      std::lock_guard lock(mutex);
      closing = true;
    }
    work.notify_all();
    if (thread.joinable()) thread.join();
  }
};

FileSink::FileSink(std::string path, FileFormat format) : path_(std::move(path)), format_(format) {}

FileSink::~FileSink() {
  if (state_) {
    state_->close();
    if (state_->writer) state_->writer->discard();  // no-op after a commit
  }
}

void FileSink::begin(const Catalog& catalog, const Plan& plan) {
  std::vector<TensorEntry> entries;
  entries.reserve(plan.outputs.size());
  for (const auto& o : plan.outputs) entries.push_back({o.name, o.dtype, o.shape, o.bytes});
  state_ = std::make_unique<State>(plan.max_chunk_out);
  state_->writer = format_ == FileFormat::gguf
                       ? create_gguf_file(path_, entries, catalog)
                       : create_safetensors_file(path_, entries, catalog.metadata);
  state_->thread = std::thread([s = state_.get()] { s->run(); });
}

std::span<std::byte> FileSink::acquire(const Chunk& chunk) {
  return state_->pool.acquire(chunk.out_bytes);
}

void FileSink::commit(const Chunk& chunk, std::span<std::byte> out) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  s.space.wait(lock, [&] { return s.queue.size() < kMaxQueued || s.error; });
  if (s.error) {
    lock.unlock();
    s.pool.release(out.data());
    std::rethrow_exception(s.error);
  }
  s.queue.push_back({chunk.output, chunk.out_offset, out});
  lock.unlock();
  s.work.notify_one();
}

void FileSink::finish() {
  state_->close();
  if (state_->error) std::rethrow_exception(state_->error);
  state_->writer->commit();
}

void FileSink::abort() noexcept {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& p : state_->queue) state_->pool.release(p.bytes.data());
    state_->queue.clear();  // nothing more is worth writing
  }
  state_->close();
  if (state_->writer) state_->writer->discard();
}

}  // namespace mneme
