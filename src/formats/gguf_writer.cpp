#include "src/formats/gguf_writer.hpp"

#include <cstring>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

std::uint32_t ggml_type(DType t, const std::string& name) {
  switch (t) {
    case DType::f32:
      return 0;
    case DType::f16:
      return 1;
    case DType::i8:
      return 24;
    case DType::i16:
      return 25;
    case DType::i32:
      return 26;
    case DType::i64:
      return 27;
    case DType::f64:
      return 28;
    case DType::bf16:
      return 30;
    default:
      fail(ErrorKind::unsupported, "tensor \"" + printable(name) + "\": GGUF has no type for " +
                                       std::string(dtype_name(t)));
  }
}

struct Out {
  std::string bytes;
  void raw(const void* p, std::size_t n) { bytes.append(static_cast<const char*>(p), n); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    bytes += s;
  }
};

}  // namespace

std::unique_ptr<TensorFileWriter> create_gguf_file(const std::string& path,
                                                   const std::vector<TensorEntry>& entries,
                                                   const Catalog& source,
                                                   const OutputPolicy& policy) {
  std::uint64_t alignment = 32;
  bool has_alignment = false;
  Out kv;
  std::uint64_t n_kv = 0;
  if (source.format == Format::gguf) {
    // Every entry as the source typed it; split.* described the source's
    // split files, not this single output.
    for (const auto& e : source.header.gguf_kv) {
      if (e.key.starts_with("split.")) {
        continue;
      }
      if (e.key == "general.alignment") {
        std::uint32_t a = 0;
        std::memcpy(&a, e.value.data(), sizeof a);  // validated u32 power of two by the parser
        alignment = a;
        has_alignment = true;
      }
      kv.str(e.key);
      kv.u32(e.type);
      kv.bytes += e.value;
      ++n_kv;
    }
  } else {
    for (const auto& [k, v] : source.header.metadata) {
      if (k == "general.alignment") {
        continue;
      }
      kv.str(k);
      kv.u32(8);  // string
      kv.str(v);
      ++n_kv;
    }
  }
  if (!has_alignment) {
    kv.str("general.alignment");
    kv.u32(4);  // u32
    kv.u32(static_cast<std::uint32_t>(alignment));
    ++n_kv;
  }

  Out h;
  h.raw("GGUF", 4);
  h.u32(3);
  h.u64(entries.size());
  h.u64(n_kv);
  h.bytes += kv.bytes;
  std::vector<std::uint64_t> rel;
  std::uint64_t offset = 0;
  for (const auto& e : entries) {
    h.str(e.name);
    const std::uint32_t n_dims = e.shape.empty() ? 1 : static_cast<std::uint32_t>(e.shape.size());
    if (n_dims > 4) {
      fail(ErrorKind::unsupported,
           "tensor \"" + printable(e.name) + "\": GGUF allows at most 4 dimensions");
    }
    h.u32(n_dims);
    if (e.shape.empty()) {
      h.u64(1);
    }
    for (auto it = e.shape.rbegin(); it != e.shape.rend(); ++it) {
      h.u64(*it);  // ggml order: innermost first
    }
    h.u32(ggml_type(e.dtype, e.name));
    offset = checked_align_up(offset, alignment, "gguf output offset");
    h.u64(offset);
    rel.push_back(offset);
    offset = checked_add(offset, e.bytes, "gguf output size");
  }
  const std::uint64_t data_start = checked_align_up(h.bytes.size(), alignment, "gguf output size");
  h.bytes.resize(data_start, '\0');

  std::vector<std::uint64_t> offsets, sizes;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    offsets.push_back(data_start + rel[i]);
    sizes.push_back(entries[i].bytes);
  }
  const std::uint64_t file_size = checked_add(
      data_start, checked_align_up(offset, alignment, "gguf output size"), "gguf output size");
  return std::make_unique<TensorFileWriter>(path, std::as_bytes(std::span(h.bytes)),
                                            std::move(offsets), std::move(sizes), file_size,
                                            policy);
}

}  // namespace mneme
