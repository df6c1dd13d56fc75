// std::istream adapter: any buffered stream the caller already has (a
// decompressor, a string stream, a custom streambuf). Its reads block, so its
// async path runs them inline on the awaiting coroutine's thread.
#include <algorithm>
#include <ios>
#include <limits>

#include "io/sequential_source.hpp"
#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

class IstreamSource final : public detail::SequentialSource {
 public:
  IstreamSource(std::string name, std::unique_ptr<std::istream> in,
                std::optional<std::uint64_t> size)
      : SequentialSource(std::move(name), size), in_(std::move(in)) {}

  std::string_view kind() const override { return "istream"; }

 protected:
  std::size_t read_some(std::span<std::byte> dst) override {
    // istream::read fills the whole request unless the stream ends or fails.
    const auto want = static_cast<std::streamsize>(
        std::min<std::size_t>(dst.size(), std::numeric_limits<std::streamsize>::max()));
    try {
      in_->read(reinterpret_cast<char*>(dst.data()), want);
    } catch (const std::ios_base::failure& e) {  // a stream with exceptions() set
      if (!in_->bad() && in_->gcount() > 0) return static_cast<std::size_t>(in_->gcount());
      if (!in_->bad()) return 0;
      fail(ErrorKind::io, printable(name()) + ": stream read failed: " + e.what());
    }
    if (in_->bad()) fail(ErrorKind::io, printable(name()) + ": stream read failed");
    return static_cast<std::size_t>(in_->gcount());
  }

 private:
  std::unique_ptr<std::istream> in_;
};

}  // namespace

SourcePtr make_istream_source(std::string name, std::unique_ptr<std::istream> in,
                              std::optional<std::uint64_t> size) {
  if (!in) fail(ErrorKind::io, printable(name) + ": no stream");
  return std::make_shared<IstreamSource>(std::move(name), std::move(in), size);
}

}  // namespace mneme
