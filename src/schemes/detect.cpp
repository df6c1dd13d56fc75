#include "src/schemes/detect.hpp"

#include <unordered_map>
#include <unordered_set>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"

namespace mneme {
namespace {

namespace json = boost::json;

[[noreturn]] void bad(const std::string& tensor, const std::string& why) {
  fail(ErrorKind::parse, "fp8 tensor \"" + printable(tensor) + "\": " + why);
}

// quantization_config.weight_block_size, when config.json gives one.
std::optional<std::pair<std::uint32_t, std::uint32_t>> config_block_size(const json::value* config) {
  if (!config || !config->is_object()) return std::nullopt;
  const auto* qc = config->get_object().if_contains("quantization_config");
  if (!qc || !qc->is_object()) return std::nullopt;
  const auto* bs = qc->get_object().if_contains("weight_block_size");
  if (!bs) return std::nullopt;
  if (!bs->is_array() || bs->get_array().size() != 2 || !bs->get_array()[0].is_int64() ||
      !bs->get_array()[1].is_int64()) {
    fail(ErrorKind::parse, "config.json: weight_block_size is not [rows, cols]");
  }
  const auto r = bs->get_array()[0].get_int64(), c = bs->get_array()[1].get_int64();
  if (r <= 0 || c <= 0 || r > (1 << 20) || c > (1 << 20)) fail(ErrorKind::parse, "config.json: weight_block_size out of range");
  return std::pair{static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(c)};
}

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return a / b + (a % b != 0); }

void attach_fp8_scale(TensorInfo& w, const TensorInfo& scale,
                      const std::optional<std::pair<std::uint32_t, std::uint32_t>>& configured) {
  if (scale.dtype != DType::f32 && scale.dtype != DType::bf16 && scale.dtype != DType::f16) {
    bad(w.name, "scale " + printable(scale.name) + " has dtype " + std::string(dtype_name(scale.dtype)));
  }
  if (w.shape.size() != 2) bad(w.name, "scaled FP8 weights must be 2-D");
  const std::uint64_t rows = w.shape[0], cols = w.shape[1];
  const std::uint64_t n = scale.element_count();
  QuantInfo& q = w.quant;
  if (n == 1) {
    q.fp8_scaling = QuantInfo::Fp8Scaling::per_tensor;
  } else if ((scale.shape.size() == 1 && scale.shape[0] == rows) ||
             (scale.shape.size() == 2 && scale.shape[0] == rows && scale.shape[1] == 1)) {
    q.fp8_scaling = QuantInfo::Fp8Scaling::per_channel;
  } else if (scale.shape.size() == 2) {
    q.fp8_scaling = QuantInfo::Fp8Scaling::block;
    std::uint64_t br = 128, bc = 128;
    if (configured) {
      br = configured->first;
      bc = configured->second;
    }
    if (ceil_div(rows, br) != scale.shape[0] || ceil_div(cols, bc) != scale.shape[1]) {
      bad(w.name, "scale grid [" + std::to_string(scale.shape[0]) + ", " + std::to_string(scale.shape[1]) +
                      "] does not tile [" + std::to_string(rows) + ", " + std::to_string(cols) + "] in " +
                      std::to_string(br) + "x" + std::to_string(bc) + " blocks" +
                      (configured ? " (weight_block_size from config.json)" : "; set weight_block_size in config.json"));
    }
    q.block_rows = static_cast<std::uint32_t>(br);
    q.block_cols = static_cast<std::uint32_t>(bc);
  } else {
    bad(w.name, "scale shape matches no FP8 scaling (per-tensor, per-channel, block)");
  }
  w.encoding = Encoding::fp8_scaled;
  q.companions.push_back(Companion{"scale", scale.name, scale.dtype, scale.shape, scale.data});
}

}  // namespace

void detect_schemes(Catalog& catalog, const json::value* config) {
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < catalog.tensors.size(); ++i) by_name.emplace(catalog.tensors[i].name, i);
  const auto block = config_block_size(config);

  std::unordered_set<std::size_t> companions;
  for (auto& t : catalog.tensors) {
    if (t.encoding != Encoding::plain || (t.dtype != DType::f8_e4m3 && t.dtype != DType::f8_e5m2)) continue;
    for (const char* suffix : {"_scale_inv", "_scale"}) {
      const auto it = by_name.find(t.name + suffix);
      if (it == by_name.end()) continue;
      attach_fp8_scale(t, catalog.tensors[it->second], block);
      companions.insert(it->second);
      break;
    }
  }
  if (companions.empty()) return;
  std::vector<TensorInfo> kept;
  kept.reserve(catalog.tensors.size() - companions.size());
  for (std::size_t i = 0; i < catalog.tensors.size(); ++i) {
    if (!companions.count(i)) kept.push_back(std::move(catalog.tensors[i]));
  }
  catalog.tensors = std::move(kept);
}

std::string scheme_description(const TensorInfo& t) {
  if (t.encoding != Encoding::fp8_scaled) return "";
  std::string s = t.dtype == DType::f8_e5m2 ? "fp8 e5m2 " : "fp8 e4m3 ";
  switch (t.quant.fp8_scaling) {
    case QuantInfo::Fp8Scaling::per_tensor: return s + "per-tensor";
    case QuantInfo::Fp8Scaling::per_channel: return s + "per-channel";
    case QuantInfo::Fp8Scaling::block:
      return s + "block " + std::to_string(t.quant.block_rows) + "x" + std::to_string(t.quant.block_cols);
  }
  return s;
}

}  // namespace mneme
