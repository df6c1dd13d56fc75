// The catalog: what a parser found in a model's headers, never its weights
// (design guide, "The data path" 2). One catalog may span several sources
// (shards); every extent names the source it lives in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mneme/boxed.hpp"
#include "mneme/dtype.hpp"
#include "mneme/limits.hpp"
#include "mneme/scheme.hpp"
#include "mneme/source.hpp"

namespace mneme {

enum class Format : std::uint8_t { safetensors, gguf, npz, npy, pth };

// A metadata value as text: strings as they are, numbers and booleans printed.
using MetadataEntry = std::pair<std::string, std::string>;
std::string_view format_name(Format f) noexcept;

// How a tensor's element bytes sit inside its extent. The default is the fast
// path: uncompressed, little-endian, C-contiguous. Anything else (NPY Fortran
// order or big-endian, PyTorch strided views, deflated zip members) is
// described here and normalised by the pipeline.
struct Layout {
  enum class Compression : std::uint8_t { none, deflate };
  Compression compression = Compression::none;
  bool byte_swapped = false;  // stored big-endian
  // deflate: the tensor's bytes are [inflated_offset, inflated_offset +
  // element bytes) of the inflated stream of `data`, which inflates to
  // exactly inflated_size bytes.
  std::uint64_t inflated_offset = 0;
  std::uint64_t inflated_size = 0;
  std::vector<std::uint64_t> strides;  // element strides per dim; empty = C-contiguous

  // A tensor inside a zip member (NPZ, .pth): the member, so that a reader
  // that reads it whole (read_tensor_bytes, the pipeline's streaming inflate)
  // checks its CRC-32. Its stored bytes (the compressed stream when deflated)
  // are [offset, offset + length) of the tensor's source. Tensors of trivial
  // layout stream in independent chunks and are not checked: that would need
  // the whole member, in order. Does not make a layout non-trivial.
  struct ZipMember {
    std::string name;  // for messages
    std::uint32_t crc32 = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };
  OptionalBox<ZipMember> zip_member;  // on the heap: most tensors are in no zip

  bool trivial() const {
    return compression == Compression::none && !byte_swapped && strides.empty();
  }
};

struct TensorInfo {
  std::string name;                  // for quantized weights, the name of the decoded tensor
  DType dtype = DType::f32;          // stored element type (I32 for GPTQ/AWQ words, U8 for NF4...)
  std::vector<std::uint64_t> shape;  // row-major, outermost first; decoded shape when quantized
  Extent data;                       // the stored bytes (for strided views, the span they touch)
  Scheme scheme;                     // how the stored bytes become values (mneme/scheme.hpp)
  Layout layout;

  std::uint64_t element_count() const;  // checked product of shape
  std::uint64_t byte_size() const;      // element_count() * dtype size, checked
};

// One GGUF metadata entry, typed: its value encoded as GGUF v3 stores it
// (little-endian, 64-bit string lengths and array counts) whatever version it
// was read from, so a GGUF written from it keeps the exact type and value.
struct GgufKv {
  std::string key;
  std::uint32_t type = 0;  // gguf_type: 0 u8 ... 8 string, 9 array, ... 12 f64
  std::string value;
};

// What a format's header says about the model besides its tensors. A
// multi-source catalog takes it whole from its first source: merging moves
// this one value and never picks fields from it.
struct ModelHeader {
  std::uint32_t version = 0;  // GGUF version; 0 where the format has none
  // String metadata (`__metadata__` in safetensors; GGUF scalars as text), in file order.
  std::vector<MetadataEntry> metadata;
  // GGUF arrays (tokenizer vocabularies...) summarised as "array<type>[n]" for inspection.
  std::vector<MetadataEntry> array_metadata;
  // GGUF: every metadata entry, typed, in file order (arrays included).
  std::vector<GgufKv> gguf_kv;
};

// Something a lenient open found wrong but went on past (CatalogOptions::lenient).
struct CatalogWarning {
  std::string tensor;  // the tensor it concerns; empty for the whole model
  std::string message;
};

struct Catalog {
  Format format = Format::safetensors;
  ModelHeader header;
  std::vector<SourcePtr> sources;
  std::vector<TensorInfo> tensors;
  std::vector<CatalogWarning> warnings;

  std::uint64_t total_data_bytes() const;  // every stored byte: tensors and their companions
};

}  // namespace mneme
