// Asio stream sources: pipes, FIFOs and stdin (posix::stream_descriptor) and
// TCP connections (ip::tcp::socket). One template serves both; only the error
// kind of a transport failure differs (io for descriptors, network for TCP),
// and TCP reads give up when the peer sends nothing for the idle timeout.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <variant>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/file_kinds.hpp"
#include "io/sequential_source.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

// "1.5 s" for messages.
std::string seconds_text(std::chrono::milliseconds t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", std::chrono::duration<double>(t).count());
  return buf;
}

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
    if (restore_flags_ >= 0) {
      ::fcntl(stream_.native_handle(), F_SETFL, restore_flags_);
    }
  }
  AsioStreamSource(const AsioStreamSource&) = delete;
  AsioStreamSource& operator=(const AsioStreamSource&) = delete;

  // File status flags to restore before the descriptor closes (-1: none).
  void restore_flags_on_close(int flags) { restore_flags_ = flags; }
  // A read that waits longer than this for the next byte fails (0: never).
  void set_idle_timeout(std::chrono::milliseconds t) { idle_ = t; }

  std::string_view kind() const override { return kind_; }

 protected:
  std::size_t read_some(std::span<std::byte> dst) override {
    for (;;) {
      if (idle_.count() > 0) {
        wait_readable();
      }
      boost::system::error_code ec;
      const std::size_t n = stream_.read_some(buffer(dst), ec);
      if (!retry(ec)) {
        return finish(ec, n);
      }
    }
  }

  boost::asio::awaitable<std::size_t> async_read_some(std::span<std::byte> dst) override {
    using namespace boost::asio::experimental::awaitable_operators;
    for (;;) {
      if (idle_.count() == 0) {
        auto [ec, n] = co_await stream_.async_read_some(
            buffer(dst), boost::asio::as_tuple(boost::asio::use_awaitable));
        if (!retry(ec)) {
          co_return finish(ec, n);
        }
        continue;
      }
      // The read races a timer; whichever completes first cancels the other.
      boost::asio::steady_timer timer(stream_.get_executor(), idle_);
      auto read =
          stream_.async_read_some(buffer(dst), boost::asio::as_tuple(boost::asio::use_awaitable));
      auto idle = timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      auto first = co_await (std::move(read) || std::move(idle));
      if (first.index() == 1) {
        fail_idle();
      }
      auto [ec, n] = std::get<0>(first);
      if (!retry(ec)) {
        co_return finish(ec, n);
      }
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
    if (ec == boost::asio::error::eof) {
      return 0;
    }
    if (ec) {
      fail(failure_kind_, printable(name()) + ": read failed: " + ec.message());
    }
    return n;
  }

  [[noreturn]] void fail_idle() const {
    fail(failure_kind_, printable(name()) + ": no data for " + seconds_text(idle_) +
                            " (idle timeout); the peer stalled");
  }
  // Blocking reads: wait for data (or the end, or an error) at most idle_.
  void wait_readable() {
    pollfd p{stream_.native_handle(), POLLIN, 0};
    for (;;) {
      const int rc = ::poll(&p, 1, static_cast<int>(idle_.count()));
      if (rc > 0) {
        return;
      }
      if (rc == 0) {
        fail_idle();
      }
      if (errno != EINTR) {
        fail(failure_kind_, printable(name()) + ": poll failed: " + std::strerror(errno));
      }
    }
  }

  Stream stream_;
  std::string_view kind_;
  ErrorKind failure_kind_;
  int restore_flags_ = -1;
  std::chrono::milliseconds idle_{0};
};

using Descriptor = boost::asio::posix::basic_stream_descriptor<boost::asio::any_io_executor>;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::any_io_executor>;

}  // namespace

namespace detail {

SourcePtr make_fd_stream_source(std::string name, UniqueFd fd,
                                boost::asio::any_io_executor executor) {
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0) {
    fail_errno(name, "cannot use descriptor", errno);
  }
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

namespace {

// Connects to the first endpoint that answers within `timeout` (each try gets
// what is left of it): a non-blocking connect, then poll for writability.
void connect_with_timeout(Socket& socket, const auto& endpoints, std::chrono::milliseconds timeout,
                          const std::string& name) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no address";
  for (const auto& entry : endpoints) {
    boost::system::error_code ec;
    if (socket.is_open()) {
      socket.close(ec);
    }
    socket.open(entry.endpoint().protocol(), ec);
    if (ec) {
      last = ec.message();
      continue;
    }
    // The native call: Asio's synchronous connect waits without limit even on
    // a non-blocking socket.
    socket.non_blocking(true, ec);
    const auto ep = entry.endpoint();
    if (::connect(socket.native_handle(), ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
      ec = boost::system::error_code(errno, boost::system::system_category());
    }
    if (ec == boost::asio::error::in_progress || ec == boost::asio::error::would_block) {
      pollfd p{socket.native_handle(), POLLOUT, 0};
      int rc;
      do {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        rc = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
      } while (rc < 0 && errno == EINTR);
      if (rc == 0) {
        fail(ErrorKind::network, printable(name) + ": cannot connect: no answer within " +
                                     seconds_text(timeout) + " (connect timeout)");
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (rc < 0 || ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
      ec = err ? boost::system::error_code(err, boost::system::system_category())
               : boost::system::error_code();
    }
    if (!ec) {
      socket.non_blocking(false, ec);
      return;
    }
    last = ec.message();
  }
  fail(ErrorKind::network, printable(name) + ": cannot connect: " + last);
}

}  // namespace

SourcePtr make_tcp_source(const std::string& host, const std::string& port,
                          const OpenOptions& options, boost::asio::any_io_executor executor) {
  const bool v6 = host.find(':') != std::string::npos;
  std::string name = "tcp://" + (v6 ? "[" + host + "]" : host) + ":" + port;
  boost::asio::ip::basic_resolver<boost::asio::ip::tcp, boost::asio::any_io_executor> resolver(
      executor);
  boost::system::error_code ec;
  const auto endpoints =
      resolver.resolve(host, port, boost::asio::ip::resolver_base::numeric_service, ec);
  if (ec) {
    fail(ErrorKind::network, printable(name) + ": cannot resolve host: " + ec.message());
  }
  Socket socket(executor);
  connect_with_timeout(socket, endpoints, options.connect_timeout, name);
  auto source = std::make_shared<AsioStreamSource<Socket>>(std::move(name), std::move(socket),
                                                           "tcp", ErrorKind::network);
  source->set_idle_timeout(options.idle_timeout);
  return source;
}

}  // namespace mneme
