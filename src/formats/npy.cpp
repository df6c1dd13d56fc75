// NPY format: magic "\x93NUMPY", major, minor, header length (u16 for 1.0,
// u32 for 2.0/3.0), then the header dict padded with spaces and a newline,
// then the elements (numpy/lib/format.py).
#include "src/formats/npy.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"

namespace mneme {

namespace {
constexpr std::size_t kNumpyMaxDims = 64;
constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
}

bool looks_like_npy(std::span<const std::byte> b) {
  return b.size() >= sizeof kMagic && std::memcmp(b.data(), kMagic, sizeof kMagic) == 0;
}

Catalog parse_npy(SourcePtr src, const Limits& limits) {
  std::string_view full = src->name();
  std::string_view stem = full.substr(
      full.find_last_of('/') == std::string_view::npos ? 0 : full.find_last_of('/') + 1);
  if (stem.size() > 4 && stem.substr(stem.size() - 4) == ".npy") stem.remove_suffix(4);
  if (stem.empty() || stem == "-") stem = "array";

  const auto size = src->size();
  Source& s = *src;
  const npy::Header h = npy::read_header(
      [&](std::uint64_t off, std::size_t n) {
        if (size && (off > *size || *size - off < n)) {
          fail(ErrorKind::parse, "npy " + printable(s.name()) + ": truncated header");
        }
        std::vector<std::byte> buf(n);
        if (n) s.read_at(off, buf);
        return buf;
      },
      size, limits, src->name());

  Catalog cat;
  cat.format = Format::npy;
  cat.sources = {src};
  TensorInfo t;
  t.name = std::string(stem);
  npy::describe(h, t);
  t.data = Extent{0, h.data_offset, h.data_bytes};
  cat.tensors.push_back(std::move(t));
  return cat;
}

}  // namespace mneme

namespace mneme::npy {
namespace {

[[noreturn]] void bad(std::string_view what, const std::string& why) {
  fail(ErrorKind::parse, "npy " + printable(what) + ": " + why);
}

// Recursive-descent reader for the header dict's Python-literal subset.
class DictParser {
 public:
  DictParser(std::string_view text, std::string_view what) : s_(text), what_(what) {}

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c, const char* where) {
    if (!eat(c)) bad(what_, std::string("header: expected '") + c + "' " + where);
  }
  bool at_end() {
    ws();
    return i_ == s_.size();
  }
  char peek() {
    ws();
    return i_ < s_.size() ? s_[i_] : '\0';
  }

  std::string string() {
    ws();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"'))
      bad(what_, "header: expected a string");
    const char q = s_[i_++];
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) {
      // NumPy never escapes inside the header; an escape is not worth parsing.
      if (s_[i_] == '\\') bad(what_, "header: escape sequences are not supported");
      ++i_;
    }
    if (i_ >= s_.size()) bad(what_, "header: unterminated string");
    return std::string(s_.substr(start, i_++ - start));
  }

  bool boolean() {
    ws();
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    bad(what_, "header: fortran_order is not True or False");
  }

  std::uint64_t integer() {
    ws();
    if (i_ < s_.size() && s_[i_] == '-') bad(what_, "header: negative dimension");
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9')
      bad(what_, "header: dimension is not an integer");
    std::uint64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      v = checked_add(checked_mul(v, 10, "npy dimension"), static_cast<unsigned>(s_[i_] - '0'),
                      "npy dimension");
      ++i_;
    }
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long suffix, in old files
    return v;
  }

  std::vector<std::uint64_t> shape(const Limits& limits) {
    ws();
    if (i_ >= s_.size() || s_[i_] != '(') bad(what_, "header: shape is not a tuple");
    ++i_;
    std::vector<std::uint64_t> dims;
    if (eat(')')) return dims;
    bool trailing_comma = false;
    while (true) {
      if (dims.size() >= limits.max_rank) {
        over_limit("npy " + printable(what_),
                   "shape of more than " + std::to_string(dims.size()) + " dimensions",
                   &Limits::max_rank, limits);
      }
      if (dims.size() >= kNumpyMaxDims)
        bad(what_, "header: more than 64 dimensions (NumPy's maximum)");
      dims.push_back(integer());
      trailing_comma = eat(',');
      if (eat(')')) break;
      if (!trailing_comma) bad(what_, "header: malformed shape tuple");
    }
    // "(8)" is a parenthesised int in Python, not a tuple.
    if (dims.size() == 1 && !trailing_comma) bad(what_, "header: shape is not a tuple");
    return dims;
  }

 private:
  std::string_view s_;
  std::string_view what_;
  std::size_t i_ = 0;
};

struct TypeCode {
  std::string_view code;
  DType dtype;
};
constexpr std::array<TypeCode, 13> kTypes{{{"b1", DType::bool_},
                                           {"u1", DType::u8},
                                           {"u2", DType::u16},
                                           {"u4", DType::u32},
                                           {"u8", DType::u64},
                                           {"i1", DType::i8},
                                           {"i2", DType::i16},
                                           {"i4", DType::i32},
                                           {"i8", DType::i64},
                                           {"f2", DType::f16},
                                           {"f4", DType::f32},
                                           {"f8", DType::f64},
                                           {"V2", DType::bf16}}};  // JAX's bfloat16 convention

