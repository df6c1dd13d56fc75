// The upload queue (mneme/upload.hpp): a ring of staging slots in front of a
// device. A slot is "filling" only inside one decode task (acquire, decode,
// commit), so a thread waiting for a slot waits on copies, which complete on
// their own: outputs that keep their memory across tasks (streams, tensors
// decoded whole) and chunks larger than a slot are decoded into bounce
// buffers and pass through the ring at commit.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "mneme/error.hpp"
#include "mneme/upload.hpp"
#include "pipeline/buffers.hpp"
#include "pipeline/plan_detail.hpp"

namespace mneme {
namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t ring_slot_bytes(const UploadOptions& o) {
  return (o.slot_bytes + 4095) & ~std::uint64_t{4095};
}

// Outputs whose sink memory outlives one decode task.
bool spans_tasks(const PlanDetail::Output& d) {
  return d.stream || d.assembled;
}

// Seconds covered by at least one of the intervals.
double union_seconds(std::vector<CopyTime> spans) {
  std::sort(spans.begin(), spans.end(),
            [](const CopyTime& a, const CopyTime& b) { return a.start < b.start; });
  double total = 0;
  double start = 0;
  double end = -1;
  for (const CopyTime& s : spans) {
    if (s.start > end) {
      total += end > start ? end - start : 0;
      start = s.start;
      end = s.end;
    } else {
      end = std::max(end, s.end);
    }
  }
  return total + (end > start ? end - start : 0);
}

}  // namespace

struct UploadSink::State {
  enum class Use : std::uint8_t { free, filling, copying };
  struct Slot {
    std::byte* data = nullptr;
    Use use = Use::free;
    bool reclaiming = false;    // a thread is waiting for its copy
    std::uint32_t output = 0;   // whose copy is in flight
    std::uint64_t started = 0;  // copy order, oldest reclaimed first
  };
  struct Target {
    DeviceAddress address = 0;
    bool owned = false;
    std::uint64_t in_flight = 0;  // copies started and not seen complete
    bool committed = false;       // tensor_done came
    bool ready = false;
  };

  const Plan* plan = nullptr;
  std::uint64_t slot_bytes = 0;
  std::span<std::byte> ring;
  bool lanes_open = false;
  std::vector<Slot> slots;
  std::vector<Target> targets;
  std::unique_ptr<pipeline::StagingPool> bounce;

  std::mutex mutex;
  std::condition_variable freed;
  std::uint64_t copies_started = 0;
  std::exception_ptr failure;
  std::vector<CopyTime> spans;
  UploadStats stats;
  std::mutex ready_mutex;  // on_ready callbacks one at a time
  bool taken = false;

  bool in_ring(const std::byte* p) const {
    return !ring.empty() && p >= ring.data() && p < ring.data() + ring.size();
  }
};

UploadSink::UploadSink(UploadDevice& device, UploadOptions options)
    : device_(device), options_(std::move(options)) {
  if (options_.slots == 0 || options_.slot_bytes < (64u << 10)) {
    fail(ErrorKind::unsupported, "upload queue: at least one slot of at least 64 KiB");
  }
}

UploadSink::~UploadSink() {
  abort();
}

// The ring, and bounce buffers for what cannot decode into a slot: one per
// decode thread, and one more per open stream (at most one per thread).
std::uint64_t UploadSink::held_bytes(const Plan& plan, unsigned threads) const {
  const std::uint64_t slot = ring_slot_bytes(options_);
  bool streams = false;
  if (plan.detail) {
    for (const PlanDetail::Output& d : plan.detail->outputs) {
      streams = streams || d.stream;
    }
  }
  const std::uint64_t per_thread = (streams ? 2 : 1) * plan.max_chunk_out;
  const bool bounce = streams || plan.max_chunk_out > slot;
  return slot * options_.slots + (bounce ? per_thread * std::max(1u, threads) : 0);
}

void UploadSink::begin(const Catalog&, const Plan& plan) {
  abort();  // a sink reused for another run starts clean
  state_ = std::make_unique<State>();
  State& s = *state_;
  s.plan = &plan;
  s.slot_bytes = ring_slot_bytes(options_);
  s.bounce =
      std::make_unique<pipeline::StagingPool>(std::max<std::uint64_t>(plan.max_chunk_out, 1));
  s.ring = device_.allocate_staging(s.slot_bytes * options_.slots);
  s.stats.ring_bytes = s.ring.size();
  s.stats.slots = options_.slots;
  device_.open_lanes(options_.slots);
  s.lanes_open = true;
  s.slots.resize(options_.slots);
  for (unsigned i = 0; i < options_.slots; ++i) {
    s.slots[i].data = s.ring.data() + i * s.slot_bytes;
  }
  s.targets.resize(plan.outputs.size());
  for (std::size_t i = 0; i < plan.outputs.size(); ++i) {
    const OutputTensor& o = plan.outputs[i];
    State::Target& t = s.targets[i];
    if (options_.place) {
      t.address = options_.place(o);
    } else if (o.bytes > 0) {
      t.address = device_.allocate(o.bytes);
      t.owned = true;
    }
  }
}

