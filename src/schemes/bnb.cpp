// BitsAndBytes, as transformers serialises it.
//  4-bit (NF4/FP4): `<w>` U8 codes, `<w>.absmax`, `<w>.quant_map` (16 F32),
//    `<w>.quant_state.bitsandbytes__nf4|fp4` (U8 bytes of a JSON object:
//    quant_type, blocksize, shape, and with double quant nested_blocksize and
//    nested_offset), plus `<w>.nested_absmax` / `<w>.nested_quant_map` when
//    the absmax is itself quantized (U8). The JSON shape is the output shape.
//  LLM.int8(): `<base>.weight` I8 [out, in] with `<base>.SCB` F32 [out]
//    (and an optional `<base>.weight_format` marker, dropped).
#include <cmath>
#include <string>

#include <boost/json.hpp>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"
#include "src/formats/strict_json.hpp"
#include "src/schemes/detect_context.hpp"

namespace mneme {
namespace {

namespace json = boost::json;

// quant_state[key] as a positive integer; a scheme error on `tensor` otherwise.
std::uint64_t positive(const json::object& o, const char* key, const std::string& tensor) {
  const auto* v = o.if_contains(key);
  if (v && v->is_int64() && v->get_int64() > 0 && v->get_int64() <= (std::int64_t{1} << 40)) {
    return static_cast<std::uint64_t>(v->get_int64());
  }
  scheme_error(
      "bitsandbytes 4-bit", tensor,
      std::string("quant_state \"") + key + (v ? "\" is not a positive integer" : "\" is missing"));
}

bool detect_bnb4(DetectContext& ctx, TensorInfo& t) {
  if (!ctx.any_name_ends_with(".absmax")) {
    return false;
  }
  const TensorInfo* absmax = ctx.find(t.name + ".absmax");
  if (!absmax) {
    return false;
  }
  const auto bad = [&](const std::string& why) { scheme_error("bitsandbytes 4-bit", t.name, why); };
  const TensorInfo* qmap = ctx.find(t.name + ".quant_map");
  if (!qmap) {
    bad("companion .quant_map is missing");
  }
  std::string state_name;
  bool fp4 = false;
  for (const char* type : {"nf4", "fp4"}) {
    if (ctx.find(t.name + ".quant_state.bitsandbytes__" + type)) {
      if (!state_name.empty()) {
        bad("both an nf4 and an fp4 quant_state");
      }
      state_name = t.name + ".quant_state.bitsandbytes__" + type;
      fp4 = type[0] == 'f';
    }
  }
  if (state_name.empty()) {
    bad("companion .quant_state.bitsandbytes__nf4 (or __fp4) is missing: the shape cannot be "
        "known");
  }
  if (t.dtype != DType::u8) {
    bad("codes must be U8, not " + std::string(dtype_name(t.dtype)));
  }
  if (qmap->dtype != DType::f32 || qmap->element_count() != 16) {
    bad("quant_map must be 16 F32 values");
  }

  const TensorInfo& state = *ctx.find(state_name);
  if (state.dtype != DType::u8) {
    bad("quant_state must be U8 bytes of JSON");
  }
  const json::value doc =
      parse_strict_json(ctx.read_small(state, 64 << 10), printable(state_name), 8);
  if (!doc.is_object()) {
    bad("quant_state is not a JSON object");
  }
  const json::object& o = doc.get_object();
  if (const auto* qt = o.if_contains("quant_type")) {
    if (!qt->is_string() || qt->get_string() != (fp4 ? "fp4" : "nf4")) {
      bad("quant_state quant_type does not match its name");
    }
  }
  if (ctx.config.bnb_quant_type && *ctx.config.bnb_quant_type != (fp4 ? "fp4" : "nf4")) {
    bad("stored as " + std::string(fp4 ? "fp4" : "nf4") + " but " +
        ctx.config.bnb_quant_type.origin + " is \"" + printable(*ctx.config.bnb_quant_type, 16) +
        "\"");
  }
  const std::uint64_t block = positive(o, "blocksize", t.name);
  if (block % 2 != 0) {
    bad("block size " + std::to_string(block) + " is odd");
  }
  const auto* shape_v = o.if_contains("shape");
  if (!shape_v || !shape_v->is_array() || shape_v->get_array().empty() ||
      shape_v->get_array().size() > 16) {
    bad("quant_state shape is not a list of dimensions");
  }
  std::vector<std::uint64_t> shape;
  std::uint64_t total = 1;
  for (const auto& d : shape_v->get_array()) {
    if (!d.is_int64() || d.get_int64() < 0) {
      bad("quant_state shape has a non-integer dimension");
    }
    shape.push_back(static_cast<std::uint64_t>(d.get_int64()));
    total = checked_mul(total, shape.back(), "bitsandbytes shape");
  }
  if (ceil_div(total, 2) != t.data.length) {
    bad("quant_state shape holds " + std::to_string(total) + " values but the weight has " +
        std::to_string(t.data.length) + " bytes of two codes each");
  }
  const std::uint64_t blocks = ceil_div(total, block);

  scheme::Bnb4 q;
  q.fp4 = fp4;
  q.block_size = block;
  const TensorInfo* nested_absmax = ctx.find(t.name + ".nested_absmax");
  const TensorInfo* nested_map = ctx.find(t.name + ".nested_quant_map");
  if (nested_absmax || nested_map) {
    if (!nested_absmax || !nested_map) {
      bad("double quant needs both .nested_absmax and .nested_quant_map");
    }
    scheme::Bnb4::Nested& n = q.nested.emplace();
    if (absmax->dtype != DType::u8 || absmax->element_count() != blocks) {
      bad("double-quantized absmax must be " + std::to_string(blocks) + " U8 values");
    }
    if (nested_map->dtype != DType::f32 || nested_map->element_count() != 256) {
      bad("nested_quant_map must be 256 F32 values");
    }
    n.block_size = positive(o, "nested_blocksize", t.name);
    const auto* off = o.if_contains("nested_offset");
    if (!off || !off->is_number()) {
      bad("quant_state has no numeric \"nested_offset\"");
    }
    const double offset = off->to_number<double>();
    if (!std::isfinite(offset)) {
      bad("nested_offset is not finite");
    }
    n.offset = static_cast<float>(offset);
    if (nested_absmax->dtype != DType::f32 ||
        nested_absmax->element_count() != ceil_div(blocks, n.block_size)) {
      bad("nested_absmax must be " + std::to_string(ceil_div(blocks, n.block_size)) +
          " F32 values (" + std::to_string(blocks) + " blocks in nested blocks of " +
          std::to_string(n.block_size) + ")");
    }
  } else if (absmax->dtype != DType::f32 || absmax->element_count() != blocks) {
    bad("absmax must be " + std::to_string(blocks) + " F32 values (" + std::to_string(total) +
        " values in blocks of " + std::to_string(block) + ")");
  }
  q.absmax = ctx.claim(t.name, t.name + ".absmax");
  q.quant_map = ctx.claim(t.name, t.name + ".quant_map");
  q.quant_state = ctx.claim(t.name, state_name);
  if (q.nested) {
    q.nested->absmax = ctx.claim(t.name, t.name + ".nested_absmax");
    q.nested->quant_map = ctx.claim(t.name, t.name + ".nested_quant_map");
  }
  t.shape = std::move(shape);
  t.scheme = std::move(q);
  return true;
}

bool detect_bnb_int8(DetectContext& ctx, TensorInfo& t) {
  if (!t.name.ends_with(".weight") || !ctx.any_name_ends_with(".SCB")) {
    return false;
  }
  const std::string base = t.name.substr(0, t.name.size() - 7);
  const TensorInfo* scb = ctx.find(base + ".SCB");
  if (!scb) {
    return false;
  }
  const auto bad = [&](const std::string& why) { scheme_error("bitsandbytes int8", t.name, why); };
  if (t.dtype != DType::i8 || t.shape.size() != 2) {
    bad("weight must be a 2-D I8 tensor");
  }
  if (scb->dtype != DType::f32 || scb->shape.size() != 1 || scb->shape[0] != t.shape[0]) {
    bad("SCB must be F32 [" + std::to_string(t.shape[0]) + "]");
  }
  scheme::BnbInt8 q;
  q.scb = ctx.claim(t.name, base + ".SCB");
  if (ctx.find(base + ".weight_format")) {
    q.weight_format = ctx.claim(t.name, base + ".weight_format");
  }
  t.scheme = std::move(q);
  return true;
}

}  // namespace

bool detect_bnb(DetectContext& ctx, TensorInfo& t) {
  return detect_bnb4(ctx, t) || detect_bnb_int8(ctx, t);
}

}  // namespace mneme
