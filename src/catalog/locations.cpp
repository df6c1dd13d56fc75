#include "src/catalog/locations.hpp"

#include <filesystem>
#include <fstream>

#include "io/http_client.hpp"
#include "io/http_source.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

namespace fs = std::filesystem;

http::Request small_request(const std::string& url, const OpenOptions& open) {
  http::Request r;
  r.url = url;
  r.headers = open.http_headers;
  r.timeouts.connect = open.connect_timeout;
  r.timeouts.low_speed_bytes = open.stall_bytes_per_second;
  r.timeouts.low_speed_time = std::max(
      std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(open.idle_timeout));
  return r;
}

}  // namespace

bool is_remote(std::string_view spec) {
  return spec.starts_with("http://") || spec.starts_with("https://");
}

std::string sibling(const std::string& spec, std::string_view name, const std::string& context) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute() || p.has_parent_path() || name == "." || name == ".." ||
      name.find_first_of("?#\\") != std::string_view::npos) {
    fail(ErrorKind::security,
         context + ": file name \"" + printable(name) + "\" is not a plain file name");
  }
  if (!is_remote(spec)) {
    return (fs::path(spec).parent_path() / p).string();
  }
  std::string url = spec.substr(0, spec.find_first_of("?#"));
  const auto authority = url.find("://") + 3;
  const auto slash = url.rfind('/');
  if (slash == std::string::npos || slash < authority) {
    return url + "/" + std::string(name);
  }
  return url.substr(0, slash + 1) + std::string(name);
}

std::optional<std::string> read_small(const std::string& spec, std::uint64_t cap,
                                      const OpenOptions& open, bool optional) {
  if (!is_remote(spec)) {
    std::error_code ec;
    const auto size = fs::file_size(spec, ec);
    if (ec && optional && !fs::exists(spec, ec)) return std::nullopt;
    if (ec) fail(ErrorKind::io, "cannot open " + printable(spec) + ": " + ec.message());
    if (size > cap) {
      fail(ErrorKind::limit, printable(spec) + " is larger than " + std::to_string(cap) + " bytes");
    }
    std::ifstream in(spec, std::ios::binary);
    std::string text(size, '\0');
    if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
      fail(ErrorKind::io, "cannot read " + printable(spec));
    }
    return text;
  }
  auto text = http_get_small(spec, cap, open);
  if (!text && !optional) {
    fail(ErrorKind::io, printable(spec) + ": not found (HTTP 404)");
  }
  return text;
}

bool exists(const std::string& spec, const OpenOptions& open) {
  if (!is_remote(spec)) {
    std::error_code ec;
    return fs::exists(spec, ec);
  }
  http::Request r = small_request(spec, open);
  r.no_body = true;
  const http::Response resp = http::perform_blocking(std::move(r));
  return resp.curl_code == 0 && resp.status >= 200 && resp.status < 300;
}

}  // namespace mneme
