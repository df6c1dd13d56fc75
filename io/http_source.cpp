// A random-access source over HTTP(S) range requests. The first response
// gives the size (Content-Range) and the validator (ETag, else
// Last-Modified); every later request is pinned to it with If-Match
// (If-Unmodified-Since), so an object that changes mid-load is an error,
// never a mix of two versions. Reads are cut into parts of
// OpenOptions::part_bytes fetched concurrently, each landing straight in the
// caller's buffer; a part that fails transiently is retried after a
// full-jitter exponential backoff and resumed after its last received byte.
// A response is data only when it is a 206 whose Content-Range is exactly the
// range asked for, of the object's size, and whose body fills it exactly.
#include "io/http_source.hpp"

#include "io/remote.hpp"

#include <algorithm>
#include <charconv>
#include <random>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "mneme/error.hpp"

namespace mneme {
namespace {

namespace asio = boost::asio;
using http::Request;
using http::Response;

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// "bytes FIRST-LAST/TOTAL" or "bytes */TOTAL".
struct ContentRange {
  std::optional<std::uint64_t> first, last, total;
};

std::optional<ContentRange> parse_content_range(const std::string* h) {
  if (!h || !h->starts_with("bytes ")) return std::nullopt;
  const std::string_view v = std::string_view(*h).substr(6);
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  ContentRange r;
  const auto range = v.substr(0, slash), total = v.substr(slash + 1);
  if (total != "*" && !(r.total = number(total))) return std::nullopt;
  if (range != "*") {
    const auto dash = range.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    r.first = number(range.substr(0, dash));
    r.last = number(range.substr(dash + 1));
    if (!r.first || !r.last || *r.last < *r.first) return std::nullopt;
  }
  return r;
}

// " Code: Message (request id ...)" of an S3-style XML error body.
std::string xml_error(const std::string& body) {
  const auto field = [&](const char* tag) -> std::string {
    const std::string open = std::string("<") + tag + ">", close = std::string("</") + tag + ">";
    const auto a = body.find(open);
    const auto b = a == std::string::npos ? a : body.find(close, a);
    return b == std::string::npos ? std::string()
                                  : printable(body.substr(a + open.size(), b - a - open.size()), 200);
  };
  std::string out;
  if (auto code = field("Code"); !code.empty()) out += " " + code;
  if (auto msg = field("Message"); !msg.empty()) out += ": " + msg;
  if (auto id = field("RequestId"); !id.empty()) out += " (request id " + id + ")";
  return out;
}

bool retryable_status(long status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

std::chrono::milliseconds backoff(const OpenOptions& o, unsigned attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto cap = std::min<std::uint64_t>(
      static_cast<std::uint64_t>(o.retry_cap.count()),
      static_cast<std::uint64_t>(o.retry_base.count()) << std::min(attempt, 30u));
  return std::chrono::milliseconds(std::uniform_int_distribution<std::uint64_t>(0, cap)(rng));
}

}  // namespace

HttpSource::HttpSource(std::string url, std::string name, asio::any_io_executor executor,
                       const OpenOptions& options, RequestSigner signer)
    : url_(std::move(url)),
      name_(std::move(name)),
      executor_(std::move(executor)),
      options_(options),
      signer_(std::move(signer)) {
  if (options_.part_bytes < (1u << 20)) options_.part_bytes = 1u << 20;
  if (options_.max_attempts == 0) options_.max_attempts = 1;
  http::set_max_host_connections(executor_, std::max(1u, options_.connections));
  probe();
}

Request HttpSource::request(std::uint64_t first, std::uint64_t last,
                            std::span<std::byte> body) const {
  Request r;
  r.url = url_;
  r.headers = options_.http_headers;
  if (!etag_.empty() && !etag_.starts_with("W/")) {  // If-Match compares strong tags only
    r.headers.push_back("If-Match: " + etag_);
  } else if (!last_modified_.empty()) {
    r.headers.push_back("If-Unmodified-Since: " + last_modified_);
  }
  r.range = {first, last};
  r.body = body;
  r.timeouts.connect = options_.connect_timeout;
  r.timeouts.low_speed_bytes = options_.stall_bytes_per_second;
  r.timeouts.low_speed_time = std::max(
      std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(options_.idle_timeout));
  if (signer_) signer_(r);
  return r;
}

// The first byte: size and validator. An empty object answers 416 with
// "bytes */0".
void HttpSource::probe() {
  std::byte first[1];
  Request r = request(0, 0, first);
  Response resp;
  for (unsigned attempt = 1;; ++attempt) {
    resp = http::perform_blocking(r);
    const bool transient = resp.curl_code != 0 ? resp.transient : retryable_status(resp.status);
    if (!transient || attempt >= options_.max_attempts) break;
    std::this_thread::sleep_for(backoff(options_, attempt));
  }
  if (resp.curl_code != 0 && !(resp.overflow && resp.status == 200)) {
    fail(ErrorKind::network, name_ + ": " + resp.curl_error);
  }
  const auto range = parse_content_range(resp.header("content-range"));
  if (resp.status == 416 && range && range->total == 0) {
    size_ = 0;
  } else if (resp.status == 206 && range && range->total && range->first == 0 && range->last == 0) {
    size_ = *range->total;
  } else if (resp.status == 200) {
    fail(ErrorKind::network, name_ + ": the server ignores range requests (200 instead of 206)");
  } else if (resp.status == 404) {
    fail(ErrorKind::io, name_ + ": not found (HTTP 404" + xml_error(resp.error_body) + ")");
  } else {
    fail(ErrorKind::network, name_ + ": HTTP " + std::to_string(resp.status) +
                                 xml_error(resp.error_body) + " when reading its first byte");
  }
  if (const auto* e = resp.header("etag")) etag_ = *e;
  if (const auto* m = resp.header("last-modified")) last_modified_ = *m;
}

// What one attempt at [offset + got, offset + dst.size()) brought: the bytes
// it placed (kept only when they are the range asked for), and whether the
// part is done, worth another attempt, or failed.
HttpSource::Verdict HttpSource::judge(const Response& r, std::uint64_t first, std::uint64_t last,
                                      std::string& why) const {
  const auto range = parse_content_range(r.header("content-range"));
  const bool right_range = r.status == 206 && range && range->first == first &&
                           range->last == last && range->total == size_;
  if (r.status == 206 && !right_range) {
    why = "206 with Content-Range \"" +
          printable(r.header("content-range") ? *r.header("content-range") : "", 80) +
          "\" for bytes " + std::to_string(first) + "-" + std::to_string(last) + " of " +
          std::to_string(size_);
    return Verdict::fail;
  }
  if (const auto* enc = r.header("content-encoding"); enc && *enc != "identity") {
    why = "a ranged response with Content-Encoding " + printable(*enc, 40);
    return Verdict::fail;
  }
  if (r.overflow) {
    why = "a body longer than the range asked for";
    return Verdict::fail;
  }
  if (r.curl_code != 0) {
    why = r.curl_error;
    return r.transient ? Verdict::retry : Verdict::fail;
  }
  if (right_range) {
    if (r.body_bytes == last - first + 1) return Verdict::done;
    why = "the body ended after " + std::to_string(r.body_bytes) + " of " +
          std::to_string(last - first + 1) + " bytes";
    return Verdict::retry;
  }
  why = "HTTP " + std::to_string(r.status) + xml_error(r.error_body);
  if (r.status == 200) {
    why += " (the server ignored the range request)";
  } else if (r.status == 412) {
    why += " (the object changed during the load)";
  } else if (r.status == 416) {
    why += " (the range is past the object's end)";
  }
  return retryable_status(r.status) ? Verdict::retry : Verdict::fail;
}

// Bytes of a part that a failed attempt delivered in order from its start.
std::uint64_t HttpSource::kept(const Response& r, std::uint64_t first) const {
  const auto range = parse_content_range(r.header("content-range"));
  const bool ours = r.status == 206 && range && range->first == first && range->total == size_;
  return ours && !r.overflow ? r.body_bytes : 0;
}

[[noreturn]] void HttpSource::give_up(std::uint64_t offset, std::uint64_t length,
                                      unsigned attempts, const std::string& why) const {
  fail(ErrorKind::network, name_ + ": bytes " + std::to_string(offset) + "-" +
                               std::to_string(offset + length - 1) + ": " + why + " (" +
                               std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s") +
                               ")");
}

void HttpSource::check_range(std::uint64_t offset, std::size_t n) const {
  if (offset > size_ || n > size_ - offset) {
    fail(ErrorKind::io, name_ + ": read of " + std::to_string(n) + " bytes at " +
                            std::to_string(offset) + " past its size " + std::to_string(size_));
  }
}

void HttpSource::read_at(std::uint64_t offset, std::span<std::byte> dst) {
  check_range(offset, dst.size());
  for (std::size_t at = 0; at < dst.size(); at += options_.part_bytes) {
    const auto part = dst.subspan(at, std::min<std::size_t>(options_.part_bytes, dst.size() - at));
    std::uint64_t got = 0;
    unsigned failures = 0;
    while (got < part.size()) {
      const std::uint64_t first = offset + at + got, last = offset + at + part.size() - 1;
      const Response r = http::perform_blocking(request(first, last, part.subspan(got)));
      std::string why;
      const Verdict v = judge(r, first, last, why);
      if (v == Verdict::done) break;
      const std::uint64_t more = kept(r, first);
      got += more;
      if (v == Verdict::fail || (more == 0 && ++failures >= options_.max_attempts)) {
        give_up(offset + at, part.size(), failures + (v == Verdict::fail), why);
      }
      std::this_thread::sleep_for(backoff(options_, failures));
    }
  }
}

asio::awaitable<void> HttpSource::fetch_part(std::uint64_t offset, std::span<std::byte> part) {
  std::uint64_t got = 0;
  unsigned failures = 0;
  while (got < part.size()) {
    const std::uint64_t first = offset + got, last = offset + part.size() - 1;
    const Response r = co_await http::perform(executor_, request(first, last, part.subspan(got)));
    std::string why;
    const Verdict v = judge(r, first, last, why);
    if (v == Verdict::done) co_return;
    const std::uint64_t more = kept(r, first);
    got += more;
    if (v == Verdict::fail || (more == 0 && ++failures >= options_.max_attempts)) {
      give_up(offset, part.size(), failures + (v == Verdict::fail), why);
    }
    asio::steady_timer pause(executor_, backoff(options_, failures));
    co_await pause.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> HttpSource::async_read_at(std::uint64_t offset, std::span<std::byte> dst) {
  check_range(offset, dst.size());
  if (dst.size() <= options_.part_bytes) {
    co_await fetch_part(offset, dst);
    co_return;
  }
  // Parts in parallel; the first failure is rethrown once every part has ended.
  struct Join {
    std::size_t pending = 0;
    std::exception_ptr error;
    std::optional<asio::steady_timer> all_done;
  };
  auto join = std::make_shared<Join>();
  join->all_done.emplace(executor_, asio::steady_timer::time_point::max());
  const auto self = shared_from_this();
  for (std::size_t at = 0; at < dst.size(); at += options_.part_bytes) {
    const auto part = dst.subspan(at, std::min<std::size_t>(options_.part_bytes, dst.size() - at));
    ++join->pending;
    asio::co_spawn(executor_, fetch_part(offset + at, part), [join, self](std::exception_ptr e) {
      if (e && !join->error) join->error = e;
      if (--join->pending == 0) join->all_done->cancel();
    });
  }
  boost::system::error_code ec;
  while (join->pending > 0) {
    co_await join->all_done->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (join->error) std::rethrow_exception(join->error);
}

std::optional<std::string> http_get_small(const std::string& url, const std::string& name,
                                          std::uint64_t cap, const OpenOptions& options,
                                          const RequestSigner& signer) {
  std::string text(cap, '\0');
  Request r;
  r.url = url;
  r.headers = options.http_headers;
  r.timeouts.connect = options.connect_timeout;
  r.timeouts.low_speed_bytes = options.stall_bytes_per_second;
  r.timeouts.low_speed_time = std::max(
      std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(options.idle_timeout));
  r.body = std::as_writable_bytes(std::span(text));
  Response resp;
  for (unsigned attempt = 1;; ++attempt) {
    http::Request signed_request = r;
    if (signer) signer(signed_request);
    resp = http::perform_blocking(signed_request);
    const bool transient = resp.curl_code != 0 ? resp.transient : retryable_status(resp.status);
    if (!transient || attempt >= std::max(1u, options.max_attempts)) break;
    std::this_thread::sleep_for(backoff(options, attempt));
  }
  if (resp.status == 404) return std::nullopt;
  if (resp.overflow) {
    fail(ErrorKind::limit, printable(name) + " is larger than " + std::to_string(cap) + " bytes");
  }
  if (resp.curl_code != 0) fail(ErrorKind::network, printable(name) + ": " + resp.curl_error);
  if (resp.status != 200) {
    fail(ErrorKind::network,
         printable(name) + ": HTTP " + std::to_string(resp.status) + xml_error(resp.error_body));
  }
  text.resize(resp.body_bytes);
  return text;
}

SourcePtr make_http_source(const std::string& url, boost::asio::any_io_executor executor,
                           const OpenOptions& options) {
  RemoteObject object = resolve_remote(url, options);
  return std::make_shared<HttpSource>(std::move(object.url), std::move(object.name),
                                      std::move(executor), options, std::move(object.signer));
}

}  // namespace mneme
