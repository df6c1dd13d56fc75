// AWS Signature Version 4 for requests without a body (GET, HEAD), checked
// against AWS's published test suite (tests/test_sigv4.cpp). Internal to io/.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mneme::sigv4 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // temporary credentials; empty otherwise
};

struct Request {
  std::string method = "GET";
  std::string host;   // as the Host header carries it (host[:port])
  std::string path;   // URI-encoded, as sent ("/" at least)
  std::string query;  // URI-encoded "k=v&k2=v2", as sent; may be empty
  // Headers to sign besides host (names lower-case).
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Signed {
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;  // the Authorization header's value
};

// The SHA-256 of an empty payload, as x-amz-content-sha256 carries it.
inline constexpr const char* kEmptyPayload =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Signs `r` at `amz_date` (YYYYMMDD'T'HHMMSS'Z') for `region` and `service`;
// the payload hash is that of an empty body.
Signed sign(const Request& r, const Credentials& c, const std::string& region,
            const std::string& service, const std::string& amz_date);

// Percent-encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - . _ ~
// (and '/' when keep_slash).
std::string uri_encode(std::string_view s, bool keep_slash);

// The current time as an x-amz-date.
std::string now();

}  // namespace mneme::sigv4
