// Choosing the implementation for a local file or stdin: FileIo for regular
// files and block devices (automatic: a guarded mapping, else pread); a
// sequential descriptor source for pipes, FIFOs and terminals.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "io/file_kinds.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

SourcePtr make_from_opened(std::string name, detail::OpenedFile file,
                           boost::asio::any_io_executor executor, FileIo mode) {
  if (!file.random_access) {
    // `<(cmd)`, a FIFO, /dev/stdin on a pipe: pread would fail with ESPIPE.
    return detail::make_fd_stream_source(std::move(name), std::move(file.fd), executor);
  }
  switch (mode) {
    case FileIo::pread:
      return detail::make_pread_source(std::move(name), std::move(file));
    case FileIo::mmap:
      return detail::make_mmap_source(std::move(name), file);
    case FileIo::uring:
      return detail::make_uring_source(std::move(name), file, executor);
    case FileIo::automatic:
      // Measured (docs/perf-experiments.md, "The default local read"): a
      // mapping decodes straight from the page cache, with no copy and no
      // reader thread competing with the decoders, and is never slower than
      // pread cold; io_uring never won. Truncation under the mapping is
      // Error{io} (io/mapping_guard.hpp), as it is for pread.
      if (auto mapped = detail::try_make_mmap_source(name, file)) return mapped;
      return detail::make_pread_source(std::move(name), std::move(file));
  }
  fail(ErrorKind::unsupported, printable(name) + ": unknown file I/O mode");
}

}  // namespace

SourcePtr make_file_source(const std::string& path, boost::asio::any_io_executor executor,
                           FileIo mode, std::string name, bool regular_only) {
  if (name.empty()) name = path;
  auto file = regular_only ? detail::open_regular_file(path, name) : detail::open_file(path, name);
  return make_from_opened(std::move(name), std::move(file), std::move(executor), mode);
}

SourcePtr make_stdin_source(boost::asio::any_io_executor executor) {
  // A duplicate, so that closing the source leaves fd 0 to the process.
  const int fd = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) detail::fail_errno("-", "cannot use stdin", errno);
  auto file = detail::describe_fd(detail::UniqueFd(fd), "-");
  // A regular file redirected in (`< model.gguf`) is read with pread, from its
  // start; unless something already consumed part of it, then only the stream
  // from here on is ours, read sequentially.
  if (file.random_access && ::lseek(file.fd.get(), 0, SEEK_CUR) != 0) file.random_access = false;
  return make_from_opened("-", std::move(file), std::move(executor), FileIo::pread);
}

}  // namespace mneme
