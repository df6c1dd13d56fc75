// The safetensors header for a streamed output (tensors back to back in the
// given order) and the file writer that lays it out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mneme/catalog.hpp"
#include "src/formats/tensor_file_writer.hpp"

namespace mneme {

// One output tensor of a file writer.
struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::uint64_t bytes = 0;
};

// The header JSON, padded with spaces to a multiple of 8 bytes, without the
// length prefix.
std::string safetensors_header(const std::vector<TensorEntry>& entries, const std::vector<MetadataEntry>& metadata);

std::unique_ptr<TensorFileWriter> create_safetensors_file(
    const std::string& path, const std::vector<TensorEntry>& entries,
    const std::vector<MetadataEntry>& metadata, const OutputPolicy& policy = {});

}  // namespace mneme
