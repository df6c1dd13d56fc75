// Asio stream sources: pipes, FIFOs and stdin (posix::stream_descriptor) and
// TCP connections (ip::tcp::socket). One template serves both; only the error
// kind of a transport failure differs (io for descriptors, network for TCP).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/file_kinds.hpp"
#include "io/sequential_source.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

template <typename Stream>
class AsioStreamSource final : public detail::SequentialSource {
 public:
  AsioStreamSource(std::string name, Stream stream, std::string_view kind, ErrorKind failure_kind)
      : SequentialSource(std::move(name)),
        stream_(std::move(stream)),
        kind_(kind),
        failure_kind_(failure_kind) {}

  ~AsioStreamSource() override {
    // Asio leaves the descriptor non-blocking after async reads, and that flag
    // lives in the open file description, shared with whoever else holds it
    // (the shell's tty or pipe for stdin): put it back as it was.
    if (restore_flags_ >= 0) ::fcntl(stream_.native_handle(), F_SETFL, restore_flags_);
  }
  AsioStreamSource(const AsioStreamSource&) = delete;
  AsioStreamSource& operator=(const AsioStreamSource&) = delete;

  // File status flags to restore before the descriptor closes (-1: none).
  void restore_flags_on_close(int flags) { restore_flags_ = flags; }

  std::string_view kind() const override { return kind_; }

 protected:
  std::size_t read_some(std::span<std::byte> dst) override {
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n = stream_.read_some(buffer(dst), ec);
      if (!retry(ec)) return finish(ec, n);
    }
  }

  boost::asio::awaitable<std::size_t> async_read_some(std::span<std::byte> dst) override {
    for (;;) {
      auto [ec, n] = co_await stream_.async_read_some(
          buffer(dst), boost::asio::as_tuple(boost::asio::use_awaitable));
      if (!retry(ec)) co_return finish(ec, n);
    }
  }

 private:
  static boost::asio::mutable_buffer buffer(std::span<std::byte> dst) {
    return boost::asio::buffer(dst.data(), std::min(dst.size(), detail::kMaxReadChunk));
  }
  static bool retry(const boost::system::error_code& ec) {
    return ec == boost::asio::error::interrupted || ec == boost::asio::error::try_again ||
           ec == boost::asio::error::would_block;
  }
  // Bytes read, 0 at end of stream; a failure throws.
  std::size_t finish(const boost::system::error_code& ec, std::size_t n) {
    if (ec == boost::asio::error::eof) return 0;
    if (ec) fail(failure_kind_, printable(name()) + ": read failed: " + ec.message());
    return n;
  }

  Stream stream_;
  std::string_view kind_;
  ErrorKind failure_kind_;
  int restore_flags_ = -1;
};

using Descriptor = boost::asio::posix::basic_stream_descriptor<boost::asio::any_io_executor>;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::any_io_executor>;

}  // namespace

namespace detail {

SourcePtr make_fd_stream_source(std::string name, UniqueFd fd,
                                boost::asio::any_io_executor executor) {
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0) fail_errno(name, "cannot use descriptor", errno);
  Descriptor d(executor);
  d.assign(fd.get());
  fd.release();
  auto source = std::make_shared<AsioStreamSource<Descriptor>>(std::move(name), std::move(d),
                                                               "pipe", ErrorKind::io);
  source->restore_flags_on_close(flags);
  return source;
}

}  // namespace detail

SourcePtr make_fd_stream_source(std::string name, int fd, boost::asio::any_io_executor executor) {
  return detail::make_fd_stream_source(std::move(name), detail::UniqueFd(fd), std::move(executor));
}

SourcePtr make_tcp_source(const std::string& host, const std::string& port,
                          boost::asio::any_io_executor executor) {
  const bool v6 = host.find(':') != std::string::npos;
  std::string name = "tcp://" + (v6 ? "[" + host + "]" : host) + ":" + port;
  boost::asio::ip::basic_resolver<boost::asio::ip::tcp, boost::asio::any_io_executor> resolver(
      executor);
  boost::system::error_code ec;
  const auto endpoints =
      resolver.resolve(host, port, boost::asio::ip::resolver_base::numeric_service, ec);
  if (ec) fail(ErrorKind::network, printable(name) + ": cannot resolve host: " + ec.message());
  Socket socket(executor);
  boost::asio::connect(socket, endpoints, ec);
  if (ec) fail(ErrorKind::network, printable(name) + ": cannot connect: " + ec.message());
  return std::make_shared<AsioStreamSource<Socket>>(std::move(name), std::move(socket), "tcp",
                                                    ErrorKind::network);
}

}  // namespace mneme
