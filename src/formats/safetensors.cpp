// safetensors header parsing and validation.
//
// Layout: u64 LE header length N, N bytes of JSON, then the data section.
// Every rule of the reference implementation (hostile-inputs.md §1.2) is
// enforced, plus duplicate-key rejection and strict field typing.
#include <algorithm>
#include <array>
#include <string>

#include <boost/json.hpp>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "src/formats/strict_json.hpp"

namespace mneme {
namespace {

namespace json = boost::json;

[[noreturn]] void bad(const Source& src, const std::string& why) {
  fail(ErrorKind::parse, "safetensors " + printable(src.name()) + ": " + why);
}

// Dtype names the format defines that mneme recognises but does not decode.
bool known_unsupported_dtype(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kNames{"F4",      "F6_E2M3", "F6_E3M2",
                                                          "F8_E8M0", "C64",     "F8_E4M3FNUZ"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

std::uint64_t as_u64(const Source& src, const json::value& v, const std::string& what) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
  bad(src, what + " must be a non-negative integer");
}

TensorInfo parse_tensor(const Source& src, std::string_view name, const json::value& v,
                        const Limits& limits) {
  const std::string where = "tensor \"" + printable(name) + "\"";
  if (name.size() > limits.max_name_bytes) {
    over_limit("safetensors " + printable(src.name()),
               where + " name of " + std::to_string(name.size()) + " bytes",
               &Limits::max_name_bytes, limits);
  }
  if (!v.is_object()) bad(src, where + " is not an object");
  const auto& o = v.get_object();
  for (const auto& kv : o) {
    if (kv.key() != "dtype" && kv.key() != "shape" && kv.key() != "data_offsets") {
      bad(src, where + " has unknown field \"" + printable(kv.key()) + "\"");
    }
  }
  const auto* dtype = o.if_contains("dtype");
  const auto* shape = o.if_contains("shape");
  const auto* offsets = o.if_contains("data_offsets");
  if (!dtype || !shape || !offsets) bad(src, where + " needs dtype, shape and data_offsets");
  if (!dtype->is_string()) bad(src, where + ": dtype is not a string");
  if (!shape->is_array()) bad(src, where + ": shape is not an array");
  if (!offsets->is_array() || offsets->get_array().size() != 2) {
    bad(src, where + ": data_offsets is not [begin, end]");
  }

  TensorInfo t;
  t.name = std::string(name);
  const std::string_view dname(dtype->get_string().data(), dtype->get_string().size());
  const auto dt = dtype_from_name(dname);
  if (!dt) {
    if (known_unsupported_dtype(dname)) {
      fail(ErrorKind::unsupported, "safetensors " + printable(src.name()) + ": " + where +
                                       " has dtype " + std::string(dname) + ", not supported yet");
    }
    bad(src, where + " has unknown dtype \"" + printable(dname) + "\"");
  }
  t.dtype = *dt;

  const auto& dims = shape->get_array();
  if (dims.size() > limits.max_rank) {
    over_limit("safetensors " + printable(src.name()),
               where + " rank " + std::to_string(dims.size()), &Limits::max_rank, limits);
  }
  t.shape.reserve(dims.size());
  for (const auto& d : dims) t.shape.push_back(as_u64(src, d, where + " shape entry"));

  const std::uint64_t begin = as_u64(src, offsets->get_array()[0], where + " data_offsets");
  const std::uint64_t end = as_u64(src, offsets->get_array()[1], where + " data_offsets");
  if (end < begin) bad(src, where + ": data_offsets end < begin");
  t.data = Extent{0, begin, end - begin};

  // Checked: the element count and byte size may overflow (e.g. [2^33, 2^33, 0]
  // overflows before the zero: rejected, as a defined policy).
  std::uint64_t elements = 1;
  for (auto d : t.shape) elements = checked_mul(elements, d, "safetensors " + where + " element count");
  const std::uint64_t bytes = checked_mul(elements, dtype_size(t.dtype), "safetensors " + where + " byte size");
  if (bytes != t.data.length) {
    bad(src, where + ": shape x dtype is " + std::to_string(bytes) + " bytes but data_offsets span " +
                 std::to_string(t.data.length));
  }
  return t;
}

}  // namespace

Catalog parse_safetensors(SourcePtr source, const Limits& limits) {
  const Source& src = *source;
  const auto size = src.size();
  if (size && *size < 8) bad(src, "file is " + std::to_string(*size) + " bytes, shorter than the 8-byte header length");

  std::array<std::byte, 8> prefix{};
  source->read_at(0, prefix);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(prefix[static_cast<std::size_t>(i)]);
  if (n > limits.max_header_bytes) {
    over_limit("safetensors " + printable(src.name()), "header length " + std::to_string(n),
               &Limits::max_header_bytes, limits);
  }
  const std::uint64_t data_start = checked_add(n, 8, "safetensors header length");
  if (size && data_start > *size) {
    bad(src, "header length " + std::to_string(n) + " runs past the end of the file");
  }

  std::string header(n, '\0');  // bounded by the cap and the file size above
  source->read_at(8, std::as_writable_bytes(std::span(header.data(), header.size())));
  const json::value root = parse_strict_json(header, "safetensors " + printable(src.name()) + " header");
  if (!root.is_object()) bad(src, "header is not a JSON object");
  const auto& obj = root.get_object();
  const std::size_t n_tensors = obj.size() - (obj.contains("__metadata__") ? 1 : 0);
  if (n_tensors > limits.max_tensors) {
    over_limit("safetensors " + printable(src.name()), std::to_string(n_tensors) + " tensors",
               &Limits::max_tensors, limits);
  }

  Catalog cat;
  cat.format = Format::safetensors;
  cat.sources.push_back(source);
  cat.tensors.reserve(obj.size());
  for (const auto& kv : obj) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (key == "__metadata__") {
      if (!kv.value().is_object()) bad(src, "__metadata__ is not an object");
      for (const auto& m : kv.value().get_object()) {
        if (!m.value().is_string()) {
          bad(src, "__metadata__ value of \"" + printable(m.key()) + "\" is not a string");
        }
        cat.header.metadata.emplace_back(std::string(m.key()), std::string(m.value().get_string()));
      }
      continue;
    }
    cat.tensors.push_back(parse_tensor(src, key, kv.value(), limits));
  }

  // Exact tiling of the data section: sorted by offset, first at 0, no gaps,
  // no overlap, last ending at end of file.
  std::stable_sort(cat.tensors.begin(), cat.tensors.end(),
                   [](const TensorInfo& a, const TensorInfo& b) {
                     return a.data.offset < b.data.offset ||
                            (a.data.offset == b.data.offset && a.data.length < b.data.length);
                   });
  std::uint64_t expected = 0;
  for (const auto& t : cat.tensors) {
    if (t.data.offset != expected) {
      bad(src, "tensor \"" + printable(t.name) + "\" starts at " + std::to_string(t.data.offset) +
                   ", expected " + std::to_string(expected) +
                   (t.data.offset < expected ? " (overlap)" : " (gap)"));
    }
    expected = t.data.offset + t.data.length;  // no overflow: length <= end
  }
  const std::uint64_t file_end = checked_add(data_start, expected, "safetensors data end");
  if (size && file_end != *size) {
    bad(src, file_end < *size ? "trailing bytes after the last tensor (" + std::to_string(*size - file_end) + ")"
                              : "data section ends at " + std::to_string(file_end) +
                                    ", past the end of the file (" + std::to_string(*size) + ")");
  }
  for (auto& t : cat.tensors) t.data.offset += data_start;
  return cat;
}

}  // namespace mneme
