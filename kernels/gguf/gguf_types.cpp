// The ggml type table: block geometry and names by type id.
#include <array>

#include "kernels/gguf/gguf_kernels.hpp"

namespace mneme::kernels::gguf {
namespace {

struct TypeRow {
  std::string_view name;
  BlockInfo info;
  bool quantized;
};

// Indexed by ggml type id; an empty name marks an id ggml no longer defines.
constexpr std::array<TypeRow, 40> kTypes = [] {
  std::array<TypeRow, 40> t{};
  auto set = [&t](GgmlType id, std::string_view name, std::uint32_t elements, std::uint32_t bytes,
                  bool quantized) {
    t[static_cast<std::size_t>(id)] = TypeRow{name, BlockInfo{elements, bytes}, quantized};
  };
  set(GgmlType::F32, "F32", 1, 4, false);
  set(GgmlType::F16, "F16", 1, 2, false);
  set(GgmlType::Q4_0, "Q4_0", 32, 18, true);
  set(GgmlType::Q4_1, "Q4_1", 32, 20, true);
  set(GgmlType::Q5_0, "Q5_0", 32, 22, true);
  set(GgmlType::Q5_1, "Q5_1", 32, 24, true);
  set(GgmlType::Q8_0, "Q8_0", 32, 34, true);
  set(GgmlType::Q8_1, "Q8_1", 32, 36, true);
  set(GgmlType::Q2_K, "Q2_K", 256, 84, true);
  set(GgmlType::Q3_K, "Q3_K", 256, 110, true);
  set(GgmlType::Q4_K, "Q4_K", 256, 144, true);
  set(GgmlType::Q5_K, "Q5_K", 256, 176, true);
  set(GgmlType::Q6_K, "Q6_K", 256, 210, true);
  set(GgmlType::Q8_K, "Q8_K", 256, 292, true);
  set(GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66, true);
  set(GgmlType::IQ2_XS, "IQ2_XS", 256, 74, true);
  set(GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98, true);
  set(GgmlType::IQ1_S, "IQ1_S", 256, 50, true);
  set(GgmlType::IQ4_NL, "IQ4_NL", 32, 18, true);
  set(GgmlType::IQ3_S, "IQ3_S", 256, 110, true);
  set(GgmlType::IQ2_S, "IQ2_S", 256, 82, true);
  set(GgmlType::IQ4_XS, "IQ4_XS", 256, 136, true);
  set(GgmlType::I8, "I8", 1, 1, false);
  set(GgmlType::I16, "I16", 1, 2, false);
  set(GgmlType::I32, "I32", 1, 4, false);
  set(GgmlType::I64, "I64", 1, 8, false);
  set(GgmlType::F64, "F64", 1, 8, false);
  set(GgmlType::IQ1_M, "IQ1_M", 256, 56, true);
  set(GgmlType::BF16, "BF16", 1, 2, false);
  set(GgmlType::TQ1_0, "TQ1_0", 256, 54, true);
  set(GgmlType::TQ2_0, "TQ2_0", 256, 66, true);
  set(GgmlType::MXFP4, "MXFP4", 32, 17, true);
  return t;
}();

const TypeRow* row(std::uint32_t id) noexcept {
  if (id >= kTypes.size() || kTypes[id].name.empty()) return nullptr;
  return &kTypes[id];
}

}  // namespace

std::optional<BlockInfo> block_info(std::uint32_t type_id) noexcept {
  const TypeRow* r = row(type_id);
  if (r == nullptr) return std::nullopt;
  return r->info;
}

std::string_view type_name(std::uint32_t type_id) noexcept {
  const TypeRow* r = row(type_id);
  return r == nullptr ? std::string_view{} : r->name;
}

bool is_quantized(std::uint32_t type_id) noexcept {
  const TypeRow* r = row(type_id);
  return r != nullptr && r->quantized;
}

}  // namespace mneme::kernels::gguf
