// Memory-mapped file: zero-copy views for the pipeline (contiguous()), and
// pread on the same descriptor for copies (read_at): a copy out of the page
// cache by the kernel is cheaper than one through the mapping, whose page
// tables cost as much again (docs/perf-experiments.md, P12).
//
// A file truncated or shrunk by another process while mapped would make the
// next access to the lost pages raise SIGBUS (hostile-inputs.md item 62): the
// mapping is guarded (io/mapping_guard.hpp), lost pages read as zeros, and
// every read and every decode from the mapping is checked afterwards
// (check_intact), so the event is Error{io} as with the copy-based sources.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "io/file_kinds.hpp"
#include "io/mapping_guard.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace detail {
namespace {

constexpr std::byte kEmpty{0};

class MmapSource final : public Source {
 public:
  // Maps file; takes its descriptor once the mapping is made.
  MmapSource(std::string name, OpenedFile& file)
      : name_(std::move(name)), size_(file.size), id_(file.id) {
    // mmap of 0 bytes is EINVAL; an empty file needs no mapping at all.
    if (size_ == 0) return;
    if (size_ > SIZE_MAX) fail(ErrorKind::io, printable(name_) + ": too large to map");
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd.get(), 0);
    if (p == MAP_FAILED) fail_errno(name_, "mmap failed", errno);
    try {
      guard_.emplace(p, size_);
    } catch (...) {
      ::munmap(p, size_);  // the destructor does not run for a constructor that throws
      throw;
    }
    base_ = static_cast<const std::byte*>(p);
    // Loads read front to back: ask for aggressive readahead, early reclaim.
    ::madvise(p, size_, MADV_SEQUENTIAL);
    fd_ = std::move(file.fd);
  }
  ~MmapSource() override {
    guard_.reset();  // first: the address range may be reused once unmapped
    if (base_ != nullptr) ::munmap(const_cast<std::byte*>(base_), size_);
  }
  MmapSource(const MmapSource&) = delete;
  MmapSource& operator=(const MmapSource&) = delete;

  const std::string& name() const override { return name_; }
  std::optional<std::uint64_t> size() const override { return size_; }
  const std::byte* contiguous() const override { return base_ != nullptr ? base_ : &kEmpty; }
  std::string_view kind() const override { return "mmap"; }
  std::optional<FileId> file_id() const override { return id_; }

  // Thread-safe: decoders copy chunks stored as they are output with it.
  // A file shrunk under it is a short read, Error{io}.
  void read_at(std::uint64_t offset, std::span<std::byte> dst) override {
    check_range(name_, size_, offset, dst.size());
    if (!dst.empty()) pread_full(fd_.get(), name_, offset, dst);
  }

  void prefetch(std::uint64_t offset, std::uint64_t length) const override {
    if (base_ == nullptr || offset >= size_) return;
    static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t first = offset / page * page;
    const std::uint64_t end = std::min(size_, offset + length);
    // Page tables filled in one call (Linux 5.14); a lost page makes it fail
    // (EFAULT), never raise SIGBUS; the read that follows is checked anyway.
    ::madvise(const_cast<std::byte*>(base_) + first, end - first, MADV_POPULATE_READ);
  }

  void check_intact() const override {
    if (guard_ && guard_->lost()) {
      fail(ErrorKind::io, printable(name_) +
                              ": the file shrank while mapped (truncated by another process?); its "
                              "lost pages read as zeros");
    }
  }

 private:
  std::string name_;
  std::uint64_t size_;
  FileId id_;
  const std::byte* base_ = nullptr;
  std::optional<MappingGuard> guard_;
  UniqueFd fd_;
};

}  // namespace

SourcePtr make_mmap_source(std::string name, OpenedFile& file) {
  return std::make_shared<MmapSource>(std::move(name), file);
}

SourcePtr try_make_mmap_source(std::string name, OpenedFile& file) {
  try {
    return make_mmap_source(std::move(name), file);
  } catch (const Error&) {
    // A filesystem without mmap (ENODEV), an address-space limit, every
    // guard slot taken: the caller reads the same descriptor with pread.
    return nullptr;
  }
}

}  // namespace detail

SourcePtr make_mmap_source(const std::string& path) {
  auto file = detail::open_file(path, path);
  if (!file.random_access)
    fail(ErrorKind::io, printable(path) + ": not a regular file; cannot map it");
  return detail::make_mmap_source(path, file);
}

}  // namespace mneme
