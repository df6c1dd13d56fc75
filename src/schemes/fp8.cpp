// Scaled FP8 (E4M3FN / E5M2): a `<name>_scale_inv` or `<name>_scale`
// companion per weight, per-tensor, per-channel or in 2-D blocks (128x128
// unless config.json's weight_block_size says otherwise).
#include <cstdint>
#include <tuple>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/schemes/detect_context.hpp"

namespace mneme {
namespace {

scheme::Fp8 classify(const TensorInfo& w, const TensorInfo& scale, const QuantConfig& config) {
  const auto bad = [&](const std::string& why) { scheme_error("fp8", w.name, why); };
  if (scale.dtype != DType::f32 && scale.dtype != DType::bf16 && scale.dtype != DType::f16) {
    bad("scale " + printable(scale.name) + " has dtype " + std::string(dtype_name(scale.dtype)));
  }
  if (w.shape.size() != 2) {
    bad("scaled FP8 weights must be 2-D");
  }
  const std::uint64_t rows = w.shape[0], cols = w.shape[1];
  const std::uint64_t n = scale.element_count();
  scheme::Fp8 q;
  if (n == 1) {
    q.scaling = scheme::Fp8::Scaling::per_tensor;
  } else if ((scale.shape.size() == 1 && scale.shape[0] == rows) ||
             (scale.shape.size() == 2 && scale.shape[0] == rows && scale.shape[1] == 1)) {
    q.scaling = scheme::Fp8::Scaling::per_channel;
  } else if (scale.shape.size() == 2) {
    q.scaling = scheme::Fp8::Scaling::block;
    std::uint64_t br = 128, bc = 128;
    if (config.weight_block_size) {
      std::tie(br, bc) = *config.weight_block_size;
    }
    if (ceil_div(rows, br) != scale.shape[0] || ceil_div(cols, bc) != scale.shape[1]) {
      bad("scale grid [" + std::to_string(scale.shape[0]) + ", " + std::to_string(scale.shape[1]) +
          "] does not tile [" + std::to_string(rows) + ", " + std::to_string(cols) + "] in " +
          std::to_string(br) + "x" + std::to_string(bc) + " blocks" +
          (config.weight_block_size ? " (" + config.weight_block_size.origin + ")"
                                    : "; set weight_block_size in config.json"));
    }
    q.block_rows = static_cast<std::uint32_t>(br);
    q.block_cols = static_cast<std::uint32_t>(bc);
  } else {
    bad("scale shape matches no FP8 scaling (per-tensor, per-channel, block)");
  }
  if (config.fmt) {
    const bool e5m2 = w.dtype == DType::f8_e5m2;
    const std::string& f = *config.fmt;
    if ((f == "e4m3" && e5m2) || (f == "e5m2" && !e5m2)) {
      bad("stored as " + std::string(dtype_name(w.dtype)) + " but " + config.fmt.origin + " is \"" +
          printable(f, 16) + "\"");
    }
  }
  return q;
}

}  // namespace

bool detect_fp8(DetectContext& ctx, TensorInfo& t) {
  if (t.dtype != DType::f8_e4m3 && t.dtype != DType::f8_e5m2) {
    return false;
  }
  for (const char* suffix : {"_scale_inv", "_scale"}) {
    const std::string name = t.name + suffix;
    const TensorInfo* scale = ctx.find(name);
    if (!scale) {
      continue;
    }
    scheme::Fp8 q = classify(t, *scale, ctx.config);
    q.scale = ctx.claim(t.name, name);
    t.scheme = std::move(q);
    return true;
  }
  return false;
}

}  // namespace mneme
