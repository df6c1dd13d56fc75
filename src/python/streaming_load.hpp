// A model load that hands over each tensor as soon as it is complete, while
// the pipeline runs on a thread of its own: what Python's safe_open() and
// tensors() are built on. Plain C++ (no Python here): the caller's wait hook
// is where the bindings check for signals.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"

namespace mneme::python {

// A finished tensor; owns its bytes (shared with whoever holds it).
struct Finished {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::shared_ptr<std::byte[]> data;
  std::uint64_t bytes = 0;
};

struct LoadSettings {
  std::optional<OutType> to;
  unsigned threads = 0;
  std::uint64_t budget = 0;  // RunOptions::budget_bytes (0: automatic)
  std::function<bool(const TensorInfo&)> select;
  CatalogOptions open;
  std::function<void(std::uint64_t, std::uint64_t)> progress;  // from the io thread
};

class StreamingLoad {
 public:
  // Opens and plans (blocking, the caller's thread), then starts the run.
  StreamingLoad(const std::vector<std::string>& sources, LoadSettings settings);
  ~StreamingLoad();  // cancels and joins
  StreamingLoad(const StreamingLoad&) = delete;
  StreamingLoad& operator=(const StreamingLoad&) = delete;

  const Catalog& catalog() const { return catalog_; }
  const Plan& plan() const { return plan_; }

  // Called about every 50 ms while a call below waits; may throw to stop waiting.
  using Poll = std::function<void()>;
  // The next finished tensor next() has not handed over yet, in the order
  // tensors finish (those get() took first included); nullopt once every one
  // has been. Rethrows the run's error.
  std::optional<Finished> next(const Poll& poll);
  // The tensor called `name` (waiting for it); it stays with this load too.
  // Error{parse} when the plan has no such tensor.
  Finished get(const std::string& name, const Poll& poll);
  // Ends the run (no-op once finished); waits for its thread.
  void cancel();
  // The run's statistics once it has finished.
  RunStats stats();

 private:
  class QueueSink;
  bool take_ready(std::unique_lock<std::mutex>& lock, std::size_t& output);
  Finished finished(std::size_t output);

  Catalog catalog_;
  Plan plan_;
  LoadSettings settings_;
  std::atomic<bool> cancel_{false};
  std::unique_ptr<QueueSink> sink_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::shared_ptr<std::byte[]>> buffers_;  // per output, while held here
  std::vector<std::size_t> ready_;                     // finished, not yet handed over
  std::map<std::size_t, Finished> kept_;               // handed over by get(), kept
  std::vector<bool> yielded_;                          // handed over by next()
  std::uint64_t ready_bytes_ = 0;                      // finished, not yet handed over
  std::uint64_t queue_limit_ = 0;
  bool done_ = false;
  std::exception_ptr error_;
  RunStats stats_;
  std::thread thread_;
};

}  // namespace mneme::python
