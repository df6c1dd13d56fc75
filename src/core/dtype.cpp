#include "mneme/dtype.hpp"

#include <array>

namespace mneme {
namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  std::size_t size;
  bool is_float;
};

constexpr std::array<DTypeInfo, 15> kInfo{{
    {DType::bool_, "BOOL", 1, false},
    {DType::u8, "U8", 1, false},
    {DType::i8, "I8", 1, false},
    {DType::u16, "U16", 2, false},
    {DType::i16, "I16", 2, false},
    {DType::u32, "U32", 4, false},
    {DType::i32, "I32", 4, false},
    {DType::u64, "U64", 8, false},
    {DType::i64, "I64", 8, false},
    {DType::f16, "F16", 2, true},
    {DType::bf16, "BF16", 2, true},
    {DType::f32, "F32", 4, true},
    {DType::f64, "F64", 8, true},
    {DType::f8_e4m3, "F8_E4M3", 1, true},
    {DType::f8_e5m2, "F8_E5M2", 1, true},
}};

const DTypeInfo& info(DType t) noexcept { return kInfo[static_cast<std::size_t>(t)]; }

}  // namespace

std::size_t dtype_size(DType t) noexcept { return info(t).size; }
bool dtype_is_float(DType t) noexcept { return info(t).is_float; }
std::string_view dtype_name(DType t) noexcept { return info(t).name; }

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const auto& i : kInfo) {
    if (i.name == name) return i.type;
  }
  return std::nullopt;
}

std::optional<OutType> out_type_from_name(std::string_view name) noexcept {
  if (name == "bf16" || name == "BF16") return OutType::bf16;
  if (name == "f16" || name == "F16") return OutType::f16;
  if (name == "f32" || name == "F32") return OutType::f32;
  return std::nullopt;
}

}  // namespace mneme
