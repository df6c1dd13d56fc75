// GGUF front matter (v1-v3, little-endian): metadata, tensor infos, data
// offsets. Reads forward only, so any source works, and validates everything
// the llama.cpp GGUF CVEs exploited (hostile-inputs.md §1.1): counts, string
// and array lengths against the bytes left, dimension count, element-count and
// byte-size overflow, alignment, tensor offsets and extents, type ids.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "kernels/gguf/gguf_types.hpp"
#include "mneme/checked.hpp"
#include "mneme/formats.hpp"
#include "src/formats/forward_reader.hpp"

namespace mneme {
namespace {

namespace gg = kernels::gguf;

enum ValueType : std::uint32_t {
  kU8 = 0,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kF32,
  kBool,
  kString,
  kArray,
  kU64,
  kI64,
  kF64,
};

constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

const char* value_type_name(std::uint32_t t) {
  static const char* kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                 "bool", "string", "array", "u64", "i64", "f64"};
  return t <= kF64 ? kNames[t] : "?";
}

std::size_t scalar_size(std::uint32_t t) {
  switch (t) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kU64:
    case kI64:
    case kF64:
      return 8;
    default:
      return 0;
  }
}

class GgufParser {
 public:
  GgufParser(SourcePtr source, const Limits& limits)
      : source_(std::move(source)),
        limits_(limits),
        in_(*source_, "gguf " + printable(source_->name())) {}

  Catalog parse();

 private:
  [[noreturn]] void bad(const std::string& why) {
    fail(ErrorKind::parse, "gguf " + printable(source_->name()) + ": " + why);
  }

  std::uint64_t count() {
    return version_ == 1 ? in_.get<std::uint32_t>() : in_.get<std::uint64_t>();
  }
  // A length-prefixed string, its length checked against `cap` before it is read.
  std::string str(std::uint64_t Limits::*cap, const char* what) {
    const std::uint64_t len = count();
    if (len > limits_.*cap) {
      over_limit("gguf " + printable(source_->name()),
                 std::string(what) + " of " + std::to_string(len) + " bytes", cap, limits_);
    }
    return in_.string(len);
  }

  // Reads one metadata value of `type`, appends it to `out` encoded as GGUF v3
  // stores it, and returns it as text (arrays summarised as "array<t>[n]").
  std::string value(std::uint32_t type, const std::string& key, int depth, std::string& out);
  std::string scalar(std::uint32_t type, std::string& out);
  void count_metadata(std::uint64_t bytes);

  SourcePtr source_;
  const Limits& limits_;
  ForwardReader in_;
  std::uint32_t version_ = 0;
  std::uint64_t metadata_bytes_ = 0;
  std::optional<std::uint32_t> alignment_;
};

void GgufParser::count_metadata(std::uint64_t bytes) {
  metadata_bytes_ = checked_add(metadata_bytes_, bytes, "gguf metadata size");
  if (metadata_bytes_ > limits_.max_header_bytes) {
    over_limit("gguf " + printable(source_->name()), "metadata", &Limits::max_header_bytes,
               limits_);
  }
}

void put_u32(std::string& out, std::uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), 4);
}
void put_u64(std::string& out, std::uint64_t v) {
  out.append(reinterpret_cast<const char*>(&v), 8);
}

template <typename T>
T take(ForwardReader& in, std::string& out) {
  const T v = in.get<T>();
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
  return v;
}

std::string GgufParser::scalar(std::uint32_t type, std::string& out) {
  char buf[64];
  switch (type) {
    case kU8:
      return std::to_string(take<std::uint8_t>(in_, out));
    case kI8:
      return std::to_string(take<std::int8_t>(in_, out));
    case kU16:
      return std::to_string(take<std::uint16_t>(in_, out));
    case kI16:
      return std::to_string(take<std::int16_t>(in_, out));
    case kU32:
      return std::to_string(take<std::uint32_t>(in_, out));
    case kI32:
      return std::to_string(take<std::int32_t>(in_, out));
    case kU64:
      return std::to_string(take<std::uint64_t>(in_, out));
    case kI64:
      return std::to_string(take<std::int64_t>(in_, out));
    case kF32:
      std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(take<float>(in_, out)));
      return buf;
    case kF64:
      std::snprintf(buf, sizeof buf, "%.17g", take<double>(in_, out));
      return buf;
    case kBool: {
      const auto b = take<std::uint8_t>(in_, out);
      if (b > 1) {
        bad("bool value " + std::to_string(b));
      }
      return b ? "true" : "false";
    }
    default:
      bad("unknown metadata value type " + std::to_string(type));
  }
}

