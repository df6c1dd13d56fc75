// Internal constructors of the file sources from a descriptor that is already
// open, so one open (and one error message for a missing path) serves every
// FileIo mode and the io_uring -> pread fallback.
#pragma once

#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "io/posix_file.hpp"
#include "mneme/source.hpp"

namespace mneme::detail {

// file.random_access must be true for these.
SourcePtr make_pread_source(std::string name, OpenedFile file);
// The mapping takes file's descriptor (for read_at) once it is made.
SourcePtr make_mmap_source(std::string name, OpenedFile& file);
// The same, but nullptr where the file cannot be mapped, leaving `file`
// untouched (the caller falls back to pread on the same descriptor).
SourcePtr try_make_mmap_source(std::string name, OpenedFile& file);
// Throws Error{unsupported} when io_uring is refused; `file` is then left
// untouched so the caller may fall back to pread on it.
SourcePtr make_uring_source(std::string name, OpenedFile& file,
                            boost::asio::any_io_executor executor);

// Any readable descriptor (pipe, FIFO, socket, tty), read sequentially.
SourcePtr make_fd_stream_source(std::string name, UniqueFd fd,
                                boost::asio::any_io_executor executor);

}  // namespace mneme::detail
