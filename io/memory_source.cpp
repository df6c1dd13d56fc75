// In-memory bytes, owned or borrowed.
#include <cstring>

#include "io/posix_file.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

// Non-null stand-in for the base of an empty buffer: contiguous() promises a
// pointer whenever the source is in memory.
constexpr std::byte kEmpty{0};

class MemorySource final : public Source {
 public:
  MemorySource(std::string name, std::vector<std::byte> owned)
      : name_(std::move(name)), owned_(std::move(owned)), view_(owned_) {}
  MemorySource(std::string name, std::span<const std::byte> view)
      : name_(std::move(name)), view_(view) {}

  const std::string& name() const override { return name_; }
  std::optional<std::uint64_t> size() const override { return view_.size(); }
  const std::byte* contiguous() const override { return view_.empty() ? &kEmpty : view_.data(); }
  std::string_view kind() const override { return "memory"; }

  void read_at(std::uint64_t offset, std::span<std::byte> dst) override {
    detail::check_range(name_, view_.size(), offset, dst.size());
    if (!dst.empty()) std::memcpy(dst.data(), view_.data() + offset, dst.size());
  }

 private:
  std::string name_;
  std::vector<std::byte> owned_;
  std::span<const std::byte> view_;
};

}  // namespace

SourcePtr make_memory_source(std::string name, std::vector<std::byte> bytes) {
  return std::make_shared<MemorySource>(std::move(name), std::move(bytes));
}

SourcePtr make_memory_source(std::string name, std::span<const std::byte> bytes) {
  return std::make_shared<MemorySource>(std::move(name), bytes);
}

}  // namespace mneme
