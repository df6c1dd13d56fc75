// SHA-256 and HMAC-SHA256 from OpenSSL's libcrypto, loaded on first use
// (dlopen of libcrypto.so.3, like libcurl in io/curl_api.hpp: a local load
// pays nothing for it). Internal to io/; S3 request signing needs them.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mneme::crypto {

using Digest = std::array<std::uint8_t, 32>;

Digest sha256(std::string_view data);
Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data);
std::string hex(std::span<const std::uint8_t> bytes);  // lower-case

}  // namespace mneme::crypto
