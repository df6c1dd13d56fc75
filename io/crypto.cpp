#include "io/crypto.hpp"

#include <mutex>

#include "mneme/error.hpp"
#include "src/core/dynamic_library.hpp"

namespace mneme::crypto {
namespace {

// The three libcrypto entry points used, by their C signatures.
struct Api {
  unsigned char* (*sha256)(const unsigned char*, std::size_t, unsigned char*);
  const void* (*evp_sha256)();
  unsigned char* (*hmac)(const void*, const void*, int, const unsigned char*, std::size_t,
                         unsigned char*, unsigned int*);
};

const Api& api() {
  static std::once_flag once;
  static Api a{};
  std::call_once(once, [] {
    const core::DynamicLibrary lib = core::DynamicLibrary::open(
        {"libcrypto.so.3"}, "signing S3 requests needs OpenSSL (libcrypto.so.3)");
    lib.bind(a.sha256, "SHA256");
    lib.bind(a.evp_sha256, "EVP_sha256");
    lib.bind(a.hmac, "HMAC");
  });
  return a;
}

}  // namespace

Digest sha256(std::string_view data) {
  Digest d{};
  api().sha256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data) {
  Digest d{};
  unsigned int len = 0;
  const Api& a = api();
  if (!a.hmac(a.evp_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data(), &len) ||
      len != d.size()) {
    fail(ErrorKind::network, "HMAC-SHA256 failed");
  }
  return d;
}

std::string hex(std::span<const std::uint8_t> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (const auto b : bytes) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

}  // namespace mneme::crypto
