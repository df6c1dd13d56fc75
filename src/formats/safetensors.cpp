// safetensors header parsing and validation.
//
// Layout: u64 LE header length N, N bytes of JSON, then the data section.
// Every rule of the reference implementation (hostile-inputs.md §1.2) is
// enforced, plus duplicate-key rejection and strict field typing.
#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/json/basic_parser_impl.hpp>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"

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

// What one tensor entry ({"dtype": ..., "shape": [...], "data_offsets": [b, e]})
// said, checked into a TensorInfo when its object closes.
TensorInfo finish_tensor(const Source& src, std::string name, std::string_view dtype,
                         const std::vector<std::uint64_t>& shape,
                         const std::uint64_t (&offsets)[2]) {
  // Messages are built only on failure: this runs once per tensor.
  const auto where = [&] { return "tensor \"" + printable(name) + "\""; };
  TensorInfo t;
  const auto dt = dtype_from_name(dtype);
  if (!dt) {
    if (known_unsupported_dtype(dtype)) {
      fail(ErrorKind::unsupported, "safetensors " + printable(src.name()) + ": " + where() +
                                       " has dtype " + std::string(dtype) + ", not supported yet");
    }
    bad(src, where() + " has unknown dtype \"" + printable(dtype) + "\"");
  }
  t.dtype = *dt;
  if (offsets[1] < offsets[0]) bad(src, where() + ": data_offsets end < begin");
  t.data = Extent{0, offsets[0], offsets[1] - offsets[0]};
  // Checked: the element count and byte size may overflow (e.g. [2^33, 2^33, 0]
  // overflows before the zero: rejected, as a defined policy).
  std::uint64_t elements = 1;
  bool overflow = false;
  for (auto d : shape) overflow |= __builtin_mul_overflow(elements, d, &elements);
  if (overflow) fail_overflow("safetensors " + where() + " element count");
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, dtype_size(t.dtype), &bytes)) {
    fail_overflow("safetensors " + where() + " byte size");
  }
  if (bytes != t.data.length) {
    bad(src, where() + ": shape x dtype is " + std::to_string(bytes) +
                 " bytes but data_offsets span " + std::to_string(t.data.length));
  }
  t.name = std::move(name);
  t.shape.assign(shape.begin(), shape.end());  // exactly sized: one allocation
  return t;
}

// Reads the header in one pass of Boost.JSON's SAX parser straight into the
// catalog: no document tree, no second pass for duplicate keys. Everything
// the format allows has a fixed place (the top object's tensors and
// __metadata__, a tensor's three fields, the shape and offset integers), so
// anything else is refused the moment it appears and nesting never exceeds
// three. The first problem is kept and the parse stops (a handler returning
// false); parse_safetensors throws it. Tensor names are checked for
// duplicates once all are read; metadata keys and a tensor's fields as they
// come.
class HeaderReader {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  HeaderReader(const Source& src, const Limits& limits, Catalog& cat)
      : src_(src), limits_(limits), cat_(cat) {}

