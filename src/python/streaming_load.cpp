#include "src/python/streaming_load.hpp"

#include <boost/asio/io_context.hpp>

#include "mneme/error.hpp"
#include "pipeline/buffers.hpp"

namespace mneme::python {

using namespace std::chrono_literals;

namespace {

// A tensor's memory, which the array handed to Python owns. From 2 MiB up it
// is a mapping of its own asking for huge pages: the decoders' first touch
// then faults once per 2 MiB rather than once per 4 KiB page (a fresh 4 KiB
// page cost 2.3 us on our machines: 1.7 GB/s per core, less than a decode).
std::shared_ptr<std::byte[]> tensor_memory(std::uint64_t bytes) {
  if (bytes < (2u << 20)) {
    return std::make_shared_for_overwrite<std::byte[]>(std::max<std::uint64_t>(bytes, 1));
  }
  auto region = std::make_shared<pipeline::HugeRegion>(bytes);
  std::byte* data = region->data();
  return {std::move(region), data};
}

}  // namespace

// Allocates each tensor whole at its first chunk, when the tensors finished
// but not yet handed over leave room under the limit, and queues it when it
// is done. Only finished tensors count: the consumer can always take those,
// whereas a decode thread blocked for a tensor still in flight would hold up
// the very chunks that finish it.
class StreamingLoad::QueueSink : public Sink {
 public:
  explicit QueueSink(StreamingLoad& load) : load_(load) {}
  std::span<std::byte> acquire(const Chunk& c) override {
    auto& L = load_;
    std::unique_lock lock(L.mutex_);
    auto& buffer = L.buffers_.at(c.output);
    // Several chunks of one tensor may arrive here at once: the first to
    // find room allocates, the others (waiting or not) use its buffer.
    const std::uint64_t bytes = L.plan_.outputs[c.output].bytes;
    while (!buffer) {
      if (L.ready_bytes_ == 0 || L.ready_bytes_ + bytes <= L.queue_limit_) {
        buffer = tensor_memory(bytes);
        break;
      }
      if (L.cancel_.load()) fail(ErrorKind::cancelled, "the load was cancelled");
      L.changed_.wait_for(lock, 50ms);
    }
    return {buffer.get() + c.out_offset, c.out_bytes};
  }
  void commit(const Chunk&, std::span<std::byte>) override {}
  void tensor_done(std::size_t output) override {
    auto& L = load_;
    std::lock_guard lock(L.mutex_);
    if (!L.buffers_[output]) {  // an empty tensor: no chunk asked for memory
      L.buffers_[output] = std::make_shared_for_overwrite<std::byte[]>(1);
    }
    L.ready_.push_back(output);
    L.ready_bytes_ += L.plan_.outputs[output].bytes;
    L.changed_.notify_all();
  }

 private:
  StreamingLoad& load_;
};

StreamingLoad::StreamingLoad(const std::vector<std::string>& sources, LoadSettings settings)
    : settings_(std::move(settings)) {
  sink_ = std::make_unique<QueueSink>(*this);
  // The sources are opened on the executor of the context the run drives.
  auto io = std::make_shared<boost::asio::io_context>(1);
  catalog_ = open_catalog(sources, io->get_executor(), settings_.open);
  PlanOptions po;
  po.to = settings_.to;
  po.select = settings_.select;
  plan_ = make_plan(catalog_, po);
  buffers_.resize(plan_.outputs.size());
  yielded_.assign(plan_.outputs.size(), false);
  std::uint64_t largest = 0;
  for (const auto& o : plan_.outputs) largest = std::max(largest, o.bytes);
  queue_limit_ = std::max<std::uint64_t>(settings_.budget ? settings_.budget : 64ull << 20, largest);
  thread_ = std::thread([this, io] {
    try {
      RunOptions ro;
      ro.threads = settings_.threads;
      ro.budget_bytes = settings_.budget;
      ro.cancel = &cancel_;
      ro.progress = settings_.progress;
      const RunStats s = run_pipeline(*io, catalog_, plan_, *sink_, ro);
      std::lock_guard lock(mutex_);
      stats_ = s;
    } catch (...) {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    done_ = true;
    changed_.notify_all();
  });
}

StreamingLoad::~StreamingLoad() {
  cancel();
}

void StreamingLoad::cancel() {
  cancel_.store(true);
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Finished StreamingLoad::finished(std::size_t output) {
  const OutputTensor& o = plan_.outputs[output];
  return Finished{o.name, o.dtype, o.shape, buffers_[output], o.bytes};
}

bool StreamingLoad::take_ready(std::unique_lock<std::mutex>&, std::size_t& output) {
  if (ready_.empty()) return false;
  output = ready_.front();
  ready_.erase(ready_.begin());
  ready_bytes_ -= plan_.outputs[output].bytes;
  changed_.notify_all();
  return true;
}

std::optional<Finished> StreamingLoad::next(const Poll& poll) {
  std::unique_lock lock(mutex_);
  while (true) {
    for (auto& [output, f] : kept_) {
      if (!yielded_[output]) {
        yielded_[output] = true;
        return f;
      }
    }
    std::size_t output = 0;
    if (take_ready(lock, output)) {
      Finished f = finished(output);
      buffers_[output].reset();  // handed over: this load keeps nothing
      yielded_[output] = true;
      return f;
    }
    if (done_) {
      if (error_) std::rethrow_exception(error_);
      return std::nullopt;
    }
    changed_.wait_for(lock, 50ms);
    lock.unlock();
    poll();
    lock.lock();
  }
}

Finished StreamingLoad::get(const std::string& name, const Poll& poll) {
  std::size_t wanted = plan_.outputs.size();
  for (std::size_t i = 0; i < plan_.outputs.size(); ++i) {
    if (plan_.outputs[i].name == name) wanted = i;
  }
  if (wanted == plan_.outputs.size()) {
    fail(ErrorKind::parse, "no tensor \"" + printable(name) + "\" in this load");
  }
  std::unique_lock lock(mutex_);
  while (true) {
    // Whatever finished moves to the kept set (it is the caller's now).
    for (std::size_t output = 0; take_ready(lock, output);) {
      kept_[output] = finished(output);
      buffers_[output].reset();
    }
    if (const auto it = kept_.find(wanted); it != kept_.end()) return it->second;
    if (done_) {
      if (error_) std::rethrow_exception(error_);
      fail(ErrorKind::parse, "tensor \"" + printable(name) +
                                 "\" was handed over by tensors() already (keep what it yields)");
    }
    changed_.wait_for(lock, 50ms);
    lock.unlock();
    poll();
    lock.lock();
  }
}

RunStats StreamingLoad::stats() {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace mneme::python
