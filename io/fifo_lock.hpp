// A mutual-exclusion lock for coroutines: waiters suspend (no thread blocks)
// and are resumed one at a time in arrival order. Sequential sources use it to
// serve concurrent async reads in the order they were issued.
#pragma once

#include <deque>
#include <mutex>
#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mneme::detail {

class FifoLock {
 public:
  FifoLock() = default;
  FifoLock(const FifoLock&) = delete;
  FifoLock& operator=(const FifoLock&) = delete;

  bool try_lock() {
    std::lock_guard lk(mutex_);
    if (held_) {
      return false;
    }
    held_ = true;
    return true;
  }

  boost::asio::awaitable<void> lock() {
    if (try_lock()) {
      co_return;
    }
    // Named, not a temporary: see the g++ 12 note in file_pread.cpp.
    auto initiation = [this](auto handler) { enqueue(std::move(handler)); };
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(
        initiation, boost::asio::use_awaitable);
  }

  // Hands the lock to the oldest waiter (resumed through a post, never inline)
  // or frees it.
  void unlock() {
    std::unique_lock lk(mutex_);
    if (waiters_.empty()) {
      held_ = false;
      return;
    }
    Waiter next = std::move(waiters_.front());
    waiters_.pop_front();
    lk.unlock();
    // Invoked from a job on the waiter's own executor, as if by post.
    boost::asio::post(next.work, [h = std::move(next.handler)]() mutable { std::move(h)(); });
  }

 private:
  struct Waiter {
    boost::asio::any_completion_handler<void()> handler;
    // Keeps the waiter's io_context running while it is parked here.
    boost::asio::any_io_executor work;
  };

  template <typename Handler>
  void enqueue(Handler handler) {
    auto work = boost::asio::prefer(
        boost::asio::any_io_executor(boost::asio::get_associated_executor(handler)),
        boost::asio::execution::outstanding_work.tracked);
    std::unique_lock lk(mutex_);
    if (!held_) {  // released between try_lock() and here
      held_ = true;
      lk.unlock();
      boost::asio::post(std::move(handler));
      return;
    }
    waiters_.push_back(Waiter{std::move(handler), std::move(work)});
  }

  std::mutex mutex_;
  bool held_ = false;
  std::deque<Waiter> waiters_;
};

// Releases a FifoLock when the scope ends, exceptions included.
class FifoLockRelease {
 public:
  explicit FifoLockRelease(FifoLock& lock) : lock_(lock) {}
  FifoLockRelease(const FifoLockRelease&) = delete;
  FifoLockRelease& operator=(const FifoLockRelease&) = delete;
  ~FifoLockRelease() { lock_.unlock(); }

 private:
  FifoLock& lock_;
};

}  // namespace mneme::detail
