// HTTP(S) transfers through libcurl, internal to io/. Asynchronous transfers
// run on libcurl's multi-socket interface driven by the Asio io_context that
// owns the service: every curl call happens on a thread running that context
// (socket readiness through Asio's reactor, curl's timeouts through an Asio
// timer). Blocking transfers (header reads while a catalog is opened, when
// no thread runs the context) use a private easy handle per call.
//
// libcurl brings what a model loader's users ask for: HTTPS_PROXY/NO_PROXY,
// redirects (the Hub's 302 to its CDN, credentials never sent to another
// host), the system CA store (CURL_CA_BUNDLE / AWS_CA_BUNDLE name another),
// HTTP/2, connection reuse and a low-speed limit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace mneme::http {

struct Timeouts {
  std::chrono::milliseconds connect{30'000};
  // A transfer moving fewer than low_speed_bytes per second for low_speed_time fails.
  std::uint32_t low_speed_bytes = 1024;
  std::chrono::seconds low_speed_time{30};
  std::chrono::milliseconds total{0};  // one request, start to end; 0: none
};

struct Request {
  std::string url;
  std::string method;  // empty: GET (HEAD with no_body)
  std::vector<std::string> headers;  // "Name: value"
  // Bytes [first, last] of the object (RFC 9110 Range); none: the whole body.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> range;
  // Where a 2xx body lands, from its first byte; a body that would overflow
  // it fails the transfer (Response::overflow). Other statuses keep up to
  // 64 KiB of their body in Response::error_body.
  std::span<std::byte> body;
  Timeouts timeouts;
  bool no_body = false;  // HEAD
};

struct Response {
  long status = 0;  // 0: no response arrived
  std::map<std::string, std::string> headers;  // names lower-cased; the last response's (after redirects)
  std::uint64_t body_bytes = 0;                 // of a 2xx body, written to Request::body
  bool overflow = false;                        // the 2xx body was longer than Request::body
  std::string error_body;                       // non-2xx body, at most 64 KiB
  int curl_code = 0;                            // CURLcode; 0 = the transfer completed
  std::string curl_error;                       // curl's message when curl_code != 0
  // The transport failed in a way another attempt may not (connection refused
  // or reset, timeout, stall, truncated body); TLS, certificate, name and URL
  // errors are not transient.
  bool transient = false;
  std::string effective_url;

  const std::string* header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

// A transfer on `executor`'s execution context (an Asio service there: one
// curl multi handle, its connection pool shared by every source opened on
// that context), which a thread must be running. Never throws for HTTP or
// transport failures (they are in the Response).
boost::asio::awaitable<Response> perform(boost::asio::any_io_executor executor, Request request);

// The same, blocking the calling thread (its own easy handle).
Response perform_blocking(Request request);

// Connections per host the context's transfers may open (default 16).
void set_max_host_connections(boost::asio::any_io_executor executor, long n);

}  // namespace mneme::http
