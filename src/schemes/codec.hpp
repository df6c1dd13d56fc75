// Codec: how one tensor's stored bytes become output values, for every scheme
// behind one interface (design guide, "Decode"). The planner asks it for its
// chunk geometry; the pipeline reads the companions it lists, binds them, and
// calls decode() on chunks of elements. Neither knows which scheme it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "mneme/catalog.hpp"

namespace mneme {

// How chunks of a tensor are cut: in whole units of `unit_elements` values
// stored in `unit_bytes` bytes (an element, a quantization block, the rows
// that share packed words). Each chunk decodes on its own.
struct CodecGeometry {
  std::uint64_t unit_elements = 1;
  std::uint64_t unit_bytes = 1;
  // The tensor's last unit may be short (its stored bytes rounded up).
  bool short_last_unit = false;
  // Chunks are not contiguous in the output (a GPTQ/AWQ band of input rows is
  // a band of columns of the [out, in] weight): every decode writes into the
  // whole output tensor, held at once.
  bool assembled = false;
};

class Codec {
 public:
  virtual ~Codec() = default;
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  DType output() const { return output_; }
  const CodecGeometry& geometry() const { return geometry_; }
  // Stored bytes of the first `elements` values (a chunk boundary).
  std::uint64_t input_bytes(std::uint64_t elements) const;

  // The companion tensors to read before the first decode, in bind() order.
  virtual std::vector<Extent> companions() const { return {}; }
  // Takes the companions' bytes (as companions() lists them; they must stay
  // valid until the last decode) and checks them against the tensor. No I/O.
  virtual void bind(std::span<const std::span<const std::byte>> bytes) {}
  // Decodes values [first, first + count) from their stored bytes `input`
  // into `out`: exactly their output bytes or, when geometry().assembled, the
  // whole output tensor. `first` and `count` are whole units (count may end
  // on the tensor's short last unit). Const: chunks decode concurrently.
  virtual void decode(std::uint64_t first, std::uint64_t count, const std::byte* input,
                      std::span<std::byte> out) const = 0;
  // Whether decode() only copies: the output bytes are the stored bytes (a
  // tensor kept in its stored type), which the pipeline may then copy itself.
  virtual bool copies() const { return false; }

 protected:
  Codec(DType output, CodecGeometry geometry) : output_(output), geometry_(geometry) {}

 private:
  DType output_;
  CodecGeometry geometry_;
};

// The codec for tensor `t`: quantized schemes decode to `to` (BF16 when
// unset); plain floats convert to `to` when given; everything else is copied
// as stored. Checks the tensor's shape against its scheme (Error{parse}) and
// that a kernel exists (Error{unsupported}). No I/O.
std::unique_ptr<Codec> make_codec(const TensorInfo& t, std::optional<OutType> to);

}  // namespace mneme
