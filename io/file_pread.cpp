// pread file source: the portable path, and the fallback where io_uring is
// refused. Async reads run the blocking pread on a small shared thread pool so
// that many reads can be in flight while the io_context thread stays free.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/file_kinds.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace detail {
namespace {

// Four threads: enough to keep a device queue busy from page cache or NVMe on
// the small machines we target, without one pool per source.
boost::asio::thread_pool& pread_pool() {
  static boost::asio::thread_pool pool(4);
  return pool;
}

class PreadSource final : public Source, public std::enable_shared_from_this<PreadSource> {
 public:
  PreadSource(std::string name, OpenedFile file)
      : name_(std::move(name)), fd_(std::move(file.fd)), size_(file.size), id_(file.id) {}

  const std::string& name() const override { return name_; }
  std::optional<std::uint64_t> size() const override { return size_; }
  std::string_view kind() const override { return "pread"; }
  std::optional<FileId> file_id() const override { return id_; }

  void read_at(std::uint64_t offset, std::span<std::byte> dst) override {
    check_range(name_, size_, offset, dst.size());
    pread_full(fd_.get(), name_, offset, dst);
  }

  boost::asio::awaitable<void> async_read_at(std::uint64_t offset,
                                             std::span<std::byte> dst) override {
    check_range(name_, size_, offset, dst.size());
    if (dst.empty()) co_return;
    // The pool job holds the source so its descriptor outlives the read; the
    // completion (or exception) comes back on the awaiting coroutine's executor.
    // The job is a named variable on purpose: g++ 12 destroys a lambda
    // temporary passed by reference inside a co_await expression twice.
    auto job = [self = shared_from_this(), offset, dst]() -> boost::asio::awaitable<void> {
      pread_full(self->fd_.get(), self->name_, offset, dst);
      co_return;
    };
    co_await boost::asio::co_spawn(pread_pool(), std::move(job), boost::asio::use_awaitable);
  }

 private:
  std::string name_;
  UniqueFd fd_;
  std::uint64_t size_;
  FileId id_;
};

}  // namespace

SourcePtr make_pread_source(std::string name, OpenedFile file) {
  return std::make_shared<PreadSource>(std::move(name), std::move(file));
}

}  // namespace detail

SourcePtr make_pread_source(const std::string& path, boost::asio::any_io_executor) {
  auto file = detail::open_file(path, path);
  if (!file.random_access) fail(ErrorKind::io, printable(path) + ": not a regular file");
  return detail::make_pread_source(path, std::move(file));
}

}  // namespace mneme
