// Where a model's files are: local paths and remote URLs behind one small set
// of questions the catalog asks (a sibling file, a small file's bytes,
// whether a file exists), so an index, its shards, GGUF splits and
// config.json are found the same way on a disk and on a web server.
// Internal to src/catalog.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "mneme/limits.hpp"
#include "mneme/source.hpp"

namespace mneme {

// A URL the catalog reads over the network (http://, https://).
bool is_remote(std::string_view spec);

// The file called `name` in the folder of `spec` (a path, or a URL whose last
// path segment is replaced; its query, if any, is dropped). `name` must be a
// plain file name (Error{security} otherwise, naming `context`).
std::string sibling(const std::string& spec, std::string_view name, const std::string& context);

// A small file's bytes (an index, a config.json): Error{limit} above
// limits.max_header_bytes, Error{io} when it cannot be read. `optional`:
// nullopt when the file does not exist (a missing local file, HTTP 404).
std::optional<std::string> read_small(const std::string& spec, const Limits& limits,
                                      const OpenOptions& open, bool optional);

// Whether the file exists (local), or answers a request (remote).
bool exists(const std::string& spec, const OpenOptions& open);

}  // namespace mneme
