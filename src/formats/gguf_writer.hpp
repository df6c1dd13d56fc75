// GGUF v3 output: scalar tensor types only (F32, F16, BF16, F64, I8-I64).
// Metadata: a GGUF source's whole KV section as stored (typed, arrays
// included); otherwise the catalog's text metadata as strings.
// general.alignment is 32 unless the source set another.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mneme/catalog.hpp"
#include "src/formats/safetensors_writer.hpp"
#include "src/formats/tensor_file_writer.hpp"

namespace mneme {

std::unique_ptr<TensorFileWriter> create_gguf_file(const std::string& path,
                                                   const std::vector<TensorEntry>& entries,
                                                   const Catalog& source,
                                                   const OutputPolicy& policy = {});

}  // namespace mneme
