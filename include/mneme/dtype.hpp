// Element types of unquantized tensors, as they appear in files and outputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mneme {

enum class DType : std::uint8_t {
  bool_,
  u8, i8, u16, i16, u32, i32, u64, i64,
  f16, bf16, f32, f64,
  f8_e4m3, f8_e5m2,
};

// Bytes per element (all plain dtypes are whole bytes).
std::size_t dtype_size(DType t) noexcept;
bool dtype_is_float(DType t) noexcept;

// safetensors spelling: "F32", "BF16", "F8_E4M3", "BOOL", ...
std::string_view dtype_name(DType t) noexcept;
std::optional<DType> dtype_from_name(std::string_view name) noexcept;

// The float types mneme decodes and converts into.
enum class OutType : std::uint8_t { f32, f16, bf16 };

constexpr DType to_dtype(OutType t) noexcept {
  return t == OutType::f32 ? DType::f32 : t == OutType::f16 ? DType::f16 : DType::bf16;
}
constexpr std::size_t out_size(OutType t) noexcept { return t == OutType::f32 ? 4 : 2; }
std::optional<OutType> out_type_from_name(std::string_view name) noexcept;  // "bf16", "f16", "f32"

}  // namespace mneme
