// The cursor and retained-prefix logic of every sequential source (pipes,
// sockets, std::istream), written once. A subclass supplies only the stream
// primitive: read_some (blocking) and optionally async_read_some.
//
// Semantics (include/mneme/source.hpp): reads come at offsets >= the cursor;
// a forward gap is read and discarded; the first kRetainedPrefix bytes of the
// stream are kept, so [0, n) inside them can be read again; any other read
// behind the cursor throws Error{unsupported}. End of stream inside a read
// throws Error{io} and fixes size(). Async reads queue in issue order; a
// blocking read that would overlap another read throws Error{unsupported}.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/fifo_lock.hpp"
#include "mneme/error.hpp"
#include "mneme/source.hpp"

namespace mneme::detail {

class SequentialSource : public Source, public std::enable_shared_from_this<SequentialSource> {
 public:
  // `size`, when the producer announced it, bounds reads before they block.
  explicit SequentialSource(std::string name, std::optional<std::uint64_t> size = std::nullopt);

  const std::string& name() const final { return name_; }
  std::optional<std::uint64_t> size() const final;
  bool sequential() const final { return true; }

  void read_at(std::uint64_t offset, std::span<std::byte> dst) final;
  boost::asio::awaitable<void> async_read_at(std::uint64_t offset, std::span<std::byte> dst) final;

 protected:
  // Reads at least one byte into dst (non-empty), or returns 0 at the end of
  // the stream. Failures throw Error (io or network).
  virtual std::size_t read_some(std::span<std::byte> dst) = 0;
  // The same without blocking a thread; the default calls read_some inline.
  virtual boost::asio::awaitable<std::size_t> async_read_some(std::span<std::byte> dst);

 private:
  // One read in progress: the part of dst not yet filled.
  struct Request {
    std::uint64_t offset;
    std::span<std::byte> dst;
    std::uint64_t first_offset;  // as issued, for messages
    std::size_t length;
  };

  void check_bounds(std::uint64_t offset, std::size_t length) const;
  // Serves what the prefix holds, then says where the stream's next bytes go:
  // into the request, into scratch (a gap), or nowhere (empty: request done).
  std::span<std::byte> next_target(Request& req);
  // Accounts for n stream bytes that read_some put into target.
  void commit(Request& req, std::span<std::byte> target, std::size_t n);
  [[noreturn]] void fail_end(const Request& req) const;

  std::string name_;
  FifoLock lock_;
  std::uint64_t cursor_ = 0;        // stream bytes consumed so far
  std::vector<std::byte> prefix_;   // stream bytes [0, min(cursor_, kRetainedPrefix))
  std::vector<std::byte> scratch_;  // gap bytes land here and are dropped
  bool at_end_ = false;             // the stream returned end of stream
  static constexpr std::uint64_t kUnknown = ~std::uint64_t{0};
  std::atomic<std::uint64_t> size_;  // kUnknown until announced or reached
};

}  // namespace mneme::detail
