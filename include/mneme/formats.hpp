// Format front door: turn what the user named into a catalog, reading only
// headers. Detection is by content and full-frame validation, never by file
// extension alone (hostile-inputs.md §6 item 61).
#pragma once

#include <string>
#include <vector>

#include "mneme/catalog.hpp"
#include "mneme/source.hpp"

namespace mneme {

// Opens every spec (path, URL, "-", a directory holding a sharded model, or a
// `model.safetensors.index.json`) and merges them into one catalog. Several
// specs are shards of one model: tensor names must be unique across them.
Catalog open_catalog(const std::vector<std::string>& specs, boost::asio::any_io_executor executor,
                     const OpenOptions& open = {}, const Limits& limits = {});

// safetensors: one file. Validates everything hostile-inputs.md §1.2 lists.
Catalog parse_safetensors(SourcePtr source, const Limits& limits = {});

// GGUF v1-v3 (little-endian): front matter only, read forward from any source.
Catalog parse_gguf(SourcePtr source, const Limits& limits = {});

// The type as users know it: "F32", "BF16", "Q4_K", "IQ2_XXS", ...
std::string tensor_type_name(const TensorInfo& t);

// safetensors sharded via model.safetensors.index.json (the path of the index).
Catalog open_safetensors_index(const std::string& index_path, boost::asio::any_io_executor executor,
                               const OpenOptions& open = {}, const Limits& limits = {});

}  // namespace mneme
