// The ggml type table: every fact about a GGUF tensor type in one place,
// header-only, so that parsers use it without linking any kernel.
// Everything per type (the enum, names, block geometry, the block struct size
// checks in gguf_blocks.hpp, the scalar and Highway dispatch) is generated from
// the two lists below (ggml's `type_traits` is the model).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mneme::kernels::gguf {

// Types stored as plain elements: X(name, ggml id, bytes per element).
#define MNEME_GGUF_PLAIN_TYPES(X) \
  X(F32, 0, 4)                    \
  X(F16, 1, 2)                    \
  X(I8, 24, 1)                    \
  X(I16, 25, 2)                   \
  X(I32, 26, 4)                   \
  X(I64, 27, 8)                   \
  X(F64, 28, 8)                   \
  X(BF16, 30, 2)

// Block-quantized types: X(name, ggml id, elements per block, bytes per
// block). Each has a block struct Block<name> (gguf_blocks.hpp) and a scalar
// decoder decode_<name> (gguf_scalar.cpp). Ids 4, 5, 31-33 and 36-38 were
// removed from ggml and are unknown here.
#define MNEME_GGUF_BLOCK_TYPES(X) \
  X(Q4_0, 2, 32, 18)              \
  X(Q4_1, 3, 32, 20)              \
  X(Q5_0, 6, 32, 22)              \
  X(Q5_1, 7, 32, 24)              \
  X(Q8_0, 8, 32, 34)              \
  X(Q8_1, 9, 32, 36)              \
  X(Q2_K, 10, 256, 84)            \
  X(Q3_K, 11, 256, 110)           \
  X(Q4_K, 12, 256, 144)           \
  X(Q5_K, 13, 256, 176)           \
  X(Q6_K, 14, 256, 210)           \
  X(Q8_K, 15, 256, 292)           \
  X(IQ2_XXS, 16, 256, 66)         \
  X(IQ2_XS, 17, 256, 74)          \
  X(IQ3_XXS, 18, 256, 98)         \
  X(IQ1_S, 19, 256, 50)           \
  X(IQ4_NL, 20, 32, 18)           \
  X(IQ3_S, 21, 256, 110)          \
  X(IQ2_S, 22, 256, 82)           \
  X(IQ4_XS, 23, 256, 136)         \
  X(IQ1_M, 29, 256, 56)           \
  X(TQ1_0, 34, 256, 54)           \
  X(TQ2_0, 35, 256, 66)           \
  X(MXFP4, 39, 32, 17)

// ggml's type ids, as stored in GGUF tensor infos.
enum class GgmlType : std::uint32_t {
#define MNEME_GGUF_ENUM(name, id, ...) name = id,
  MNEME_GGUF_PLAIN_TYPES(MNEME_GGUF_ENUM) MNEME_GGUF_BLOCK_TYPES(MNEME_GGUF_ENUM)
#undef MNEME_GGUF_ENUM
};

// One block of a type: `elements` values stored in `bytes` bytes. Plain
// (scalar) types are blocks of one element.
struct BlockInfo {
  std::uint32_t elements;
  std::uint32_t bytes;
};

namespace detail {

struct TypeRow {
  std::string_view name;
  BlockInfo info;
  bool quantized;
};

// Indexed by ggml type id; an empty name marks an id ggml does not define.
inline constexpr std::array<TypeRow, 40> kTypes = [] {
  std::array<TypeRow, 40> t{};
#define MNEME_GGUF_PLAIN_ROW(name, id, bytes) t[id] = TypeRow{#name, BlockInfo{1, bytes}, false};
#define MNEME_GGUF_BLOCK_ROW(name, id, elements, bytes) \
  t[id] = TypeRow{#name, BlockInfo{elements, bytes}, true};
  MNEME_GGUF_PLAIN_TYPES(MNEME_GGUF_PLAIN_ROW)
  MNEME_GGUF_BLOCK_TYPES(MNEME_GGUF_BLOCK_ROW)
#undef MNEME_GGUF_PLAIN_ROW
#undef MNEME_GGUF_BLOCK_ROW
  return t;
}();

constexpr const TypeRow* type_row(std::uint32_t id) noexcept {
  return id < kTypes.size() && !kTypes[id].name.empty() ? &kTypes[id] : nullptr;
}

}  // namespace detail

// nullopt for ids ggml does not (or no longer) define.
constexpr std::optional<BlockInfo> block_info(std::uint32_t type_id) noexcept {
  const auto* r = detail::type_row(type_id);
  return r ? std::optional<BlockInfo>(r->info) : std::nullopt;
}

// ggml's spelling ("Q4_K", "IQ2_XXS", "BF16", ...); empty for unknown ids.
constexpr std::string_view type_name(std::uint32_t type_id) noexcept {
  const auto* r = detail::type_row(type_id);
  return r ? r->name : std::string_view{};
}

// True for the block-quantized types the kernels decode (everything but
// F32, F16, BF16, F64 and the integer types, which are converted elsewhere).
constexpr bool is_quantized(std::uint32_t type_id) noexcept {
  const auto* r = detail::type_row(type_id);
  return r && r->quantized;
}

}  // namespace mneme::kernels::gguf