std::string GgufParser::value(std::uint32_t type, const std::string& key, int depth,
                              std::string& out) {
  if (type == kString) {
    std::string s = str(&Limits::max_string_bytes, "string");
    count_metadata(s.size());
    put_u64(out, s.size());
    out += s;
    return s;
  }
  if (type != kArray) {
    return scalar(type, out);
  }
  if (depth > 2) {
    bad("metadata \"" + printable(key) + "\": arrays nested too deep");
  }
  const auto elem = in_.get<std::uint32_t>();
  const std::uint64_t n = count();
  if (elem > kF64) {
    bad("metadata \"" + printable(key) + "\": unknown array element type " + std::to_string(elem));
  }
  // Every element takes at least one byte (strings at least their length
  // prefix): a count the file cannot hold is rejected before the loop.
  const std::uint64_t min_elem = elem == kString  ? (version_ == 1 ? 4 : 8)
                                 : elem == kArray ? 12
                                                  : scalar_size(elem);
  in_.need(checked_mul(n, min_elem, "gguf array size"));
  if (n > limits_.max_array_length) {
    over_limit("gguf " + printable(source_->name()),
               "metadata \"" + printable(key) + "\": array of " + std::to_string(n) + " elements",
               &Limits::max_array_length, limits_);
  }
  put_u32(out, elem);
  put_u64(out, n);
  if (elem != kString && elem != kArray) {
    count_metadata(n * min_elem);
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(n * min_elem));
    in_.read(out.data() + at, static_cast<std::size_t>(n * min_elem));
    if (elem == kBool) {
      for (std::size_t i = at; i < out.size(); ++i) {
        if (static_cast<unsigned char>(out[i]) > 1) {
          bad("metadata \"" + printable(key) + "\": bool value " + std::to_string(+out[i]));
        }
      }
    }
  } else {
    for (std::uint64_t i = 0; i < n; ++i) {
      count_metadata(elem == kString ? 8 : 12);  // each element's own prefix in the copy
      value(elem, key, depth + 1, out);
    }
  }
  return std::string("array<") + value_type_name(elem) + ">[" + std::to_string(n) + "]";
}

