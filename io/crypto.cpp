#include "io/crypto.hpp"

#include <dlfcn.h>

#include <mutex>

#include "mneme/error.hpp"

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
    void* lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      fail(ErrorKind::unsupported, std::string("signing S3 requests needs OpenSSL (libcrypto.so.3): ") +
                                       (why ? why : "not found"));
    }
    const auto sym = [lib](const char* name) {
      void* f = dlsym(lib, name);
      if (!f) fail(ErrorKind::unsupported, std::string("libcrypto.so.3 lacks ") + name);
      return f;
    };
    a.sha256 = reinterpret_cast<decltype(a.sha256)>(sym("SHA256"));
    a.evp_sha256 = reinterpret_cast<decltype(a.evp_sha256)>(sym("EVP_sha256"));
    a.hmac = reinterpret_cast<decltype(a.hmac)>(sym("HMAC"));
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