// Marks a completed copy (mutex held); the tensors it completed go to `ready`.
void UploadSink::complete(unsigned lane, const CopyTime& time, std::vector<std::uint32_t>& ready) {
  State& s = *state_;
  State::Slot& slot = s.slots[lane];
  State::Target& t = s.targets[slot.output];
  slot.use = State::Use::free;
  s.spans.push_back(time);
  if (--t.in_flight == 0 && t.committed && !t.ready) {
    t.ready = true;
    ready.push_back(slot.output);
  }
  s.freed.notify_all();
}

// Copies already complete, found without waiting (mutex held).
void UploadSink::reap(std::vector<std::uint32_t>& ready) {
  State& s = *state_;
  for (unsigned i = 0; i < s.slots.size(); ++i) {
    State::Slot& slot = s.slots[i];
    if (slot.use != State::Use::copying || slot.reclaiming) {
      continue;
    }
    std::optional<CopyTime> time;
    try {
      time = device_.copy_done(i, false);
    } catch (...) {
      // The copy failed: the run fails with it, in every thread that waits.
      slot.use = State::Use::free;
      s.failure = std::current_exception();
      s.freed.notify_all();
      throw;
    }
    if (time) {
      complete(i, *time, ready);
    }
  }
}

void UploadSink::announce(const std::vector<std::uint32_t>& ready) {
  if (ready.empty() || !options_.on_ready) {
    return;
  }
  std::lock_guard lock(state_->ready_mutex);
  for (std::uint32_t output : ready) {
    options_.on_ready(device_tensor(output));
  }
}

DeviceTensor UploadSink::device_tensor(std::uint32_t output) const {
  const OutputTensor& o = state_->plan->outputs[output];
  const State::Target& t = state_->targets[output];
  return DeviceTensor{o.name, o.dtype, o.shape, t.address, o.bytes, t.owned};
}

