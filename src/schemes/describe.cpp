// What users read about a tensor's scheme (inspect, Python's ModelInfo):
// every visit ends in a static_assert, so a new scheme without its words does
// not compile.
#include <string>
#include <type_traits>
#include <variant>

#include "kernels/gguf/gguf_types.hpp"
#include "mneme/formats.hpp"

namespace mneme {

namespace gg = kernels::gguf;

std::string tensor_type_name(const TensorInfo& t) {
  return visit_scheme(
      [&](const auto& q) -> std::string {
        using T = std::decay_t<decltype(q)>;
        if constexpr (std::is_same_v<T, scheme::GgufBlocks>) {
          return std::string(gg::type_name(q.type));
        } else if constexpr (std::is_same_v<T, scheme::Fp8>) {
          return std::string(dtype_name(t.dtype)) + "+scale";
        } else if constexpr (std::is_same_v<T, scheme::Gptq>) {
          return "GPTQ" + std::to_string(q.bits);
        } else if constexpr (std::is_same_v<T, scheme::Awq>) {
          return "AWQ" + std::to_string(q.bits);
        } else if constexpr (std::is_same_v<T, scheme::Bnb4>) {
          return q.fp4 ? "FP4" : "NF4";
        } else if constexpr (std::is_same_v<T, scheme::BnbInt8>) {
          return "INT8+SCB";
        } else {
          static_assert(std::is_same_v<T, scheme::Plain>, "a scheme without a type name");
          return std::string(dtype_name(t.dtype));
        }
      },
      t.scheme);
}

std::string scheme_description(const TensorInfo& t) {
  const auto group = [&](std::uint64_t g) {
    return g == t.shape.at(1) ? std::string("per-row") : "group " + std::to_string(g);
  };
  return visit_scheme(
      [&](const auto& q) -> std::string {
        using T = std::decay_t<decltype(q)>;
        if constexpr (std::is_same_v<T, scheme::Fp8>) {
          const std::string s = t.dtype == DType::f8_e5m2 ? "fp8 e5m2 " : "fp8 e4m3 ";
          switch (q.scaling) {
            case scheme::Fp8::Scaling::per_tensor:
              return s + "per-tensor";
            case scheme::Fp8::Scaling::per_channel:
              return s + "per-channel";
            case scheme::Fp8::Scaling::block:
              return s + "block " + std::to_string(q.block_rows) + "x" +
                     std::to_string(q.block_cols);
          }
          return s;
        } else if constexpr (std::is_same_v<T, scheme::Gptq>) {
          return "gptq " + std::to_string(q.bits) + "-bit " + group(q.group_size) +
                 (q.g_idx ? " g_idx" : "") + (q.v2 ? " v2" : "");
        } else if constexpr (std::is_same_v<T, scheme::Awq>) {
          return "awq " + std::to_string(q.bits) + "-bit " + group(q.group_size);
        } else if constexpr (std::is_same_v<T, scheme::Bnb4>) {
          return std::string("bnb ") + (q.fp4 ? "fp4" : "nf4") + " block " +
                 std::to_string(q.block_size) + (q.nested ? " double-quant" : "");
        } else if constexpr (std::is_same_v<T, scheme::BnbInt8>) {
          return "bnb int8";
        } else {
          static_assert(std::is_same_v<T, scheme::Plain> || std::is_same_v<T, scheme::GgufBlocks>,
                        "a scheme without a description");
          return "";
        }
      },
      t.scheme);
}

}  // namespace mneme