void set_dtype(const std::string& descr, Header& h, std::string_view what) {
  if (descr.empty()) bad(what, "header: empty descr");
  const char order = descr[0];
  std::string_view code = descr;
  if (order == '<' || order == '>' || order == '|' || order == '=') code.remove_prefix(1);
  for (const auto& t : kTypes) {
    if (code != t.code) continue;
    h.dtype = t.dtype;
    const bool multi_byte = dtype_size(t.dtype) > 1;
    if (t.dtype == DType::bf16) {
      if (order == '>') {
        fail(ErrorKind::unsupported, "npy " + printable(what) + ": big-endian V2 (bfloat16)");
      }
    } else if (multi_byte && order == '|') {
      bad(what, "header: multi-byte dtype " + printable(descr) + " without byte order");
    } else if (multi_byte && order == '>') {
      h.byte_swapped = true;
    }
    return;
  }
  if (!code.empty() && code[0] == 'O') {
    fail(ErrorKind::unsupported, "npy " + printable(what) + ": object arrays (descr " +
                                     printable(descr) + ") need pickle to load and are refused");
  }
  fail(ErrorKind::unsupported,
       "npy " + printable(what) + ": dtype " + printable(descr) + " is not supported");
}

}  // namespace

Header parse_dict(std::string_view text, const Limits& limits, std::string_view what) {
  Header h;
  DictParser p(text, what);
  p.expect('{', "at the start of the header");
  bool have_descr = false, have_order = false, have_shape = false;
  while (!p.eat('}')) {
    const std::string key = p.string();
    p.expect(':', "after a header key");
    if (key == "descr" && !have_descr) {
      if (p.peek() == '[') {
        fail(ErrorKind::unsupported,
             "npy " + printable(what) + ": structured dtypes are not supported");
      }
      set_dtype(p.string(), h, what);
      have_descr = true;
    } else if (key == "fortran_order" && !have_order) {
      h.fortran_order = p.boolean();
      have_order = true;
    } else if (key == "shape" && !have_shape) {
      h.shape = p.shape(limits);
      have_shape = true;
    } else {
      bad(what, "header: unexpected or repeated key " + printable(key));
    }
    if (!p.eat(',')) {
      p.expect('}', "after a header entry");
      break;
    }
  }
  if (!p.at_end()) bad(what, "header: trailing characters after the dict");
  if (!have_descr || !have_order || !have_shape) {
    bad(what, "header does not hold exactly the keys descr, fortran_order and shape");
  }
  std::uint64_t count = 1;
  for (auto d : h.shape) count = checked_mul(count, d, "npy element count");
  h.data_bytes = checked_mul(count, dtype_size(h.dtype), "npy byte size");
  return h;
}

Header read_header(const ReadFn& read, std::optional<std::uint64_t> available, const Limits& limits,
                   std::string_view what) {
  if (available && *available < 10) bad(what, "too short for an NPY header");
  auto fixed = read(0, 10);
  if (!looks_like_npy(fixed)) bad(what, "no NPY magic");
  const unsigned major = std::to_integer<unsigned>(fixed[6]);
  const unsigned minor = std::to_integer<unsigned>(fixed[7]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(ErrorKind::unsupported, "npy " + printable(what) + ": format version " +
                                     std::to_string(major) + "." + std::to_string(minor));
  }
  std::uint64_t len_field = 10, header_len;
  if (major == 1) {
    header_len = std::to_integer<unsigned>(fixed[8]) | (std::to_integer<unsigned>(fixed[9]) << 8);
  } else {
    if (available && *available < 12) bad(what, "too short for an NPY header");
    const auto more = read(10, 2);
    len_field = 12;
    header_len = std::to_integer<std::uint64_t>(fixed[8]) |
                 (std::to_integer<std::uint64_t>(fixed[9]) << 8) |
                 (std::to_integer<std::uint64_t>(more[0]) << 16) |
                 (std::to_integer<std::uint64_t>(more[1]) << 24);
  }
  // Check the declared length before reading it (NumPy reads first).
  if (header_len > limits.max_header_bytes) {
    over_limit("npy " + printable(what), "header of " + std::to_string(header_len) + " bytes",
               &Limits::max_header_bytes, limits);
  }
  if (header_len > kMaxHeaderBytes) {
    fail(ErrorKind::limit, "npy " + printable(what) + ": header of " + std::to_string(header_len) +
                               " bytes exceeds the format's cap of " +
                               std::to_string(kMaxHeaderBytes));
  }
  const std::uint64_t data_offset = len_field + header_len;
  if (available && *available < data_offset) bad(what, "header runs past the end of the data");
  const auto text = read(len_field, header_len);
  Header h = parse_dict(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()),
                        limits, what);
  h.data_offset = data_offset;
  if (available && *available - data_offset < h.data_bytes) {
    bad(what, "header declares " + std::to_string(h.data_bytes) + " data bytes but only " +
                  std::to_string(*available - data_offset) + " are present");
  }
  return h;
}

void describe(const Header& h, TensorInfo& t) {
  t.dtype = h.dtype;
  t.shape = h.shape;
  t.layout.byte_swapped = h.byte_swapped;
  t.layout.strides.clear();
  // Column-major element strides, unless the order makes no difference
  // (empty, or at most one dimension longer than 1).
  const auto long_dims =
      std::count_if(h.shape.begin(), h.shape.end(), [](auto d) { return d > 1; });
  const bool empty = std::find(h.shape.begin(), h.shape.end(), 0) != h.shape.end();
  if (h.fortran_order && long_dims > 1 && !empty) {
    std::uint64_t stride = 1;
    for (auto d : h.shape) {
      t.layout.strides.push_back(stride);
      stride *= d;  // bounded by the element count, already checked
    }
  }
}

}  // namespace mneme::npy
