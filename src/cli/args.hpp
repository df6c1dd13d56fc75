// Command-line parsing for the mneme CLI: flags and sizes, nothing else.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mneme::cli {

// A usage error: reported with the usage text, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string command;
  std::vector<std::string> sources;
  std::optional<std::string> output;  // -o
  std::optional<std::string> to;      // --to
  std::optional<std::string> dtype;   // --dtype (convert)
  std::optional<std::string> io;      // --io
  std::optional<unsigned> threads;    // --threads
  std::optional<std::uint64_t> budget;  // --budget
  std::optional<std::uint64_t> chunk;   // --chunk
  bool json = false;                  // --json
  bool quiet = false;                 // --quiet
};

Args parse_args(int argc, char** argv);

// "64M", "1G", "4096", "512k" (binary units) -> bytes.
std::uint64_t parse_size(const std::string& text);

}  // namespace mneme::cli
