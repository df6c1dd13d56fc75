// NPY header reader (NumPy format versions 1-3; hostile-inputs.md §1.4 and
// checklist 29-35). The header is a Python dict literal; it is parsed by a
// tiny grammar of its own (strings, True/False, tuples of ints), never eval'd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "mneme/catalog.hpp"

namespace mneme {

// "\x93NUMPY" at the start.
bool looks_like_npy(std::span<const std::byte> first_bytes);

// A standalone .npy file: one tensor named after the file (stem of the
// source's name).
Catalog parse_npy(SourcePtr src, const Limits& limits = {});

}  // namespace mneme

namespace mneme::npy {

// NumPy itself caps headers at 10 000 bytes; anamnesis at 1 MiB.
constexpr std::uint64_t kMaxHeaderBytes = 1 << 20;

struct Header {
  DType dtype = DType::f32;
  bool byte_swapped = false;  // '>' on a multi-byte dtype
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
  std::uint64_t data_offset = 0;  // bytes before the elements: magic through padding
  std::uint64_t data_bytes = 0;   // element count x dtype size, checked
};

// Bytes [offset, offset + n) of the NPY stream, or Error when they are not there.
using ReadFn = std::function<std::vector<std::byte>(std::uint64_t offset, std::size_t n)>;

// Reads the fixed prefix, checks the declared header length against the cap
// and `available` before reading it, parses it, and checks that the declared
// elements fit in `available` (the file or zip member size, when known).
// `what` names the file or member in messages.
Header read_header(const ReadFn& read, std::optional<std::uint64_t> available, const Limits& limits,
                   std::string_view what);

// Parses a complete header dict text (between the length field and the data).
Header parse_dict(std::string_view text, const Limits& limits, std::string_view what);

// dtype, shape and layout (byte order, Fortran-order element strides) of a
// tensor stored as this header describes.
void describe(const Header& header, TensorInfo& tensor);

}  // namespace mneme::npy
