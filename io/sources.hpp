// Factories for every kind of byte source, so tests and the pipeline can build
// one directly; open_source() (include/mneme/source.hpp) picks among them from
// a spec. All return sources owned by a SourcePtr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "mneme/source.hpp"

namespace mneme {

// In-memory bytes, owned by the source.
SourcePtr make_memory_source(std::string name, std::vector<std::byte> bytes);

// In-memory bytes owned by the caller, who keeps them alive and unchanged for
// the source's lifetime.
SourcePtr make_memory_source(std::string name, std::span<const std::byte> bytes);

// A sequential source over a std::istream (reads block the calling thread, the
// async path included). `size`, when known, makes reads past it fail early.
SourcePtr make_istream_source(std::string name, std::unique_ptr<std::istream> in,
                              std::optional<std::uint64_t> size = std::nullopt);

// Read-only map of a whole regular file; contiguous() is its first byte.
// Reads are memcpy. A file truncated while mapped: the lost pages read as
// zeros (never SIGBUS) and the read, or check_intact() after a decode, is
// Error{io} (io/mapping_guard.hpp).
SourcePtr make_mmap_source(const std::string& path);

// Blocking pread; async reads run on a shared pool of 4 threads and resume on
// the awaiting coroutine's executor. The executor is the one the source was
// opened with (pread itself needs none; kept so every file source has the same
// signature).
SourcePtr make_pread_source(const std::string& path, boost::asio::any_io_executor executor);

// io_uring through Asio random_access_file on executor's context; blocking
// reads pread the same descriptor. Throws Error{unsupported} when the kernel
// refuses io_uring (seccomp, ENOSYS, EPERM, io_uring_disabled).
SourcePtr make_uring_source(const std::string& path, boost::asio::any_io_executor executor);

// A file by FileIo: automatic tries io_uring and falls back to pread when it
// is refused. A pipe or FIFO at path becomes a sequential descriptor source.
// `name` is what messages and name() show (defaults to path). With
// `regular_only` anything but a regular file is Error{io}, found before
// open() could block (OpenOptions::regular_file_only).
SourcePtr make_file_source(const std::string& path, boost::asio::any_io_executor executor,
                           FileIo mode, std::string name = {}, bool regular_only = false);

// Standard input as "-": a pipe or terminal is read sequentially through Asio
// posix::stream_descriptor (on a duplicate, so fd 0 stays open); a regular
// file positioned at its start is read as a random-access file.
SourcePtr make_stdin_source(boost::asio::any_io_executor executor);

// A sequential source over a pipe, FIFO or socket descriptor; takes ownership
// of fd.
SourcePtr make_fd_stream_source(std::string name, int fd, boost::asio::any_io_executor executor);

// Resolves host, connects (blocking) and reads the connection sequentially;
// named "tcp://host:port". Resolve or connect failures throw Error{network}.
SourcePtr make_tcp_source(const std::string& host, const std::string& port,
                          const OpenOptions& options, boost::asio::any_io_executor executor);

// An http(s):// or s3:// object read with range requests (parts, retries,
// If-Match; see io/http_source.cpp). Reads its first byte to learn the size:
// Error{io} when it does not exist, Error{network} when it cannot be reached
// or the server ignores ranges. Its transfers run on the executor's context.
SourcePtr make_http_source(const std::string& spec, boost::asio::any_io_executor executor,
                           const OpenOptions& options);

}  // namespace mneme
