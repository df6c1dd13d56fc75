// How a tensor's stored bytes become values: one typed description per
// quantization scheme, with its parameters and its companion tensors as typed
// fields, so that what a decoder needs is checked by the compiler rather than
// looked up by role name at run time. The catalog carries one per tensor
// (TensorInfo::scheme); src/schemes/ detects them and builds their codecs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mneme/boxed.hpp"
#include "mneme/dtype.hpp"

namespace mneme {

// A byte range inside one of the catalog's sources.
struct Extent {
  std::uint32_t source = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// A small tensor a quantized weight needs (scales, zeros, ...), possibly in
// another shard. It leaves the tensor list; the weight's scheme holds it.
struct Companion {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  Extent data;
};

namespace scheme {

// Every scheme lists its companions (those only detection needed included)
// with companions(), so code over all schemes needs no per-scheme case.
using Companions = std::vector<const Companion*>;

// The bytes are `TensorInfo::dtype` elements (converted between float widths on request).
struct Plain {
  Companions companions() const { return {}; }
};

// ggml quantization blocks of one type (kernels/gguf/gguf_types.hpp).
struct GgufBlocks {
  std::uint32_t type = 0;
  Companions companions() const { return {}; }
};

// F8_E4M3 / F8_E5M2 elements of a 2-D weight times a scale.
struct Fp8 {
  enum class Scaling : std::uint8_t { per_tensor, per_channel, block };
  Scaling scaling = Scaling::per_tensor;
  std::uint32_t block_rows = 128;  // Scaling::block
  std::uint32_t block_cols = 128;
  Companion scale;
  Companions companions() const { return {&scale}; }
};

// I32-packed 4/8-bit weights (`.qweight`), decoded to the nn.Linear
// orientation [out, in]; TensorInfo::shape is that decoded shape.
struct Gptq {
  std::uint32_t bits = 4;
  std::uint64_t group_size = 0;  // input rows per group; 0: only g_idx knows
  bool v2 = false;               // checkpoint_format gptq_v2: zeros stored without the -1
  Companion scales;
  Companion qzeros;
  std::optional<Companion> g_idx;
  Companions companions() const {
    return g_idx ? Companions{&scales, &qzeros, &*g_idx} : Companions{&scales, &qzeros};
  }
};

struct Awq {
  std::uint32_t bits = 4;
  std::uint64_t group_size = 0;
  Companion scales;
  Companion qzeros;
  Companions companions() const { return {&scales, &qzeros}; }
};

// BitsAndBytes NF4/FP4: two codes per byte, decoded to the shape the
// quant_state records.
// Double quantization of a Bnb4 absmax. (Outside Bnb4: clang cannot
// default-construct a nested class with member initializers inside its
// enclosing class, which std::optional<Nested> asks it to.)
struct Bnb4Nested {
  std::uint64_t block_size = 0;
  float offset = 0.0f;
  Companion absmax;
  Companion quant_map;
};

struct Bnb4 {
  bool fp4 = false;  // FP4 codes, else NF4 (the decode uses the stored quant_map either way)
  std::uint64_t block_size = 0;
  Companion absmax;
  Companion quant_map;
  Companion quant_state;  // the JSON it was detected from; not needed to decode
  using Nested = Bnb4Nested;
  std::optional<Nested> nested;
  Companions companions() const {
    Companions c{&absmax, &quant_map, &quant_state};
    if (nested) {
      c.push_back(&nested->absmax);
      c.push_back(&nested->quant_map);
    }
    return c;
  }
};

// LLM.int8(): I8 [out, in] rows times the per-row SCB scale.
struct BnbInt8 {
  Companion scb;
  std::optional<Companion> weight_format;  // detection only; not needed to decode
  Companions companions() const {
    return weight_format ? Companions{&scb, &*weight_format} : Companions{&scb};
  }
};

// A scheme with companions is held on the heap (Boxed): most tensors of a
// model are Plain or GgufBlocks, and a Scheme holding a Bnb4 inline would
// make every TensorInfo carry room for five companions (about 500 bytes).
template <class T>
const T& unbox(const T& value) {
  return value;
}
template <class T>
const T& unbox(const Boxed<T>& value) {
  return *value;
}

// How T is held in a Scheme: inline when it has no companions.
template <class T>
using Held = std::conditional_t<std::is_same_v<T, Plain> || std::is_same_v<T, GgufBlocks>, T, Boxed<T>>;

}  // namespace scheme

using Scheme =
    std::variant<scheme::Plain, scheme::GgufBlocks, Boxed<scheme::Fp8>, Boxed<scheme::Gptq>,
                 Boxed<scheme::Awq>, Boxed<scheme::Bnb4>, Boxed<scheme::BnbInt8>>;

// Calls f with the scheme itself (a scheme::Gptq, never its box).
template <class F>
decltype(auto) visit_scheme(F&& f, const Scheme& s) {
  return std::visit([&](const auto& held) -> decltype(auto) { return f(scheme::unbox(held)); }, s);
}

// The variant index of scheme T, and whether `s` is one.
template <class T>
constexpr std::size_t scheme_index() {
  return []<std::size_t... I>(std::index_sequence<I...>) {
    std::size_t index = 0;
    ((std::is_same_v<std::variant_alternative_t<I, Scheme>, scheme::Held<T>> ? (index = I, true) : false) || ...);
    return index;
  }(std::make_index_sequence<std::variant_size_v<Scheme>>{});
}
template <class T>
bool holds(const Scheme& s) {
  return s.index() == scheme_index<T>();
}

// Every companion a scheme holds, in a fixed order per scheme.
inline std::vector<const Companion*> companions_of(const Scheme& s) {
  return visit_scheme([](const auto& v) { return v.companions(); }, s);
}
// The same, to renumber or move them.
inline std::vector<Companion*> companions_of(Scheme& s) {
  std::vector<Companion*> out;
  for (const Companion* c : companions_of(static_cast<const Scheme&>(s))) {
    out.push_back(const_cast<Companion*>(c));  // the scheme itself is not const
  }
  return out;
}

// A scheme other than Plain and GgufBlocks: decoded with companions.
inline bool has_companions(const Scheme& s) {
  return !std::holds_alternative<scheme::Plain>(s) &&
         !std::holds_alternative<scheme::GgufBlocks>(s);
}

}  // namespace mneme
