#include "io/sequential_source.hpp"

#include <algorithm>
#include <cstring>

namespace mneme::detail {

SequentialSource::SequentialSource(std::string name, std::optional<std::uint64_t> size)
    : name_(std::move(name)), size_(size.value_or(kUnknown)) {}

std::optional<std::uint64_t> SequentialSource::size() const {
  const auto s = size_.load(std::memory_order_acquire);
  if (s == kUnknown) return std::nullopt;
  return s;
}

boost::asio::awaitable<std::size_t> SequentialSource::async_read_some(std::span<std::byte> dst) {
  co_return read_some(dst);
}

void SequentialSource::check_bounds(std::uint64_t offset, std::size_t length) const {
  const auto s = size_.load(std::memory_order_acquire);
  std::uint64_t end;
  if (__builtin_add_overflow(offset, std::uint64_t{length}, &end) || (s != kUnknown && end > s)) {
    fail(ErrorKind::io, printable(name_) + ": read of " + std::to_string(length) +
                            " bytes at offset " + std::to_string(offset) + " is past the end" +
                            (s != kUnknown ? " (size " + std::to_string(s) + " bytes)" : ""));
  }
}

std::span<std::byte> SequentialSource::next_target(Request& req) {
  while (!req.dst.empty()) {
    if (req.offset < cursor_) {
      // Behind the cursor: only the retained prefix can still serve it.
      if (req.offset >= prefix_.size()) {
        fail(ErrorKind::unsupported,
             printable(name_) + ": sequential source cannot read " + std::to_string(req.length) +
                 " bytes at offset " + std::to_string(req.first_offset) +
                 ": the stream is already at offset " + std::to_string(cursor_) +
                 " and only its first " + std::to_string(kRetainedPrefix) +
                 " bytes are kept (read in ascending order, or use a seekable source)");
      }
      const std::size_t n = std::min<std::uint64_t>(req.dst.size(), prefix_.size() - req.offset);
      std::memcpy(req.dst.data(), prefix_.data() + req.offset, n);
      req.dst = req.dst.subspan(n);
      req.offset += n;
      continue;
    }
    if (at_end_) fail_end(req);
    if (req.offset > cursor_) {
      // A forward gap: read it and drop it.
      const std::uint64_t gap = req.offset - cursor_;
      if (scratch_.empty()) scratch_.resize(kRetainedPrefix);
      return std::span<std::byte>(scratch_).first(std::min<std::uint64_t>(gap, scratch_.size()));
    }
    return req.dst;
  }
  return {};
}

void SequentialSource::fail_end(const Request& req) const {
  fail(ErrorKind::io, printable(name_) + ": stream ended at byte " + std::to_string(cursor_) +
                          ", inside a read of " + std::to_string(req.length) + " bytes at offset " +
                          std::to_string(req.first_offset));
}

void SequentialSource::commit(Request& req, std::span<std::byte> target, std::size_t n) {
  if (n == 0) {
    at_end_ = true;
    size_.store(cursor_, std::memory_order_release);
    fail_end(req);
  }
  if (cursor_ < kRetainedPrefix) {
    const std::size_t keep = std::min<std::uint64_t>(n, kRetainedPrefix - cursor_);
    if (prefix_.capacity() == 0) prefix_.reserve(kRetainedPrefix);
    prefix_.insert(prefix_.end(), target.data(), target.data() + keep);
  }
  cursor_ += n;
  if (target.data() == req.dst.data()) {
    req.dst = req.dst.subspan(n);
    req.offset += n;
  }
}

void SequentialSource::read_at(std::uint64_t offset, std::span<std::byte> dst) {
  check_bounds(offset, dst.size());
  if (dst.empty()) return;
  if (!lock_.try_lock()) {
    fail(ErrorKind::unsupported,
         printable(name_) + ": a blocking read cannot overlap another read of a sequential source");
  }
  FifoLockRelease release(lock_);
  Request req{offset, dst, offset, dst.size()};
  for (auto target = next_target(req); !target.empty(); target = next_target(req)) {
    commit(req, target, read_some(target));
  }
}

boost::asio::awaitable<void> SequentialSource::async_read_at(std::uint64_t offset,
                                                             std::span<std::byte> dst) {
  check_bounds(offset, dst.size());
  if (dst.empty()) co_return;
  const auto self = shared_from_this();  // the stream must outlive the read
  co_await lock_.lock();
  FifoLockRelease release(lock_);
  Request req{offset, dst, offset, dst.size()};
  for (auto target = next_target(req); !target.empty(); target = next_target(req)) {
    commit(req, target, co_await async_read_some(target));
  }
}

}  // namespace mneme::detail