// A free slot, marked filling: the oldest copy is waited for when none is
// free. A copy's error is the run's.
unsigned UploadSink::take_slot() {
  State& s = *state_;
  std::vector<std::uint32_t> ready;
  const Clock::time_point t0 = Clock::now();
  std::unique_lock lock(s.mutex);
  unsigned taken = 0;
  try {
    for (;;) {
      if (s.failure) {
        std::rethrow_exception(s.failure);
      }
      reap(ready);
      const auto idle = std::find_if(s.slots.begin(), s.slots.end(), [](const State::Slot& x) {
        return x.use == State::Use::free;
      });
      if (idle != s.slots.end()) {
        idle->use = State::Use::filling;
        taken = static_cast<unsigned>(idle - s.slots.begin());
        break;
      }
      State::Slot* oldest = nullptr;
      for (State::Slot& x : s.slots) {
        if (x.use == State::Use::copying && !x.reclaiming &&
            (!oldest || x.started < oldest->started)) {
          oldest = &x;
        }
      }
      if (oldest == nullptr) {
        s.freed.wait(lock);  // every slot is filling, or being reclaimed by another thread
        continue;
      }
      const auto lane = static_cast<unsigned>(oldest - s.slots.data());
      oldest->reclaiming = true;
      lock.unlock();
      std::optional<CopyTime> time;
      std::exception_ptr error;
      try {
        time = device_.copy_done(lane, true);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      s.slots[lane].reclaiming = false;
      if (error || !time) {
        s.slots[lane].use = State::Use::free;  // nothing of it is in flight any more
        s.failure = error ? error
                          : std::make_exception_ptr(
                                Error(ErrorKind::io, device_.name() + ": a copy did not complete"));
        s.freed.notify_all();
        continue;
      }
      complete(lane, *time, ready);
    }
  } catch (...) {
    s.stats.wait_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    lock.unlock();
    announce(ready);
    throw;
  }
  s.stats.wait_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  lock.unlock();
  announce(ready);
  return taken;
}

// Starts the copy of a filled slot to `dst`.
void UploadSink::start_copy(unsigned lane, std::uint32_t output, DeviceAddress dst,
                            std::uint64_t bytes) {
  State& s = *state_;
  State::Slot& slot = s.slots[lane];
  {
    std::lock_guard lock(s.mutex);
    ++s.targets[output].in_flight;  // before the copy can be seen complete
  }
  try {
    device_.copy_async(lane, dst, {slot.data, bytes});
  } catch (...) {
    std::lock_guard lock(s.mutex);
    --s.targets[output].in_flight;
    slot.use = State::Use::free;
    s.failure = std::current_exception();
    s.freed.notify_all();
    throw;
  }
  std::lock_guard lock(s.mutex);
  slot.use = State::Use::copying;
  slot.output = output;
  slot.started = s.copies_started++;
  s.stats.bytes += bytes;
  ++s.stats.copies;
  s.freed.notify_all();  // a thread waiting for a slot can now wait for this copy
}

std::span<std::byte> UploadSink::acquire(const Chunk& chunk) {
  State& s = *state_;
  if (chunk.out_bytes > s.slot_bytes || spans_tasks(s.plan->detail->outputs[chunk.output])) {
    return s.bounce->acquire(chunk.out_bytes);
  }
  return {s.slots[take_slot()].data, chunk.out_bytes};
}

void UploadSink::commit(const Chunk& chunk, std::span<std::byte> out) {
  State& s = *state_;
  const DeviceAddress dst = s.targets[chunk.output].address + chunk.out_offset;
  if (s.in_ring(out.data())) {
    start_copy(static_cast<unsigned>((out.data() - s.ring.data()) / s.slot_bytes), chunk.output,
               dst, out.size());
    return;
  }
  struct Release {
    pipeline::StagingPool& pool;
    std::byte* data;
    ~Release() { pool.release(data); }
  } release{*s.bounce, out.data()};
  for (std::uint64_t at = 0; at < out.size(); at += s.slot_bytes) {
    const std::uint64_t n = std::min<std::uint64_t>(s.slot_bytes, out.size() - at);
    const unsigned lane = take_slot();
    std::memcpy(s.slots[lane].data, out.data() + at, n);
    start_copy(lane, chunk.output, dst + at, n);
  }
}

void UploadSink::tensor_done(std::size_t output) {
  State& s = *state_;
  std::vector<std::uint32_t> ready;
  {
    std::lock_guard lock(s.mutex);
    State::Target& t = s.targets[output];
    t.committed = true;
    reap(ready);
    if (t.in_flight == 0 && !t.ready) {
      t.ready = true;
      ready.push_back(static_cast<std::uint32_t>(output));
    }
  }
  announce(ready);
}

// Waits for the last copies; every tensor is then on the device.
void UploadSink::finish() {
  State& s = *state_;
  std::vector<std::uint32_t> ready;
  {
    std::lock_guard lock(s.mutex);
    for (unsigned i = 0; i < s.slots.size(); ++i) {
      if (s.slots[i].use != State::Use::copying) {
        continue;
      }
      const std::optional<CopyTime> time = device_.copy_done(i, true);
      if (!time) {
        fail(ErrorKind::io, device_.name() + ": a copy did not complete");
      }
      complete(i, *time, ready);
    }
    for (std::size_t i = 0; i < s.targets.size(); ++i) {
      if (!s.targets[i].ready) {
        fail(ErrorKind::io, "upload queue: tensor \"" + printable(s.plan->outputs[i].name) +
                                "\" did not complete on the device");
      }
    }
    s.stats.busy_seconds = union_seconds(s.spans);
    device_.close_lanes();
    s.lanes_open = false;
    device_.free_staging(s.ring);
    s.ring = {};
  }
  announce(ready);
}

// Waits for what is in flight (its errors no longer matter), then frees the
// ring and every device buffer the sink allocated.
void UploadSink::abort() noexcept {
  if (!state_) {
    return;
  }
  State& s = *state_;
  if (s.lanes_open) {
    for (unsigned i = 0; i < s.slots.size(); ++i) {
      if (s.slots[i].use == State::Use::copying) {
        try {
          (void)device_.copy_done(i, true);
        } catch (...) {
        }
        s.slots[i].use = State::Use::free;
      }
    }
    device_.close_lanes();
    s.lanes_open = false;
  }
  if (!s.ring.empty()) {
    device_.free_staging(s.ring);
    s.ring = {};
  }
  if (!s.taken) {
    for (State::Target& t : s.targets) {
      if (t.owned) {
        device_.free(t.address);
        t.owned = false;
      }
    }
  }
  s.targets.clear();
}

std::vector<DeviceTensor> UploadSink::take() {
  if (!state_ || state_->targets.size() != state_->plan->outputs.size() ||
      std::any_of(state_->targets.begin(), state_->targets.end(),
                  [](const State::Target& t) { return !t.ready; })) {
    fail(ErrorKind::unsupported, "upload queue: take() needs a run that succeeded");
  }
  std::vector<DeviceTensor> out;
  out.reserve(state_->targets.size());
  for (std::uint32_t i = 0; i < state_->targets.size(); ++i) {
    out.push_back(device_tensor(i));
  }
  state_->taken = true;
  return out;
}

UploadStats UploadSink::stats() const {
  if (!state_) {
    return {};
  }
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

}  // namespace mneme
