// What a model says about its quantization outside the tensors: config.json's
// `quantization_config`, AutoGPTQ/GPTQModel's quantize_config.json, and the
// safetensors `__metadata__` keys gptq_bits / gptq_group_size. Each setting
// remembers where it came from; two places giving different values is an
// error that names both, never a silent pick.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "mneme/catalog.hpp"

namespace mneme {

template <class T>
struct Setting {
  std::optional<T> value;
  std::string origin;  // "config.json quantization_config.bits", ...
  explicit operator bool() const { return value.has_value(); }
  const T& operator*() const { return *value; }
};

struct QuantConfig {
  Setting<std::string> method;       // quant_method: gptq, awq, bitsandbytes, fp8, ...
  Setting<std::uint32_t> bits;       // bits / w_bit / gptq_bits
  Setting<std::int64_t> group_size;  // group_size / q_group_size / gptq_group_size; -1 = whole
  Setting<bool> desc_act;            // GPTQ act-order: g_idx required
  Setting<std::string> checkpoint_format;  // "gptq" (zeros stored - 1) or "gptq_v2"
  Setting<std::pair<std::uint32_t, std::uint32_t>> weight_block_size;  // FP8 block scales
  Setting<std::string> fmt;                                            // FP8 "e4m3" / "e5m2"
  Setting<std::string> awq_version;     // AutoAWQ kernel layout: only "gemm" is packed as we read
  Setting<bool> zero_point;             // AWQ without zero points is not supported
  Setting<std::string> bnb_quant_type;  // bnb_4bit_quant_type: nf4 / fp4
};

// Throws Error{parse} on a value of the wrong type or range, or on two sources
// that disagree. Any argument may be absent.
QuantConfig read_quant_config(const boost::json::value* config_json,
                              const boost::json::value* quantize_config_json,
                              const std::vector<MetadataEntry>& metadata);

}  // namespace mneme
