// Format front door: turn what the user named into a catalog, reading only
// headers. Detection is by content and full-frame validation, never by file
// extension alone (hostile-inputs.md §6 item 61).
#pragma once

#include <string>
#include <vector>

#include "mneme/catalog.hpp"
#include "mneme/source.hpp"

namespace mneme {

struct CatalogOptions {
  OpenOptions open;
  Limits limits;
  // The model's config.json; empty: the one beside a local safetensors model.
  std::string config_path;
  // Headers-only inspection: a tensor whose quantization scheme cannot be
  // resolved stays listed as stored, and missing shards are reported, both
  // as Catalog::warnings instead of errors.
  bool lenient = false;
  // Shards known to be missing (a gap in `-0000k-of-0000n` names, fewer GGUF
  // splits than split.count) are a warning instead of Error{io}.
  bool allow_partial = false;
};

// Opens every spec (path, URL, "-", a directory holding a model, or a
// `*.index.json` weight map) and merges them into one catalog. Several specs
// are shards of one model: tensor names must be unique across them. A
// directory is read as its weight-map index if it has one
// (model.safetensors.index.json, pytorch_model.bin.index.json), else as the
// model files in it of the first kind found: *.safetensors, *.gguf,
// *.bin / *.pth / *.pt, *.npz / *.npy.
Catalog open_catalog(const std::vector<std::string>& specs, boost::asio::any_io_executor executor,
                     const CatalogOptions& options = {});

// safetensors: one file. Validates everything hostile-inputs.md §1.2 lists.
Catalog parse_safetensors(SourcePtr source, const Limits& limits = {});

// GGUF v1-v3 (little-endian): front matter only, read forward from any source.
Catalog parse_gguf(SourcePtr source, const Limits& limits = {});

// The type as users know it: "F32", "BF16", "Q4_K", "IQ2_XXS", "GPTQ4", ...
std::string tensor_type_name(const TensorInfo& t);
// Its scheme with parameters: "fp8 e4m3 block 128x128", "gptq 4-bit group
// 128 g_idx"; "" for plain and GGUF tensors.
std::string scheme_description(const TensorInfo& t);

// A weight-map index (model.safetensors.index.json, pytorch_model.bin.index.json):
// its shards, each detected by content (the path of the index).
Catalog open_safetensors_index(const std::string& index_path, boost::asio::any_io_executor executor,
                               const OpenOptions& open = {}, const Limits& limits = {});

}  // namespace mneme
