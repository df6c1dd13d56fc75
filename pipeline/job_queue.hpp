// The decoders' work queue: the io thread pushes, each decode thread pops
// and sleeps while it is empty. A decoder sleeps in this queue's condition
// variable, never in the task scheduler, so a job pushed from the io thread
// (outside the decoders' arena) always finds a decoder awake or wakes one,
// and an idle decoder spins against nothing.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace mneme::pipeline {

template <class T>
class JobQueue {
 public:
  void push(T job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

  // The next job; nullopt once the queue is closed and empty.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !jobs_.empty() || closed_; });
    if (jobs_.empty()) {
      return std::nullopt;
    }
    T job = std::move(jobs_.front());
    jobs_.pop_front();
    return job;
  }

  // No job will be pushed any more: decoders drain what is left and leave.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<T> jobs_;
  bool closed_ = false;
};

}  // namespace mneme::pipeline
