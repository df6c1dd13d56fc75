// GPTQ and AWQ: a `<base>.qweight` of I32 words with `<base>.scales` and
// `<base>.qzeros` (and GPTQ's optional `<base>.g_idx`). The two pack along
// different axes, which their shapes tell apart:
//   GPTQ  qweight [in / pack, out]   scales [groups, out]   qzeros [groups, out / pack]
//   AWQ   qweight [in, out / 8]      scales [groups, out]   qzeros [groups, out / 8]
// Bits follow from the shapes (pack = out / qzeros columns); group size from
// the configuration or, when none is given, from in / groups where that is
// exact. The decoded tensor is `<base>.weight`, [out, in] like nn.Linear's.
#include <string>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/schemes/detect_context.hpp"

namespace mneme {
namespace {

std::string dims(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return s + "]";
}

bool float_scale(DType d) {
  return d == DType::f16 || d == DType::bf16 || d == DType::f32;
}

}  // namespace

bool detect_gptq_awq(DetectContext& ctx, TensorInfo& t) {
  if (!t.name.ends_with(".qweight")) {
    return false;
  }
  const std::string base = t.name.substr(0, t.name.size() - 8);
  const QuantConfig& cfg = ctx.config;
  const std::string label = cfg.method && *cfg.method == "awq" ? "awq" : "gptq";
  const auto bad = [&](const std::string& why) { scheme_error(label, t.name, why); };

  const TensorInfo* scales = ctx.find(base + ".scales");
  const TensorInfo* qzeros = ctx.find(base + ".qzeros");
  if (!scales) {
    bad("companion " + printable(base) + ".scales is missing");
  }
  if (!qzeros) {
    bad("companion " + printable(base) + ".qzeros is missing");
  }
  if (t.dtype != DType::i32 || t.shape.size() != 2) {
    bad("qweight must be a 2-D I32 tensor, not " + std::string(dtype_name(t.dtype)) + " " +
        dims(t.shape));
  }
  if (qzeros->dtype != DType::i32 || qzeros->shape.size() != 2) {
    bad("qzeros must be a 2-D I32 tensor");
  }
  if (!float_scale(scales->dtype) || scales->shape.size() != 2) {
    bad("scales must be a 2-D F16/BF16/F32 tensor");
  }
  const std::uint64_t out = scales->shape[1], groups = scales->shape[0];
  if (out == 0 || groups == 0 || t.shape[0] == 0 || t.shape[1] == 0) {
    bad("empty quantized weight");
  }
  if (qzeros->shape[0] != groups) {
    bad("qzeros has " + std::to_string(qzeros->shape[0]) + " groups, scales " +
        std::to_string(groups));
  }

  const bool gptq = t.shape[1] == out;
  const bool awq = !gptq && t.shape[1] * 8 == out;
  if (!gptq && !awq) {
    bad("qweight " + dims(t.shape) + " and scales " + dims(scales->shape) +
        " fit neither GPTQ nor AWQ 4-bit packing");
  }
  if (cfg.method && ((gptq && *cfg.method == "awq") || (awq && *cfg.method == "gptq"))) {
    bad("packed as " + std::string(gptq ? "GPTQ" : "AWQ") + " but " + cfg.method.origin + " is \"" +
        *cfg.method + "\"");
  }
  if (qzeros->shape[1] == 0 || out % qzeros->shape[1] != 0) {
    bad("qzeros " + dims(qzeros->shape) + " does not pack " + std::to_string(out) +
        " columns in whole words");
  }
  const std::uint64_t pack = out / qzeros->shape[1];
  if (pack != 8 && pack != 4) {
    fail(ErrorKind::unsupported, std::string(gptq ? "gptq" : "awq") + " tensor \"" +
                                     printable(t.name) + "\": " + std::to_string(pack) +
                                     " values per word (only 4- and 8-bit are decoded)");
  }
  const std::uint32_t bits = static_cast<std::uint32_t>(32 / pack);
  if (cfg.bits && *cfg.bits != bits) {
    const auto kind = *cfg.bits == 4 || *cfg.bits == 8 ? ErrorKind::parse : ErrorKind::unsupported;
    fail(kind, std::string(gptq ? "gptq" : "awq") + " tensor \"" + printable(t.name) +
                   "\": packed as " + std::to_string(bits) + "-bit but " + cfg.bits.origin +
                   " is " + std::to_string(*cfg.bits));
  }
  if (awq && bits != 4) {
    fail(ErrorKind::unsupported,
         "awq tensor \"" + printable(t.name) + "\": only 4-bit GEMM packing is decoded");
  }
  const std::uint64_t in = gptq ? checked_mul(t.shape[0], pack, "in_features") : t.shape[0];

  // Rows per group: configured, or in / groups when exact.
  std::uint64_t group = 0;
  if (cfg.group_size) {
    group = *cfg.group_size == -1 ? in : static_cast<std::uint64_t>(*cfg.group_size);
    if (ceil_div(in, group) != groups) {
      bad(std::to_string(groups) + " scale rows, but " + cfg.group_size.origin + " " +
          std::to_string(*cfg.group_size) + " makes " + std::to_string(ceil_div(in, group)) +
          " groups of " + std::to_string(in) + " rows");
    }
  } else if (in % groups == 0) {
    group = in / groups;
  }

  const std::string weight = base + ".weight";
  if (gptq) {
    scheme::Gptq q;
    q.bits = bits;
    q.group_size = group;
    if (cfg.checkpoint_format) {
      const std::string& f = *cfg.checkpoint_format;
      if (f == "gptq_v2") {
        q.v2 = true;
      } else if (f != "gptq") {
        fail(ErrorKind::unsupported, "gptq tensor \"" + printable(t.name) +
                                         "\": " + cfg.checkpoint_format.origin + " \"" +
                                         printable(f, 32) + "\" is not gptq or gptq_v2");
      }
    }
    const TensorInfo* g_idx = ctx.find(base + ".g_idx");
    if (g_idx &&
        (g_idx->dtype != DType::i32 || g_idx->shape.size() != 1 || g_idx->shape[0] != in)) {
      bad("g_idx must be I32 [" + std::to_string(in) + "], not " +
          std::string(dtype_name(g_idx->dtype)) + " " + dims(g_idx->shape));
    }
    if (!g_idx && cfg.desc_act && *cfg.desc_act) {
      bad(cfg.desc_act.origin + " is true but " + printable(base) + ".g_idx is missing");
    }
    if (!g_idx && (group == 0 || in % group != 0)) {
      bad("group size cannot be known: " + std::to_string(groups) + " groups of " +
          std::to_string(in) + " rows (set group_size in quantization_config)");
    }
    if (in % pack != 0 || out % pack != 0) {
      bad("shape [" + std::to_string(out) + ", " + std::to_string(in) + "] not a multiple of " +
          std::to_string(pack));
    }
    q.scales = ctx.claim(weight, base + ".scales");
    q.qzeros = ctx.claim(weight, base + ".qzeros");
    if (g_idx) {
      q.g_idx = ctx.claim(weight, base + ".g_idx");
    }
    t.scheme = std::move(q);
  } else {
    scheme::Awq q;
    q.bits = bits;
    q.group_size = group;
    if (cfg.awq_version && *cfg.awq_version != "gemm") {
      fail(ErrorKind::unsupported,
           "awq tensor \"" + printable(t.name) + "\": " + cfg.awq_version.origin + " \"" +
               printable(*cfg.awq_version, 32) + "\" (only GEMM packing is decoded)");
    }
    if (cfg.zero_point && !*cfg.zero_point) {
      fail(ErrorKind::unsupported,
           "awq tensor \"" + printable(t.name) + "\": AWQ without zero points");
    }
    if (group == 0 || in % group != 0) {
      bad("group size cannot be known: " + std::to_string(groups) + " groups of " +
          std::to_string(in) + " rows");
    }
    q.scales = ctx.claim(weight, base + ".scales");
    q.qzeros = ctx.claim(weight, base + ".qzeros");
    t.scheme = std::move(q);
  }
  t.name = weight;
  t.shape = {out, in};
  return true;
}

}  // namespace mneme
