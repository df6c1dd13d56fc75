// The planner: cut every tensor into chunks of bounded size, each decodable on
// its own into its slice of the output. The codec of each tensor says how its
// chunks are cut; the tensor's layout says whether its stored bytes can be
// read as independent extents or must be read as one stream.
#include <algorithm>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "mneme/pipeline.hpp"
#include "pipeline/plan_detail.hpp"
#include "src/formats/tensor_stream.hpp"
#include "src/schemes/codec.hpp"

namespace mneme {
namespace {

// Stored bytes a stream reads at once (at most max_chunk_bytes): each piece
// is one read and one decode job, handed between threads.
constexpr std::uint64_t kStreamPiece = 4 << 20;

// The plan under construction.
struct Builder {
  const PlanOptions& options;
  Plan plan;
  PlanDetail detail;
  std::vector<std::vector<Chunk>> per_source;
  std::uint32_t next_output() const { return static_cast<std::uint32_t>(plan.outputs.size()); }

  void add(const Chunk& c, const OutputTensor& o, PlanDetail::Output& d) {
    plan.max_chunk_out = std::max(plan.max_chunk_out, c.out_bytes);
    per_source.at(c.input.source).push_back(c);
    ++d.work_chunks;
  }
};

[[noreturn]] void too_big(const TensorInfo& t, std::uint64_t bytes, const char* why,
                          std::uint64_t cap) {
  fail(ErrorKind::limit, "tensor \"" + printable(t.name) + "\" needs " + std::to_string(bytes) +
                             " bytes in memory " + why + ", above the cap of " +
                             std::to_string(cap));
}

// A layout other than the trivial one (deflated, strided, byte-swapped): one
// TensorStream yields the elements in order, and its chunks are consecutive
// output ranges filled from it. Each chunk's input is {source, start of the
// stored bytes, 0}: the run reads the stored bytes once, in pieces.
void plan_stream(const TensorInfo& t, const Codec& codec, OutputTensor& out, PlanDetail::Output& d,
                 Builder& b) {
  if (!std::holds_alternative<scheme::Plain>(t.scheme)) {
    fail(ErrorKind::unsupported,
         "tensor \"" + printable(t.name) + "\": quantized data in a non-trivial layout");
  }
  d.stream = true;
  d.stream_input = TensorStream::input(t);
  d.piece_bytes = std::min(
      {kStreamPiece, b.options.max_chunk_bytes, std::max<std::uint64_t>(d.stream_input.length, 1)});
  const std::uint64_t own = TensorStream::held_bytes(t);
  if (own > b.options.max_materialize_bytes) {
    too_big(t, own, "to normalise its layout", b.options.max_materialize_bytes);
  }
  const std::uint64_t elements = t.element_count();
  const std::uint64_t in_item = dtype_size(t.dtype), out_item = dtype_size(out.dtype);
  const std::uint64_t per_chunk =
      std::max<std::uint64_t>(1, b.options.max_chunk_bytes / std::max(in_item, out_item));
  if (out.dtype != t.dtype) {  // converted: a chunk's stored elements are gathered first
    d.scratch_bytes = std::min(per_chunk, elements) * in_item;
  }
  d.whole_bytes = TensorStream::held_span_bytes(t);
  d.hold_bytes = checked_add(own, d.scratch_bytes, "stream memory");
  d.read_bytes = d.piece_bytes;
  const auto output_index = b.next_output();
  for (std::uint64_t first = 0; first < elements; first += per_chunk) {
    const std::uint64_t n = std::min(per_chunk, elements - first);
    b.add(Chunk{output_index, Extent{t.data.source, d.stream_input.offset, 0}, first * out_item,
                n * out_item, n},
          out, d);
  }
  out.chunk_count = d.work_chunks;
  if (out.chunk_count > 0) {
    b.plan.max_chunk_in = std::max(b.plan.max_chunk_in, d.piece_bytes);
  }
}

// The fast path: a trivial layout is read as independent extents, cut in
// whole units of the codec's geometry (zero-copy from contiguous sources). A
// stored zip member's CRC-32 (Layout::zip_member) is not checked here: it
// covers the whole member (the NPY header included), and checking it would
// need every chunk of it hashed in order, serialising the decode. Members
// read as streams are checked (TensorStream).
void plan_extents(const TensorInfo& t, const Codec& codec, OutputTensor& out, PlanDetail::Output& d,
                  Builder& b) {
  const std::uint64_t elements = t.element_count();
  const CodecGeometry& g = codec.geometry();
  if ((!g.short_last_unit && elements % g.unit_elements != 0) ||
      codec.input_bytes(elements) != t.data.length) {
    fail(ErrorKind::parse,
         "tensor \"" + printable(t.name) + "\": extent does not match shape x type");
  }
  for (const Extent& c : codec.companions()) {
    d.hold_bytes = checked_add(d.hold_bytes, c.length, "companion bytes");
  }
  if (g.assembled) {
    if (out.bytes > b.options.max_materialize_bytes) {
      too_big(t, out.bytes, "to assemble its output", b.options.max_materialize_bytes);
    }
    d.assembled = true;
    d.whole_bytes = out.bytes;
    d.hold_bytes = checked_add(d.hold_bytes, out.bytes, "assembled tensor");
  }
  // A chunk is bounded by its input and its output, whichever is larger: a
  // 4-bit block decodes to 3.5x its bytes in BF16, and outputs that outgrow
  // the cores' caches cost scaling (docs/perf-experiments.md, P6).
  const std::uint64_t out_item = dtype_size(out.dtype);
  const std::uint64_t unit_out = checked_mul(g.unit_elements, out_item, "chunk unit");
  const std::uint64_t per_chunk =
      std::max<std::uint64_t>(1, b.options.max_chunk_bytes / std::max(g.unit_bytes, unit_out)) *
      g.unit_elements;
  const auto output_index = b.next_output();
  for (std::uint64_t first = 0; first < elements; first += per_chunk) {
    const std::uint64_t n = std::min(per_chunk, elements - first);
    const std::uint64_t at = codec.input_bytes(first);
    Chunk c{output_index,
            Extent{t.data.source, t.data.offset + at, codec.input_bytes(first + n) - at},
            first * out_item, n * out_item, n};
    b.plan.max_chunk_in = std::max(b.plan.max_chunk_in, c.input.length);
    d.read_bytes = std::max(d.read_bytes, c.input.length);
    b.add(c, out, d);
  }
  out.chunk_count = g.assembled ? std::min<std::uint64_t>(d.work_chunks, 1) : d.work_chunks;
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
  Builder b{options, {}, {}, std::vector<std::vector<Chunk>>(catalog.sources.size())};
  Plan& plan = b.plan;
  plan.outputs.reserve(catalog.tensors.size());
  b.detail.outputs.reserve(catalog.tensors.size());
  b.detail.to = options.to;

  for (std::size_t i = 0; i < catalog.tensors.size(); ++i) {
    const TensorInfo& t = catalog.tensors[i];
    if (options.select && !options.select(t)) {
      continue;
    }
    const auto codec = make_codec(t, options.to);
    OutputTensor out;
    out.source_tensor = i;
    out.name = t.name;
    out.shape = t.shape;
    out.dtype = codec->output();
    out.bytes = checked_mul(t.element_count(), dtype_size(out.dtype), "output size");
    PlanDetail::Output d;
    if (t.layout.trivial()) {
      plan_extents(t, *codec, out, d, b);
    } else {
      plan_stream(t, *codec, out, d, b);
    }
    plan.total_in = checked_add(plan.total_in, t.data.length, "model size");
    plan.total_out = checked_add(plan.total_out, out.bytes, "output size");
    plan.outputs.push_back(std::move(out));
    b.detail.outputs.push_back(d);
  }

  // Ascending offsets within a source (sequential sources need it, disks like
  // it); sources interleaved so that reads are in flight on every shard.
  std::size_t total = 0;
  for (auto& chunks : b.per_source) {
    std::stable_sort(chunks.begin(), chunks.end(), [](const Chunk& x, const Chunk& y) {
      return x.input.offset < y.input.offset;
    });
    total += chunks.size();
  }
  if (b.per_source.size() == 1) {
    plan.chunks = std::move(b.per_source.front());  // nothing to interleave
  }
  plan.chunks.reserve(total);
  for (std::size_t round = 0; plan.chunks.size() < total; ++round) {
    for (const auto& chunks : b.per_source) {
      if (round < chunks.size()) {
        plan.chunks.push_back(chunks[round]);
      }
    }
  }
  plan.detail = std::make_shared<const PlanDetail>(std::move(b.detail));
  return std::move(plan);
}

}  // namespace mneme