  // The problem that stopped the parse, if a rule (not the JSON grammar) did.
  const std::optional<Error>& problem() const { return problem_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code& ec) {
    switch (at_) {
      case At::document:
        return go(At::top);
      case At::top_value:
        if (metadata_) return go(At::metadata);
        pending_.reset();
        return go(At::tensor);
      default:
        return refuse(ec, unexpected("an object"));
    }
  }
  bool on_object_end(std::size_t, json::error_code& ec) {
    switch (at_) {
      case At::top:
        return go(At::done);
      case At::metadata:
        return go(At::top);
      case At::tensor:
        return end_tensor(ec);
      default:
        return refuse(ec, unexpected("'}'"));
    }
  }
  bool on_array_begin(json::error_code& ec) {
    if (at_ == At::field_value && (field_ == Field::shape || field_ == Field::offsets)) {
      return go(field_ == Field::shape ? At::shape : At::offsets);
    }
    return refuse(ec, unexpected("an array"));
  }
  bool on_array_end(std::size_t n, json::error_code& ec) {
    if (at_ == At::offsets && n != 2)
      return refuse(ec, where() + ": data_offsets is not [begin, end]");
    if (at_ == At::shape || at_ == At::offsets) return go(At::tensor);
    return refuse(ec, unexpected("']'"));
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    text_.append(s.data(), s.size());
    switch (at_) {
      case At::top:
        return top_key(ec);
      case At::metadata:
        if (!metadata_keys_.insert(text_).second)
          return refuse(ec, "duplicate key \"" + printable(text_) + "\"");
        metadata_key_ = std::move(text_);
        text_.clear();
        return go(At::metadata_value);
      case At::tensor:
        return tensor_key(ec);
      default:
        return refuse(ec, unexpected("a key"));
    }
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    text_.append(s.data(), s.size());
    if (at_ == At::metadata_value) {
      cat_.header.metadata.emplace_back(std::move(metadata_key_), std::move(text_));
      text_.clear();
      return go(At::metadata);
    }
    if (at_ == At::field_value && field_ == Field::dtype) {
      pending_.dtype = std::move(text_);
      text_.clear();
      return go(At::tensor);
    }
    return refuse(ec, unexpected("a string"));
  }

  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t v, json::string_view, json::error_code& ec) {
    if (v < 0) return not_an_integer(ec);
    return integer(static_cast<std::uint64_t>(v), ec);
  }
  bool on_uint64(std::uint64_t v, json::string_view, json::error_code& ec) {
    return integer(v, ec);
  }
  bool on_double(double, json::string_view, json::error_code& ec) { return not_an_integer(ec); }
  bool on_bool(bool, json::error_code& ec) { return scalar(ec, "a boolean"); }
  bool on_null(json::error_code& ec) { return scalar(ec, "null"); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // Where the parse is: what the next event may be.
  enum class At {
    document,
    top,
    top_value,
    metadata,
    metadata_value,
    tensor,
    field_value,
    shape,
    offsets,
    done
  };
  enum class Field { dtype, shape, offsets };
  struct Pending {
    std::string dtype;
    std::vector<std::uint64_t> shape;  // reused from tensor to tensor
    std::uint64_t offsets[2] = {0, 0};
    unsigned n_offsets = 0;
    unsigned seen = 0;  // bit per Field
    void reset() {
      dtype.clear();
      shape.clear();
      n_offsets = 0;
      seen = 0;
    }
  };

  bool go(At at) {
    at_ = at;
    return true;
  }
  // Runs a check that may throw Error; keeps what it threw and stops the parse.
  template <class Check>
  bool guarded(json::error_code& ec, Check&& check) {
    try {
      check();
      return true;
    } catch (const Error& e) {
      problem_ = e;
      ec = json::error::syntax;
      return false;
    }
  }
  // Stops the parse; `problem` is what is reported.
  bool stop(json::error_code& ec, Error problem) {
    problem_ = std::move(problem);
    ec = json::error::syntax;  // any code: problem_ is what is reported
    return false;
  }
  bool refuse(json::error_code& ec, const std::string& why, ErrorKind kind = ErrorKind::parse) {
    return stop(ec, Error(kind, "safetensors " + printable(src_.name()) + ": " + why));
  }
  bool refuse_over(json::error_code& ec, const std::string& what, std::uint64_t Limits::*cap) {
    return stop(ec, limit_error("safetensors " + printable(src_.name()), what, cap, limits_));
  }
  std::string where() const { return "tensor \"" + printable(name_) + "\""; }
  std::string unexpected(const char* what) const {
    switch (at_) {
      case At::document:
        return "header is not a JSON object";
      case At::top_value:
        return metadata_ ? "__metadata__ is not an object" : where() + " is not an object";
      case At::metadata_value:
        return "__metadata__ value of \"" + printable(metadata_key_) + "\" is not a string";
      case At::field_value:
        return where() + ": " +
               (field_ == Field::dtype   ? "dtype is not a string"
                : field_ == Field::shape ? "shape is not an array"
                                         : "data_offsets is not [begin, end]");
      case At::shape:
        return where() + " shape entry must be a non-negative integer";
      case At::offsets:
        return where() + " data_offsets must be non-negative integers";
      default:
        return std::string("unexpected ") + what + " in the header";
    }
  }
  bool scalar(json::error_code& ec, const char* what) { return refuse(ec, unexpected(what)); }
  bool not_an_integer(json::error_code& ec) {
    if (at_ == At::shape || at_ == At::offsets) return refuse(ec, unexpected("a number"));
    return scalar(ec, "a number");
  }
  bool integer(std::uint64_t v, json::error_code& ec) {
    if (at_ == At::shape) {
      if (pending_.shape.size() == limits_.max_rank) {
        return refuse_over(ec, where() + " rank " + std::to_string(pending_.shape.size() + 1),
                           &Limits::max_rank);
      }
      pending_.shape.push_back(v);
      return true;
    }
    if (at_ == At::offsets) {
      if (pending_.n_offsets == 2)
        return refuse(ec, where() + ": data_offsets is not [begin, end]");
      pending_.offsets[pending_.n_offsets++] = v;
      return true;
    }
    return scalar(ec, "a number");
  }

  bool top_key(json::error_code& ec) {
    if (text_ == "__metadata__") {
      if (seen_metadata_) return refuse(ec, "duplicate key \"__metadata__\"");
      seen_metadata_ = metadata_ = true;
      text_.clear();
      return go(At::top_value);
    }
    metadata_ = false;
    name_ = std::move(text_);
    text_.clear();
    if (name_.size() > limits_.max_name_bytes) {
      return refuse_over(ec, where() + " name of " + std::to_string(name_.size()) + " bytes",
                         &Limits::max_name_bytes);
    }
    if (cat_.tensors.size() == limits_.max_tensors) {
      return refuse_over(ec, "more than " + std::to_string(limits_.max_tensors) + " tensors",
                         &Limits::max_tensors);
    }
    return go(At::top_value);
  }

  bool tensor_key(json::error_code& ec) {
    if (text_ == "dtype") {
      field_ = Field::dtype;
    } else if (text_ == "shape") {
      field_ = Field::shape;
    } else if (text_ == "data_offsets") {
      field_ = Field::offsets;
    } else {
      return refuse(ec, where() + " has unknown field \"" + printable(text_) + "\"");
    }
    const unsigned bit = 1u << static_cast<unsigned>(field_);
    if (pending_.seen & bit) return refuse(ec, "duplicate key \"" + printable(text_) + "\"");
    pending_.seen |= bit;
    text_.clear();
    return go(At::field_value);
  }

  bool end_tensor(json::error_code& ec) {
    if (pending_.seen != 7) return refuse(ec, where() + " needs dtype, shape and data_offsets");
    const bool finished = guarded(ec, [&] {
      cat_.tensors.push_back(
          finish_tensor(src_, std::move(name_), pending_.dtype, pending_.shape, pending_.offsets));
    });
    if (!finished) return false;
    name_.clear();
    return go(At::top);
  }

  const Source& src_;
  const Limits& limits_;
  Catalog& cat_;
  At at_ = At::document;
  Field field_ = Field::dtype;
  bool metadata_ = false;  // the top-level value being read is __metadata__
  bool seen_metadata_ = false;
  std::string text_;  // the key or string being read (it may come in parts)
  std::string name_;  // the tensor being read
  std::string metadata_key_;
  std::unordered_set<std::string> metadata_keys_;
  Pending pending_;
  std::optional<Error> problem_;
};

