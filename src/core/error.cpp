#include "mneme/error.hpp"

#include <cstdio>

#include "mneme/checked.hpp"

namespace mneme {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::parse: return "parse";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::limit: return "limit";
    case ErrorKind::security: return "security";
    case ErrorKind::io: return "io";
    case ErrorKind::network: return "network";
    case ErrorKind::cancelled: return "cancelled";
  }
  return "unknown";
}

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

void fail_overflow(std::string_view what) {
  fail(ErrorKind::parse, std::string(what) + ": arithmetic overflow");
}

std::string printable(std::string_view text, std::size_t max_len) {
  std::string out;
  out.reserve(std::min(text.size(), max_len) + 8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    }
  }
  return out;
}

}  // namespace mneme