Catalog GgufParser::parse() {
  char magic[4];
  in_.read(magic, 4);
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    bad("not a GGUF file (bad magic)");
  }
  version_ = in_.get<std::uint32_t>();
  if (version_ == 0 || version_ > 3) {
    if ((version_ & 0xFFFF) == 0 && (version_ >> 24) >= 1 && (version_ >> 24) <= 3) {
      fail(ErrorKind::unsupported,
           "gguf " + printable(source_->name()) + ": big-endian GGUF is not supported");
    }
    fail(ErrorKind::unsupported,
         "gguf " + printable(source_->name()) + ": unknown version " + std::to_string(version_));
  }
  const std::uint64_t n_tensors = count();
  const std::uint64_t n_kv = count();
  if (n_tensors > limits_.max_tensors) {
    over_limit("gguf " + printable(source_->name()), std::to_string(n_tensors) + " tensors",
               &Limits::max_tensors, limits_);
  }
  // Each KV takes at least 8 + 4 + 1 bytes, each tensor info at least 8 + 4 + 8 + 4 + 8.
  in_.need(checked_add(checked_mul(n_kv, 13, "gguf kv count"),
                       checked_mul(n_tensors, 32, "gguf tensor count"), "gguf header size"));

  Catalog cat;
  cat.format = Format::gguf;
  cat.header.version = version_;
  cat.sources.push_back(source_);
  std::unordered_set<std::string> keys;
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = str(&Limits::max_name_bytes, "metadata key");
    if (!keys.insert(key).second) {
      bad("duplicate metadata key \"" + printable(key) + "\"");
    }
    const auto type = in_.get<std::uint32_t>();
    if (key == "general.alignment" && type != kU32) {
      bad("general.alignment has type " + std::string(value_type_name(type)) + ", not u32");
    }
    count_metadata(key.size());
    GgufKv kv{key, type, {}};
    std::string text = value(type, key, 0, kv.value);
    if (key == "general.alignment") {
      std::uint32_t a = 0;
      std::memcpy(&a, kv.value.data(), 4);
      if (a == 0 || (a & (a - 1)) != 0) {
        bad("general.alignment " + std::to_string(a) + " is not a power of two");
      }
      alignment_ = a;
    }
    (type == kArray ? cat.header.array_metadata : cat.header.metadata)
        .emplace_back(std::move(key), std::move(text));
    cat.header.gguf_kv.push_back(std::move(kv));
  }

  std::unordered_set<std::string> names;
  cat.tensors.reserve(static_cast<std::size_t>(n_tensors));
  std::vector<std::uint64_t> rel_offsets;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = str(&Limits::max_name_bytes, "tensor name");
    if (!names.insert(t.name).second) {
      bad("duplicate tensor name \"" + printable(t.name) + "\"");
    }
    const auto n_dims = in_.get<std::uint32_t>();
    if (n_dims > limits_.max_rank && n_dims <= kMaxDims) {
      over_limit("gguf " + printable(source_->name()),
                 "tensor \"" + printable(t.name) + "\" rank " + std::to_string(n_dims),
                 &Limits::max_rank, limits_);
    }
    if (n_dims == 0 || n_dims > kMaxDims) {
      bad("tensor \"" + printable(t.name) + "\" has " + std::to_string(n_dims) + " dimensions");
    }
    std::vector<std::uint64_t> ne(n_dims);
    for (auto& d : ne) {
      d = version_ == 1 ? in_.get<std::uint32_t>() : in_.get<std::uint64_t>();
    }
    const auto type = in_.get<std::uint32_t>();
    const auto rel = in_.get<std::uint64_t>();
    const auto info = gg::block_info(type);
    if (!info) {
      bad("tensor \"" + printable(t.name) + "\" has unknown type id " + std::to_string(type));
    }

    // ggml order (ne[0] fastest) reversed into a row-major shape.
    t.shape.assign(ne.rbegin(), ne.rend());
    // Messages are built only on failure: this runs once per tensor.
    const auto what = [&] { return "gguf tensor \"" + printable(t.name) + "\""; };
    std::uint64_t elements = 1;
    bool overflow = false;
    for (auto d : ne) {
      overflow |= __builtin_mul_overflow(elements, d, &elements);
    }
    if (overflow) {
      fail_overflow(what() + " element count");
    }
    if (ne[0] % info->elements != 0) {
      bad("tensor \"" + printable(t.name) + "\": row of " + std::to_string(ne[0]) +
          " elements is not a whole number of " + std::to_string(info->elements) +
          "-element blocks");
    }
    if (__builtin_mul_overflow(elements / info->elements, info->bytes, &t.data.length)) {
      fail_overflow(what() + " byte size");
    }
    switch (static_cast<gg::GgmlType>(type)) {
      case gg::GgmlType::F32:
        t.dtype = DType::f32;
        break;
      case gg::GgmlType::F16:
        t.dtype = DType::f16;
        break;
      case gg::GgmlType::BF16:
        t.dtype = DType::bf16;
        break;
      case gg::GgmlType::F64:
        t.dtype = DType::f64;
        break;
      case gg::GgmlType::I8:
        t.dtype = DType::i8;
        break;
      case gg::GgmlType::I16:
        t.dtype = DType::i16;
        break;
      case gg::GgmlType::I32:
        t.dtype = DType::i32;
        break;
      case gg::GgmlType::I64:
        t.dtype = DType::i64;
        break;
      default:
        t.scheme = scheme::GgufBlocks{type};
        t.dtype = DType::u8;
    }
    rel_offsets.push_back(rel);
    cat.tensors.push_back(std::move(t));
  }

  const std::uint64_t align = alignment_.value_or(32);
  const std::uint64_t data_start = checked_align_up(in_.position(), align, "gguf data offset");
  const auto size = source_->size();
  for (std::size_t i = 0; i < cat.tensors.size(); ++i) {
    auto& t = cat.tensors[i];
    if (rel_offsets[i] % align != 0) {
      bad("tensor \"" + printable(t.name) + "\" offset is not aligned to " + std::to_string(align));
    }
    t.data.offset = checked_add(data_start, rel_offsets[i], "gguf tensor offset");
    const std::uint64_t end = checked_add(t.data.offset, t.data.length, "gguf tensor end");
    if (size && end > *size) {
      bad("tensor \"" + printable(t.name) + "\" runs past the end of the file");
    }
  }
  // No two tensors may share bytes.
  std::vector<std::size_t> order(cat.tensors.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](auto a, auto b) {
    return cat.tensors[a].data.offset < cat.tensors[b].data.offset;
  });
  for (std::size_t k = 1; k < order.size(); ++k) {
    const auto& prev = cat.tensors[order[k - 1]];
    if (prev.data.offset + prev.data.length > cat.tensors[order[k]].data.offset) {
      bad("tensors \"" + printable(prev.name) + "\" and \"" +
          printable(cat.tensors[order[k]].name) + "\" overlap");
    }
  }
  return cat;
}

}  // namespace

Catalog parse_gguf(SourcePtr source, const Limits& limits) {
  return GgufParser(std::move(source), limits).parse();
}

}  // namespace mneme
