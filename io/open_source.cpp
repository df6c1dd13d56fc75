// open_source: from a spec the user typed to a Source.
#include <cctype>
#include <string_view>

#include "io/sources.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

// "scheme" of "scheme://..." per RFC 3986 (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )),
// or empty when spec is not a URL.
std::string_view url_scheme(std::string_view spec) {
  const auto colon = spec.find("://");
  if (colon == std::string_view::npos || colon == 0) return {};
  const auto scheme = spec.substr(0, colon);
  if (!std::isalpha(static_cast<unsigned char>(scheme[0]))) return {};
  for (const char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return {};
  }
  return scheme;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// file://[localhost]/path with %XX escapes decoded.
std::string file_url_path(const std::string& spec, std::string_view rest) {
  if (rest.starts_with("localhost/")) rest.remove_prefix(std::string_view("localhost").size());
  if (!rest.starts_with('/')) {
    fail(ErrorKind::unsupported,
         printable(spec) + ": only local file:// URLs (file:///path) are supported");
  }
  std::string path;
  path.reserve(rest.size());
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '%') {
      path += rest[i];
      continue;
    }
    const int hi = i + 2 < rest.size() ? hex_value(rest[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(rest[i + 2]) : -1;
    if (lo < 0 || (hi == 0 && lo == 0)) {
      fail(ErrorKind::parse, printable(spec) + ": bad percent-escape in file URL");
    }
    path += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return path;
}

SourcePtr open_tcp(const std::string& spec, std::string_view rest,
                   boost::asio::any_io_executor executor, const OpenOptions& options) {
  std::string_view host;
  std::string_view port;
  if (rest.starts_with('[')) {  // [v6]:port
    const auto close = rest.find(']');
    if (close != std::string_view::npos && rest.substr(close + 1).starts_with(':')) {
      host = rest.substr(1, close - 1);
      port = rest.substr(close + 2);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  unsigned long port_number = 0;
  bool port_ok = !port.empty() && port.size() <= 5;
  for (const char c : port) {
    port_ok = port_ok && std::isdigit(static_cast<unsigned char>(c));
    port_number = port_number * 10 + static_cast<unsigned>(c - '0');
  }
  if (host.empty() || !port_ok || port_number == 0 || port_number > 65535 ||
      host.find_first_of("/?#") != std::string_view::npos) {
    fail(ErrorKind::parse, printable(spec) + ": expected tcp://host:port");
  }
  return make_tcp_source(std::string(host), std::string(port), options, std::move(executor));
}

}  // namespace

SourcePtr open_source(const std::string& spec, boost::asio::any_io_executor executor,
                      const OpenOptions& options) {
  if (spec == "-") return make_stdin_source(std::move(executor));
  const auto scheme = url_scheme(spec);
  if (scheme.empty()) {
    return make_file_source(spec, std::move(executor), options.file_io, {}, options.regular_file_only);
  }
  const std::string_view rest = std::string_view(spec).substr(scheme.size() + 3);
  std::string lower(scheme);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "file") {
    return make_file_source(file_url_path(spec, rest), std::move(executor), options.file_io, spec,
                            options.regular_file_only);
  }
  if (lower == "tcp") return open_tcp(spec, rest, std::move(executor), options);
  if (lower == "http" || lower == "https" || lower == "s3" || lower == "hf") {
    return make_http_source(spec, std::move(executor), options);
  }
  fail(ErrorKind::unsupported, printable(spec) + ": unsupported source scheme '" +
                                   printable(scheme) +
                                   "://' (supported: paths, file://, http(s)://, s3://, hf://, tcp://, -)");
}

}  // namespace mneme
