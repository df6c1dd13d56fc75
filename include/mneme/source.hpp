// Byte sources: where tensor bytes come from (design guide, "The data path" 1).
//
// One abstraction with two faces. Random-access sources (files, mmap, memory,
// HTTP ranges) serve any offset in any order, with any number of reads in
// flight. Sequential sources (pipes, sockets, std::istream) serve offsets in
// ascending order only: a forward gap is read and discarded, and a read behind
// the cursor fails with Error{unsupported}, except inside the retained prefix
// (the first kRetainedPrefix bytes, kept so that format detection and header
// parsing may read them twice). Concurrent async reads of a sequential source
// are served one at a time, in the order they were issued.
//
// Every read fills the whole buffer or throws: Error{io} for a short source
// (end of file or stream inside the range, a range past size()) and local I/O
// failures, Error{network} for transport failures, Error{unsupported} for a
// read a sequential source cannot serve. Messages name the source.
//
// As with any Asio operation, the destination buffer (and the Source) must
// stay alive until an async read completes; async reads keep their Source
// alive themselves when it is owned by a SourcePtr.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace mneme {

// Which file a source reads (device and inode), to tell an output file that
// is one of the inputs.
struct FileId {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  bool operator==(const FileId&) const = default;
};

class Source {
 public:
  virtual ~Source() = default;

  // What the user named: a path, URL or "-".
  virtual const std::string& name() const = 0;

  // Total size in bytes, when the source knows it (sequential ones may not;
  // they learn it when they reach the end of the stream).
  virtual std::optional<std::uint64_t> size() const = 0;

  virtual bool sequential() const { return false; }

  // Whole content addressable in memory (mmap, memory buffer): the pipeline
  // decodes straight from it with no copy. nullptr when not. Non-null for an
  // empty in-memory source too.
  virtual const std::byte* contiguous() const { return nullptr; }
  // Throws Error{io} when bytes contiguous() gave may not have been the
  // source's (a mapped file shrank under its mapping: the lost pages read as
  // zeros). Called after each use of them.
  virtual void check_intact() const {}
  // A hint that bytes contiguous() gave are about to be read: a mapping
  // populates their page tables here, on the reading thread, so that the
  // decoders do not fault on them one by one. Never fails.
  virtual void prefetch(std::uint64_t offset, std::uint64_t length) const {}

  // The implementation serving the reads, for logs and stats: "uring",
  // "pread", "mmap", "memory", "istream", "pipe", "tcp", ...
  virtual std::string_view kind() const { return "custom"; }

  // Reads worth having in flight at once (a pipeline runs this many readers
  // on a random-access source, budget permitting).
  virtual unsigned concurrency() const { return 8; }

  // The local file behind the source (regular files and block devices, also
  // when redirected to stdin); empty for anything else.
  virtual std::optional<FileId> file_id() const { return std::nullopt; }

  // Blocking read of exactly dst.size() bytes at offset. Used by parsers for
  // header bytes, by the pread fallback, and, on a contiguous source, by
  // decode threads at once (chunks with nothing to convert are copied with it).
  virtual void read_at(std::uint64_t offset, std::span<std::byte> dst) = 0;

  // Asynchronous read of exactly dst.size() bytes at offset. The coroutine
  // resumes on the awaiting coroutine's executor. The default runs read_at
  // inline (right for memory and mmap, which never block on a device).
  virtual boost::asio::awaitable<void> async_read_at(std::uint64_t offset,
                                                     std::span<std::byte> dst);
};

using SourcePtr = std::shared_ptr<Source>;

// Bytes at the start of a sequential source that stay readable twice.
inline constexpr std::size_t kRetainedPrefix = 64 * 1024;

// How to open files.
enum class FileIo : std::uint8_t {
  automatic,  // mmap where the file can be mapped, else pread (measured fastest)
  uring,      // io_uring via Asio random_access_file (Error{unsupported} if unavailable)
  pread,      // blocking pread; async reads run on a small shared thread pool
  mmap,       // memory-mapped, zero copy. A file truncated while mapped is
              // Error{io}, never SIGBUS (io/mapping_guard.hpp).
};

struct OpenOptions {
  FileIo file_io = FileIo::automatic;
  // Network sources: how long connecting may take, and how long a connection
  // may send nothing (HTTP: less than stall_bytes_per_second) while a read
  // waits, before Error{network}.
  std::chrono::milliseconds connect_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::uint32_t stall_bytes_per_second = 1024;
  // HTTP(S) and S3 objects: reads are cut into ranged GETs of part_bytes (at
  // least 1 MiB), up to `connections` per host in flight; a part that fails
  // transiently (5xx, 408, 429, reset, stall, truncated body) is retried up
  // to max_attempts in all, after a full-jitter backoff between 0 and
  // min(retry_cap, retry_base * 2^attempt), resuming after its last byte.
  std::uint64_t part_bytes = 8ull << 20;
  unsigned connections = 16;
  unsigned max_attempts = 5;
  std::chrono::milliseconds retry_base{100};
  std::chrono::milliseconds retry_cap{20'000};
  // Extra request headers for http(s):// sources ("Name: value").
  std::vector<std::string> http_headers;
  // s3:// without signing (public buckets), as AWS_NO_SIGN_REQUEST does.
  bool s3_anonymous = false;
  // A local path mneme found rather than the user named (a shard an index
  // lists, a GGUF split sibling, a file in a model folder): anything but a
  // regular file is Error{io} before open() could block (a FIFO would wait
  // for a writer forever).
  bool regular_file_only = false;
};

// Picks a source for a spec:
//   "-"                stdin (a regular file on stdin is read as a file)
//   "tcp://host:port"  a TCP connection (IPv6 literals as [::1]), sequential
//   "file://path"      a file (percent-escapes decoded), like a plain path
//   "http(s)://..."    an object read with HTTP range requests (random access)
//   "s3://bucket/key"  an S3 object, the same way, with SigV4-signed requests
//                      (credentials, region and endpoint as the AWS CLI finds them)
//   anything else      a path: a regular file or block device per
//                      options.file_io; a pipe or FIFO (e.g. /dev/fd/63 from
//                      `<(cmd)`) becomes a sequential source.
// Other schemes throw Error{unsupported}; a missing or
// unreadable file throws Error{io} naming the path; a failed connection
// throws Error{network}. The executor runs io_uring and socket completions.
SourcePtr open_source(const std::string& spec, boost::asio::any_io_executor executor,
                      const OpenOptions& options = {});

}  // namespace mneme
