// io_uring file source: Asio random_access_file on the io_uring backend
// (BOOST_ASIO_HAS_IO_URING). Async reads go through the ring; blocking reads
// (header parsing) pread the same descriptor, which needs no ring round trip.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/random_access_file.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "io/file_kinds.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace detail {
namespace {

using File = boost::asio::basic_random_access_file<boost::asio::any_io_executor>;

class UringSource final : public Source, public std::enable_shared_from_this<UringSource> {
 public:
  UringSource(std::string name, File file, std::uint64_t size, FileId id)
      : name_(std::move(name)), file_(std::move(file)), size_(size), id_(id) {}

  const std::string& name() const override { return name_; }
  std::optional<std::uint64_t> size() const override { return size_; }
  std::string_view kind() const override { return "uring"; }
  std::optional<FileId> file_id() const override { return id_; }

  void read_at(std::uint64_t offset, std::span<std::byte> dst) override {
    check_range(name_, size_, offset, dst.size());
    pread_full(file_.native_handle(), name_, offset, dst);
  }

  boost::asio::awaitable<void> async_read_at(std::uint64_t offset,
                                             std::span<std::byte> dst) override {
    check_range(name_, size_, offset, dst.size());
    const auto self = shared_from_this();  // the file must outlive the ring's ops
    while (!dst.empty()) {
      const std::size_t want = std::min(dst.size(), kMaxReadChunk);
      auto [ec, n] =
          co_await file_.async_read_some_at(offset, boost::asio::buffer(dst.data(), want),
                                            boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec == boost::asio::error::interrupted || ec == boost::asio::error::try_again) continue;
      if (ec == boost::asio::error::eof || (!ec && n == 0)) {
        fail(ErrorKind::io, printable(name_) + ": unexpected end of file at offset " +
                                std::to_string(offset) + " (" + std::to_string(dst.size()) +
                                " bytes still wanted; truncated while open?)");
      }
      if (ec) {
        fail(ErrorKind::io, printable(name_) + ": read at offset " + std::to_string(offset) +
                                " failed: " + ec.message());
      }
      dst = dst.subspan(n);
      offset += n;
    }
  }

 private:
  std::string name_;
  File file_;
  std::uint64_t size_;
  FileId id_;
};

}  // namespace

SourcePtr make_uring_source(std::string name, OpenedFile& file,
                            boost::asio::any_io_executor executor) {
  // The first file object on an execution context creates its io_uring
  // service, whose constructor calls io_uring_queue_init and throws when the
  // kernel refuses (ENOSYS without CONFIG_IO_URING, EPERM under seccomp or
  // kernel.io_uring_disabled, ENOMEM under a tight RLIMIT_MEMLOCK). Nothing
  // else in this constructor can throw a system_error.
  std::optional<File> f;
  try {
    f.emplace(executor);
  } catch (const boost::system::system_error& e) {
    fail(ErrorKind::unsupported, printable(name) + ": io_uring is unavailable here (" + e.what() +
                                     "); use pread or mmap file I/O instead");
  }
  f->assign(file.fd.get());  // cannot fail for io_uring files: only records the descriptor
  file.fd.release();         // now owned by the Asio file
  return std::make_shared<UringSource>(std::move(name), std::move(*f), file.size, file.id);
}

}  // namespace detail

SourcePtr make_uring_source(const std::string& path, boost::asio::any_io_executor executor) {
  auto file = detail::open_file(path, path);
  if (!file.random_access) fail(ErrorKind::io, printable(path) + ": not a regular file");
  return detail::make_uring_source(path, file, executor);
}

}  // namespace mneme
