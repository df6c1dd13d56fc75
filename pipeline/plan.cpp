// The planner: cut every tensor into chunks of bounded size on element
// boundaries, each decodable on its own into its slice of the output.
#include <algorithm>

#include "kernels/gguf/gguf_kernels.hpp"
#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "mneme/pipeline.hpp"

namespace mneme {
namespace {

bool convertible_float(DType t) {
  return t == DType::f64 || t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

// Compressed bytes a streamed inflate reads at once (at most max_chunk_bytes).
constexpr std::uint64_t kInflatePiece = 256 << 10;

// The plan under construction.
struct Builder {
  const PlanOptions& options;
  Plan plan;
  std::vector<std::vector<Chunk>> per_source;
  std::uint32_t next_output() const { return static_cast<std::uint32_t>(plan.outputs.size()); }
};

// A deflated member of trivial element layout: consecutive output ranges of
// one zlib stream, decoded in order by one job (OutputTensor::inflate);
// memory stays at one compressed piece plus one chunk, whatever the size.
void plan_inflated(const TensorInfo& t, OutputTensor& out, Builder& b) {
  out.inflate = true;
  out.dtype = (b.options.to && convertible_float(t.dtype)) ? to_dtype(*b.options.to) : t.dtype;
  const std::uint64_t elements = t.element_count();
  const std::uint64_t in_item = dtype_size(t.dtype), out_item = dtype_size(out.dtype);
  out.bytes = checked_mul(elements, out_item, "output size");
  const std::uint64_t in_bytes = t.byte_size();
  if (t.layout.inflated_offset > t.layout.inflated_size ||
      t.layout.inflated_size - t.layout.inflated_offset < in_bytes) {
    fail(ErrorKind::parse, "tensor \"" + printable(t.name) + "\": elements past its inflated size");
  }
  const std::uint64_t per_chunk =
      std::max<std::uint64_t>(1, b.options.max_chunk_bytes / std::max(in_item, out_item));
  const std::uint64_t chunk_elems = std::min(per_chunk, std::max<std::uint64_t>(elements, 1));
  // A multiple of 64, so the conversion scratch behind it stays aligned.
  out.inflate_piece_bytes = checked_align_up(std::min({kInflatePiece, b.options.max_chunk_bytes,
                                                       std::max<std::uint64_t>(t.data.length, 1)}),
                                             64, "inflate piece");
  out.inflate_buffer_bytes =
      out.inflate_piece_bytes + (out.dtype != t.dtype ? chunk_elems * in_item : 0);
  const auto output_index = b.next_output();
  for (std::uint64_t first = 0; first < elements; first += per_chunk) {
    const std::uint64_t n = std::min(per_chunk, elements - first);
    Chunk c;
    c.output = output_index;
    c.input = Extent{t.data.source, t.data.offset, 0};
    c.out_offset = first * out_item;
    c.out_bytes = n * out_item;
    c.elements = n;
    b.plan.max_chunk_out = std::max(b.plan.max_chunk_out, c.out_bytes);
    b.per_source.at(t.data.source).push_back(c);
    ++out.chunk_count;
  }
  if (out.chunk_count > 0) {
    b.plan.max_chunk_in = std::max(b.plan.max_chunk_in, out.inflate_buffer_bytes);
  }
}

// Big-endian, strided or otherwise unusual layouts: decoded whole, as one
// chunk, from the tensor held in memory (OutputTensor::materialize).
void plan_materialized(const TensorInfo& t, OutputTensor& out, Builder& b) {
  if (t.encoding != Encoding::plain) {
    fail(ErrorKind::unsupported,
         "tensor \"" + printable(t.name) + "\": quantized data in a non-trivial layout");
  }
  const std::uint64_t held = std::max(t.byte_size(), t.data.length);
  if (held > b.options.max_materialize_bytes) {
    fail(ErrorKind::limit, "tensor \"" + printable(t.name) + "\" needs " + std::to_string(held) +
                               " bytes in memory to normalise its layout, above the cap of " +
                               std::to_string(b.options.max_materialize_bytes));
  }
  out.materialize = true;
  out.dtype = (b.options.to && convertible_float(t.dtype)) ? to_dtype(*b.options.to) : t.dtype;
  const std::uint64_t elements = t.element_count();
  out.bytes = checked_mul(elements, dtype_size(out.dtype), "output size");
  if (elements > 0) {
    Chunk c;
    c.output = b.next_output();
    c.input = t.data;
    c.out_bytes = out.bytes;
    c.elements = elements;
    b.plan.max_chunk_out = std::max(b.plan.max_chunk_out, c.out_bytes);
    b.per_source.at(t.data.source).push_back(c);
    out.chunk_count = 1;
  }
}

// The fast path: a trivial layout streams in independent chunks (zero-copy
// from contiguous sources). A stored zip member's CRC-32
// (Layout::zip_member) is not checked here: it covers the whole member (the
// NPY header included), and checking it would need every chunk of it hashed
// in order, serialising the decode. Members read whole are checked
// (read_tensor_bytes, zip::read_member, the streaming inflate).
void plan_streamed(const TensorInfo& t, OutputTensor& out, Builder& b) {
  const std::uint64_t elements = t.element_count();
  // The unit a chunk is cut in: one element, one quantization block, or the
  // rows that share packed words; every chunk decodes on its own.
  std::uint64_t unit_elems = 1, unit_bytes = dtype_size(t.dtype);
  const auto bad = [&](const char* why) {
    fail(ErrorKind::parse, "tensor \"" + printable(t.name) + "\": " + why);
  };
  const bool matrix = t.shape.size() == 2 && t.shape[0] > 0 && t.shape[1] > 0;
  switch (t.encoding) {
    case Encoding::plain:
      break;
    case Encoding::gguf_blocks: {
      const auto info = kernels::gguf::block_info(t.gguf_type);
      if (!info) {
        bad("unknown GGUF type");
      }
      unit_elems = info->elements;
      unit_bytes = info->bytes;
      break;
    }
    case Encoding::fp8_scaled:
    case Encoding::bnb_int8:
      if (!matrix) {
        bad("must be 2-D");
      }
      unit_elems = unit_bytes = t.shape[1];  // whole rows
      break;
    case Encoding::gptq:  // packed words hold 32 / bits consecutive input rows of one column
      if (!matrix || (t.quant.bits != 4 && t.quant.bits != 8)) {
        bad("not a 4/8-bit [out, in] matrix");
      }
      unit_elems = checked_mul(t.shape[0], 32 / t.quant.bits, "unit");
      unit_bytes = checked_mul(t.shape[0], 4, "unit");
      out.assembled = true;
      break;
    case Encoding::awq:  // one input row: out / 8 words
      if (!matrix || t.shape[0] % 8 != 0) {
        bad("not a 4-bit [out, in] matrix");
      }
      unit_elems = t.shape[0];
      unit_bytes = t.shape[0] / 2;
      out.assembled = true;
      break;
    case Encoding::bnb4:  // whole blocks; two codes per byte, the last block may be short
      if (t.quant.block_size == 0 || t.quant.block_size % 2 != 0) {
        bad("odd bitsandbytes block size");
      }
      unit_elems = t.quant.block_size;
      unit_bytes = t.quant.block_size / 2;
      break;
  }
  // Quantized tensors are always decoded; plain floats converted on request.
  if (t.encoding != Encoding::plain) {
    out.dtype = to_dtype(b.options.to.value_or(OutType::bf16));
  } else {
    out.dtype = (b.options.to && convertible_float(t.dtype)) ? to_dtype(*b.options.to) : t.dtype;
  }
  const std::uint64_t out_size_ = dtype_size(out.dtype);
  out.bytes = checked_mul(elements, out_size_, "output size");
  const bool packed_pairs = t.encoding == Encoding::bnb4;
  const auto input_bytes = [&](std::uint64_t n) {
    return packed_pairs ? ceil_div(n, 2) : checked_mul(n / unit_elems, unit_bytes, "input size");
  };
  if ((!packed_pairs && elements % unit_elems != 0) || input_bytes(elements) != t.data.length) {
    bad("extent does not match shape x type");
  }
  if (out.assembled && out.bytes > b.options.max_materialize_bytes) {
    fail(ErrorKind::limit, "tensor \"" + printable(t.name) + "\" is assembled whole in memory (" +
                               std::to_string(out.bytes) + " bytes), above the cap of " +
                               std::to_string(b.options.max_materialize_bytes));
  }

  const std::uint64_t per_chunk =
      std::max<std::uint64_t>(1, b.options.max_chunk_bytes / unit_bytes) * unit_elems;
  const auto output_index = b.next_output();
  for (std::uint64_t first = 0; first < elements; first += per_chunk) {
    const std::uint64_t n = std::min(per_chunk, elements - first);
    Chunk c;
    c.output = output_index;
    c.input = Extent{t.data.source, t.data.offset + input_bytes(first), input_bytes(n)};
    c.out_offset = first * out_size_;
    c.out_bytes = n * out_size_;
    c.elements = n;
    b.plan.max_chunk_in = std::max(b.plan.max_chunk_in, c.input.length);
    b.plan.max_chunk_out = std::max(b.plan.max_chunk_out, c.out_bytes);
    b.per_source.at(t.data.source).push_back(c);
    ++out.chunk_count;
  }
}

}  // namespace

std::function<bool(const TensorInfo&)> select_names(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return [names = std::move(names)](const TensorInfo& t) {
    return std::binary_search(names.begin(), names.end(), t.name);
  };
}

Plan make_plan(const Catalog& catalog, const PlanOptions& options) {
  if (options.max_chunk_bytes < 64) {
    fail(ErrorKind::limit, "chunk size below 64 bytes");
  }
  Builder b{options, {}, std::vector<std::vector<Chunk>>(catalog.sources.size())};
  Plan& plan = b.plan;
  plan.outputs.reserve(catalog.tensors.size());
  std::vector<std::vector<Chunk>>& per_source = b.per_source;

  for (std::size_t i = 0; i < catalog.tensors.size(); ++i) {
    const TensorInfo& t = catalog.tensors[i];
    if (options.select && !options.select(t)) {
      continue;
    }
    OutputTensor out;
    out.source_tensor = i;
    out.name = t.name;
    out.shape = t.shape;
    if (t.layout.compression == Layout::Compression::deflate && !t.layout.byte_swapped &&
        t.layout.strides.empty() && t.encoding == Encoding::plain) {
      plan_inflated(t, out, b);
    } else if (!t.layout.trivial()) {
      plan_materialized(t, out, b);
    } else {
      plan_streamed(t, out, b);
    }
    plan.total_in = checked_add(plan.total_in, t.data.length, "model size");
    plan.total_out = checked_add(plan.total_out, out.bytes, "output size");
    plan.outputs.push_back(std::move(out));
  }

  // Ascending offsets within a source (sequential sources need it, disks like
  // it); sources interleaved so that reads are in flight on every shard.
  std::size_t total = 0;
  for (auto& chunks : per_source) {
    std::stable_sort(chunks.begin(), chunks.end(), [](const Chunk& x, const Chunk& y) {
      return x.input.offset < y.input.offset;
    });
    total += chunks.size();
  }
  plan.chunks.reserve(total);
  for (std::size_t round = 0; plan.chunks.size() < total; ++round) {
    for (const auto& chunks : per_source) {
      if (round < chunks.size()) {
        plan.chunks.push_back(chunks[round]);
      }
    }
  }
  return std::move(plan);
}

}  // namespace mneme
