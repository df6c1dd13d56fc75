// Loading a model over HTTP from the test nginx (scripts/net-servers.sh,
// started by scripts/test.sh) and comparing it with the local load.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/http_client.hpp"
#include "mneme/load.hpp"
#include "test_support.hpp"

namespace mneme::test {

// The test server's base URL (http or https), or nullopt after recording a skip.
inline std::optional<std::string> server_or_skip(const char* var = "MNEME_HTTP_URL") {
  const char* url = std::getenv(var);
  if (!url || !*url) {
    MNEME_SKIP(std::string(var) + " not set (scripts/test.sh starts the test nginx)");
    return std::nullopt;
  }
  return std::string(url);
}

// The body of a small GET (a test server's counters); REQUIREs a 200.
inline std::string get_text(const std::string& url) {
  std::string text(4096, '\0');
  http::Request r;
  r.url = url;
  r.body = std::as_writable_bytes(std::span(text));
  const auto resp = http::perform_blocking(r);
  REQUIRE(resp.status == 200);
  text.resize(resp.body_bytes);
  return text;
}

// Where the server publishes a local file: the golden fixtures under
// /fixtures/, the repository's fixtures/ under /repo-fixtures/, the tests'
// scratch directories under /scratch/.
inline std::string url_of(const std::string& base, const std::filesystem::path& local) {
  namespace fs = std::filesystem;
  const fs::path p = fs::weakly_canonical(local);
  const auto under = [&](const fs::path& root) -> std::optional<std::string> {
    const fs::path r = fs::weakly_canonical(root);
    const auto rel = p.lexically_relative(r);
    if (rel.empty() || rel.native().starts_with("..")) return std::nullopt;
    return rel.generic_string() + (fs::is_directory(p) ? "/" : "");
  };
  if (auto rel = under(fixtures_root())) return base + "/fixtures/" + *rel;
  if (auto rel = under(fs::path(MNEME_SOURCE_DIR) / "fixtures")) return base + "/repo-fixtures/" + *rel;
  if (auto rel = under(fs::path(MNEME_BINARY_DIR) / "test-scratch")) return base + "/scratch/" + *rel;
  throw std::logic_error("the test server does not publish " + p.string());
}

// "name dtype d0 d1 ...": how the byte maps below key a tensor.
inline std::string tensor_key(const std::string& name, DType dtype,
                              const std::vector<std::uint64_t>& shape) {
  std::string key = name + " " + std::string(dtype_name(dtype));
  for (auto d : shape) key += " " + std::to_string(d);
  return key;
}

// Every output tensor's name, dtype, shape and bytes.
inline std::map<std::string, std::vector<std::byte>> load_bytes(
    const std::vector<std::string>& sources, std::optional<OutType> to, LoadOptions o = {}) {
  o.to = to;
  o.threads = 2;
  const LoadedModel m = load_model(sources, o);
  std::map<std::string, std::vector<std::byte>> out;
  for (const auto& t : m.tensors) {
    out[tensor_key(t.name, t.dtype, t.shape)].assign(t.view().begin(), t.view().end());
  }
  return out;
}

}  // namespace mneme::test
