#include "mneme/source.hpp"

namespace mneme {

// Sources that never wait on a device (memory, mmap) are served inline.
boost::asio::awaitable<void> Source::async_read_at(std::uint64_t offset, std::span<std::byte> dst) {
  read_at(offset, dst);
  co_return;
}

}  // namespace mneme
