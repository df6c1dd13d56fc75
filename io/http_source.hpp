// HttpSource: HTTP(S) objects read with range requests (io/http_source.cpp
// says how). Internal to io/; S3 builds on it with a request signer.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "io/http_client.hpp"
#include "mneme/source.hpp"

namespace mneme {

// Adds what a request needs to be authorised (S3: SigV4 headers) just before
// it is sent; called for every attempt.
using RequestSigner = std::function<void(http::Request&)>;

class HttpSource final : public Source, public std::enable_shared_from_this<HttpSource> {
 public:
  // Reads the first byte (blocking): the size and the validator.
  HttpSource(std::string url, std::string name, boost::asio::any_io_executor executor,
             const OpenOptions& options, RequestSigner signer = {});

  const std::string& name() const override { return name_; }
  std::optional<std::uint64_t> size() const override { return size_; }
  std::string_view kind() const override { return "http"; }
  unsigned concurrency() const override { return std::max(1u, options_.connections); }
  const std::string& etag() const { return etag_; }

  void read_at(std::uint64_t offset, std::span<std::byte> dst) override;
  boost::asio::awaitable<void> async_read_at(std::uint64_t offset,
                                             std::span<std::byte> dst) override;

 private:
  enum class Verdict { done, retry, fail };
  http::Request request(std::uint64_t first, std::uint64_t last, std::span<std::byte> body) const;
  void probe();
  Verdict judge(const http::Response& r, std::uint64_t first, std::uint64_t last,
                std::string& why) const;
  std::uint64_t kept(const http::Response& r, std::uint64_t first) const;
  void check_range(std::uint64_t offset, std::size_t n) const;
  [[noreturn]] void give_up(std::uint64_t offset, std::uint64_t length, unsigned attempts,
                            const std::string& why) const;
  boost::asio::awaitable<void> fetch_part(std::uint64_t offset, std::span<std::byte> part);

  std::string url_;
  std::string name_;
  boost::asio::any_io_executor executor_;
  OpenOptions options_;
  RequestSigner signer_;
  std::uint64_t size_ = 0;
  std::string etag_;
  std::string last_modified_;
};

// A small object read whole with GET (an index, config.json, a listing),
// with the same retries as a part: nullopt on 404; Error{limit} above `cap`
// bytes, Error{network} for anything else that is not a 200.
std::optional<std::string> http_get_small(const std::string& url, const std::string& name,
                                          std::uint64_t cap, const OpenOptions& options,
                                          const RequestSigner& signer = {});

}  // namespace mneme
