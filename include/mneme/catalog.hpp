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

#include "mneme/dtype.hpp"
#include "mneme/source.hpp"

namespace mneme {

enum class Format : std::uint8_t { safetensors, gguf, npz, npy, pth };

// A metadata value as text: strings as they are, numbers and booleans printed.
using MetadataEntry = std::pair<std::string, std::string>;
std::string_view format_name(Format f) noexcept;

// A byte range inside one of the catalog's sources.
struct Extent {
  std::uint32_t source = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// How the stored bytes of a tensor become values. `plain`: the bytes are
// `dtype` elements, little-endian, row-major (subject to Layout below).
// Every other encoding is decoded to a float output type:
// `gguf_blocks`: ggml quantization blocks of type `TensorInfo::gguf_type`.
// `fp8_scaled`: F8_E4M3/F8_E5M2 elements times the scale companion.
// `gptq`, `awq`: I32-packed 4/8-bit weights (the `.qweight`), output in the
//   nn.Linear orientation [out, in]; companions scales, qzeros (and g_idx).
// `bnb4`: BitsAndBytes NF4/FP4 codes, two per byte; output in the shape the
//   quant_state records; companions absmax, quant_map (+ nested_* with double quant).
// `bnb_int8`: LLM.int8() I8 [out, in] rows times the SCB companion.
enum class Encoding : std::uint8_t { plain, gguf_blocks, fp8_scaled, gptq, awq, bnb4, bnb_int8 };

// A small tensor a quantized weight needs to decode (scales, zeros, ...),
// possibly in another shard. Read whole, into memory, before the weights.
struct Companion {
  std::string role;  // "scale", "scales", "qzeros", "g_idx", "absmax", "quant_map", "SCB", ...
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  Extent data;
};

// Parameters of a scheme detected over several tensors (and config.json).
struct QuantInfo {
  // fp8_scaled
  enum class Fp8Scaling : std::uint8_t { per_tensor, per_channel, block };
  Fp8Scaling fp8_scaling = Fp8Scaling::per_tensor;
  std::uint32_t block_rows = 128;
  std::uint32_t block_cols = 128;
  // gptq / awq: bits per value and rows per group (in_features = shape[1]).
  std::uint32_t bits = 0;
  std::uint64_t group_size = 0;
  bool gptq_v2 = false;  // checkpoint_format gptq_v2: zeros stored without the -1
  // bnb4
  bool fp4 = false;  // FP4 codes, else NF4 (the decode uses the stored quant_map either way)
  std::uint64_t block_size = 0;
  bool double_quant = false;
  std::uint64_t nested_block_size = 0;
  float nested_offset = 0.0f;

  std::vector<Companion> companions;
  // The companion with this role, or null.
  const Companion* companion(std::string_view role) const {
    for (const auto& c : companions) {
      if (c.role == role) {
        return &c;
      }
    }
    return nullptr;
  }
};

// How a tensor's element bytes sit inside its extent. The default is the fast
// path: uncompressed, little-endian, C-contiguous. Anything else (NPY Fortran
// order or big-endian, PyTorch strided views, deflated zip members) is
// described here and normalised by the pipeline.
struct Layout {
  enum class Compression : std::uint8_t { none, deflate };
  Compression compression = Compression::none;
  // deflate: the tensor's bytes are [inflated_offset, inflated_offset +
  // element bytes) of the inflated stream of `data`, which inflates to
  // exactly inflated_size bytes.
  std::uint64_t inflated_offset = 0;
  std::uint64_t inflated_size = 0;
  bool byte_swapped = false;           // stored big-endian
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
  std::optional<ZipMember> zip_member;

  bool trivial() const {
    return compression == Compression::none && !byte_swapped && strides.empty();
  }
};

struct TensorInfo {
  std::string name;                  // for quantized weights, the name of the decoded tensor
  DType dtype = DType::f32;          // stored element type (I32 for GPTQ/AWQ words, U8 for NF4...)
  std::vector<std::uint64_t> shape;  // row-major, outermost first; decoded shape when quantized
  Extent data;                       // the stored bytes (for strided views, the span they touch)
  Encoding encoding = Encoding::plain;
  std::uint32_t gguf_type = 0;  // ggml type id when encoding == gguf_blocks
  QuantInfo quant;              // when encoding is a scaled/quantized scheme
  Layout layout;

  std::uint64_t element_count() const;  // checked product of shape
  std::uint64_t byte_size() const;      // element_count() * dtype size, checked
};

// Header-derived limits; every one is enforced before anything is allocated.
struct Limits {
  std::uint64_t max_header_bytes = 100'000'000;  // safetensors' own cap
  std::uint64_t max_tensors = 1'000'000;
  std::uint64_t max_rank = 16;
  std::uint64_t max_shards = 4096;
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
