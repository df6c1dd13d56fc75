// Command-line parsing for the mneme CLI: which options each command takes,
// their values fully validated, and the help text generated from the same
// table. Nothing here touches a model.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mneme/limits.hpp"

namespace mneme::cli {

// A usage error: one line on stderr and a pointer to --help, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string command;  // inspect, remember, convert, load; "help" or "version"
  bool help = false;    // `mneme CMD --help`
  std::vector<std::string> sources;
  std::optional<std::string> output;  // -o, --output
  std::optional<std::string> to;      // --to
  std::optional<std::string> dtype;   // --dtype (convert)
  std::optional<std::string> io;      // --io
  std::optional<std::string> config;  // --config
  std::optional<unsigned> threads;    // --threads
  std::optional<std::uint64_t> budget;  // --budget
  std::optional<std::uint64_t> chunk;   // --chunk
  std::optional<double> connect_timeout;  // --connect-timeout, seconds
  std::optional<double> timeout;          // --timeout (idle), seconds
  std::optional<std::uint64_t> part_size;   // --part-size (HTTP/S3 ranged GETs)
  std::optional<unsigned> connections;      // --connections (per host)
  std::optional<unsigned> retries;          // --retries (attempts per part, first included)
  std::vector<std::string> headers;         // --header "Name: value" (http(s)://)
  bool no_sign_request = false;             // --no-sign-request (public S3 buckets)
  std::optional<std::string> device;        // --device (load): cuda, cuda:N, host
  std::optional<std::uint64_t> slot_size;   // --slot-size (upload ring)
  std::optional<unsigned> slots;            // --slots (upload ring)
  bool json = false;                      // --json
  bool quiet = false;                     // -q, --quiet
  bool force = false;                     // --force
  bool allow_partial = false;             // --allow-partial
  bool keep_scales = false;               // --keep-scales
  Limits limits;                          // --max-NAME, one per cap (mneme/limits.hpp)
};

// Parses argv; throws UsageError for anything a command does not take or a
// value that is not valid in full.
Args parse_args(int argc, char** argv);

// The usage of every command (command empty) or of one.
std::string usage(const std::string& command = {});

// "64M", "1G", "4096", "512k", "2GiB" (binary units) -> bytes; anything else
// (trailing characters, no digits, overflow) is a UsageError naming `option`.
std::uint64_t parse_size(const std::string& text, const std::string& option = "size");

}  // namespace mneme::cli
