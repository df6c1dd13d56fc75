// Checked arithmetic for every header-derived size, offset and count.
// Each operation checks before it computes; overflow throws Error{parse}.
#pragma once

#include <cstdint>
#include <string_view>

#include "mneme/error.hpp"

namespace mneme {

[[noreturn]] void fail_overflow(std::string_view what);

inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    fail_overflow(what);
  }
  return r;
}

inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    fail_overflow(what);
  }
  return r;
}

// a / b rounded up (b > 0); cannot overflow.
constexpr std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) noexcept {
  return a / b + (a % b != 0);
}

// Rounds x up to a multiple of align (align > 0).
inline std::uint64_t checked_align_up(std::uint64_t x, std::uint64_t align, std::string_view what) {
  if (align == 0) {
    fail(ErrorKind::parse, std::string(what) + ": alignment is zero");
  }
  const std::uint64_t rem = x % align;
  return rem == 0 ? x : checked_add(x, align - rem, what);
}

}  // namespace mneme
