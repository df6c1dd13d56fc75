#include "src/catalog/locations.hpp"

#include <filesystem>
#include <fstream>

#include "io/http_client.hpp"
#include "io/remote.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

namespace fs = std::filesystem;

}  // namespace

bool is_remote(std::string_view spec) {
  return is_remote_spec(spec);
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

std::optional<std::string> read_small(const std::string& spec, const Limits& limits,
                                      const OpenOptions& open, bool optional) {
  const std::uint64_t cap = limits.max_header_bytes;
  if (!is_remote(spec)) {
    std::error_code ec;
    const auto size = fs::file_size(spec, ec);
    if (ec && optional && !fs::exists(spec, ec)) return std::nullopt;
    if (ec) fail(ErrorKind::io, "cannot open " + printable(spec) + ": " + ec.message());
    if (size > cap) {
      over_limit(printable(spec), std::to_string(size) + " bytes", &Limits::max_header_bytes,
                 limits);
    }
    std::ifstream in(spec, std::ios::binary);
    std::string text(size, '\0');
    if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
      fail(ErrorKind::io, "cannot read " + printable(spec));
    }
    return text;
  }
  auto text = remote_get_small(resolve_remote(spec, open), cap, open);
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
  return remote_exists(resolve_remote(spec, open), open);
}

}  // namespace mneme
