#include "mneme/limits.hpp"

#include <array>

#include "mneme/error.hpp"

namespace mneme {
namespace {

constexpr std::array kFields{
    LimitField{"header-bytes", &Limits::max_header_bytes, true, 1 << 10,
               "one header held in memory: safetensors JSON, GGUF metadata,\n"
               "NPY header, zip directory, .pth pickle, index or config.json"},
    LimitField{"tensors", &Limits::max_tensors, false, 1, "tensors in one file"},
    LimitField{"rank", &Limits::max_rank, false, 4, "dimensions of one tensor"},
    LimitField{"shards", &Limits::max_shards, false, 1, "files of one model"},
    LimitField{"name-bytes", &Limits::max_name_bytes, true, 256,
               "one tensor name, metadata key or zip member name"},
    LimitField{"string-bytes", &Limits::max_string_bytes, true, 256,
               "one string value: GGUF metadata, pickle str or bytes"},
    LimitField{"array-length", &Limits::max_array_length, false, 1,
               "elements of one GGUF metadata array"},
    LimitField{"nesting", &Limits::max_nesting, false, 8,
               "pickle containers and open MARKs nested in each other"},
    LimitField{"pickle-memory", &Limits::max_pickle_memory, true, 1 << 20,
               "the pickle VM's values, memo and stack together"},
    LimitField{"zip-entries", &Limits::max_zip_entries, false, 1, "members of one zip archive"},
    LimitField{"zip-ratio", &Limits::max_zip_ratio, false, 1,
               "inflated over compressed size of one zip member"},
    LimitField{"view-expansion", &Limits::max_view_expansion, false, 1,
               "bytes .pth tensor views materialize per byte of their storages"},
};

const LimitField& field_of(std::uint64_t Limits::*field) {
  for (const auto& f : kFields) {
    if (f.field == field) return f;
  }
  return kFields.front();  // unreachable: every member is in the table
}

}  // namespace

std::span<const LimitField> limit_fields() {
  return kFields;
}

const LimitField* find_limit(std::string_view name) {
  for (const auto& f : kFields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void check_floors(const Limits& limits) {
  for (const auto& f : kFields) {
    if (limits.*f.field < f.floor) {
      fail(ErrorKind::limit, "--max-" + std::string(f.name) + " " +
                                 std::to_string(limits.*f.field) + " is below its floor of " +
                                 std::to_string(f.floor));
    }
  }
}

Error limit_error(const std::string& where, const std::string& what, std::uint64_t Limits::*field,
                  const Limits& limits) {
  return Error(ErrorKind::limit, where + ": " + what + ", over the cap of " +
                                     std::to_string(limits.*field) + " (--max-" +
                                     std::string(field_of(field).name) + ")");
}

void over_limit(const std::string& where, const std::string& what, std::uint64_t Limits::*field,
                const Limits& limits) {
  throw limit_error(where, what, field, limits);
}

}  // namespace mneme
