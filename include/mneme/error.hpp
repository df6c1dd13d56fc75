// mneme::Error — the one exception type every layer throws.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace mneme {

// What went wrong, coarse enough for callers to branch on.
enum class ErrorKind {
  parse,        // malformed input
  unsupported,  // recognised, not handled
  limit,        // a budget or cap was exceeded
  security,     // e.g. a pickle global outside the allowlist
  io,           // local I/O failure, truncated source
  network,      // transport failure
  cancelled,    // the run was cancelled
};

std::string_view to_string(ErrorKind kind) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

// Throws Error{kind, message}. Kept out of line so hot paths stay small.
[[noreturn]] void fail(ErrorKind kind, const std::string& message);

// Makes attacker-controlled text safe to print: control, bidi and non-ASCII
// bytes escaped, length bounded (hostile-inputs.md §6 item 64).
std::string printable(std::string_view text, std::size_t max_len = 256);

}  // namespace mneme