// A tensor name appearing twice, found by sorting indices by name (8 bytes
// per tensor, no copies of the names); headers written in name order (most
// writers sort their keys) need one comparison a tensor.
void refuse_duplicate_names(const Source& src, const std::vector<TensorInfo>& tensors) {
  const auto ascending = std::adjacent_find(
      tensors.begin(), tensors.end(),
      [](const TensorInfo& a, const TensorInfo& b) { return !(a.name < b.name); });
  if (ascending == tensors.end()) return;
  std::vector<std::size_t> by_name(tensors.size());
  for (std::size_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
  std::sort(by_name.begin(), by_name.end(),
            [&](std::size_t a, std::size_t b) { return tensors[a].name < tensors[b].name; });
  for (std::size_t i = 1; i < by_name.size(); ++i) {
    if (tensors[by_name[i]].name == tensors[by_name[i - 1]].name) {
      bad(src, "duplicate key \"" + printable(tensors[by_name[i]].name) + "\"");
    }
  }
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
  Catalog cat;
  cat.format = Format::safetensors;
  cat.sources.push_back(source);
  // Each tensor entry spells "data_offsets" once (an escaped spelling only
  // makes this hint short): room for all of them, so the list never regrows.
  // No entry is shorter than kMinEntry bytes, which bounds what a header of
  // nothing but "data_offsets" could make it reserve.
  std::size_t hint = 0;
  for (auto at = header.find("\"data_offsets\""); at != std::string::npos;
       at = header.find("\"data_offsets\"", at + 14)) {
    ++hint;
  }
  constexpr std::size_t kMinEntry = 48;  // "a":{"dtype":"F32","shape":[],"data_offsets":[0,0]},
  cat.tensors.reserve(
      std::min<std::uint64_t>({hint, header.size() / kMinEntry, limits.max_tensors}));

  json::parse_options opts;
  opts.max_depth = 8;  // the reader refuses anything deeper than 3 first
  json::basic_parser<HeaderReader> reader(opts, src, limits, cat);
  json::error_code ec;
  const std::size_t used = reader.write_some(false, header.data(), header.size(), ec);
  if (const auto& p = reader.handler().problem()) throw *p;
  if (ec) bad(src, "header: invalid JSON (" + ec.message() + ")");
  if (used != header.size())
    bad(src, "header: bytes after the JSON object (NUL padding is not JSON)");
  refuse_duplicate_names(src, cat.tensors);

  // Exact tiling of the data section: sorted by offset, first at 0, no gaps,
  // no overlap, last ending at end of file. The order is found on
  // indices and applied by following its cycles, so no tensor is copied and
  // no second list is held (ties keep header order, as a stable sort would).
  std::vector<std::size_t> order(cat.tensors.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto& ts = cat.tensors;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Extent &x = ts[a].data, &y = ts[b].data;
    return x.offset != y.offset   ? x.offset < y.offset
           : x.length != y.length ? x.length < y.length
                                  : a < b;
  });
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i] == i) continue;
    TensorInfo held = std::move(cat.tensors[i]);
    std::size_t at = i;
    while (order[at] != i) {
      const std::size_t from = order[at];
      cat.tensors[at] = std::move(cat.tensors[from]);
      order[at] = at;
      at = from;
    }
    cat.tensors[at] = std::move(held);
    order[at] = at;
  }
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
