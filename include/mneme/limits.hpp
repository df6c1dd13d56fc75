// The caps that protect the parsers from hostile headers, in one value.
//
// Every cap is enforced before anything it bounds is allocated, and going
// over one ends in Error{limit} whose message names the cap as the CLI spells
// it (--max-tensors), so a user with a legitimate model beyond a default knows
// what to raise. The defaults read every model we know of; a floor is the
// least value a cap takes, below which mneme could not read even the smallest
// valid file of the formats the cap concerns.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mneme/error.hpp"

namespace mneme {

struct Limits {
  // One header held in memory: safetensors JSON, GGUF metadata, NPY header,
  // zip central directory, the .pth pickle, a weight-map index or config.json.
  std::uint64_t max_header_bytes = 100'000'000;
  std::uint64_t max_tensors = 1'000'000;    // in one file (or one archive's members)
  std::uint64_t max_rank = 16;              // dimensions of one tensor
  std::uint64_t max_shards = 4096;          // files of one model
  std::uint64_t max_name_bytes = 64 << 10;  // a tensor name, metadata key or zip member name
  std::uint64_t max_string_bytes = 64ull
                                   << 20;    // one string value (GGUF metadata, pickle str/bytes)
  std::uint64_t max_array_length = 1 << 24;  // elements of one GGUF metadata array
  std::uint64_t max_nesting = 256;           // pickle containers (and open MARKs) nested
  std::uint64_t max_pickle_memory = 512ull << 20;  // the pickle VM's values, memo and stack
  std::uint64_t max_zip_entries = 1 << 20;         // members of one zip (.npz, .pth)
  // Inflated over compressed size of one member. Deflate cannot exceed about
  // 1032:1, so every legitimate stream passes the default.
  std::uint64_t max_zip_ratio = 1100;
  // Bytes a .pth's tensor views materialize over the bytes of their storages
  // (views may overlap; a broadcast view repeats its storage).
  std::uint64_t max_view_expansion = 16;
};

// One cap as the CLI, the Python API and the docs name it.
struct LimitField {
  std::string_view name;  // "tensors": --max-tensors, Limits::max_tensors
  std::uint64_t Limits::*field;
  bool size;              // bytes, written with k/M/G; else a count or ratio
  std::uint64_t floor;    // the least value accepted
  std::string_view what;  // one line for help and docs
};

// Every cap, in the order of Limits.
std::span<const LimitField> limit_fields();

// The cap named `name` ("tensors", "header-bytes"), or null.
const LimitField* find_limit(std::string_view name);

// Throws Error{limit} naming the first cap set below its floor.
void check_floors(const Limits& limits);

// Error{limit}: "<where>: <what>, over the cap of <cap> (--max-<name>)".
Error limit_error(const std::string& where, const std::string& what, std::uint64_t Limits::*field,
                  const Limits& limits);

// Throws limit_error(where, what, field, limits).
[[noreturn]] void over_limit(const std::string& where, const std::string& what,
                             std::uint64_t Limits::*field, const Limits& limits);

}  // namespace mneme
