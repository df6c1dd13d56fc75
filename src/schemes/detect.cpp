// The detection pass: every tensor is offered to each scheme family's
// detector; what a weight claims as companions leaves the output; then the
// configuration's declared method must agree with what the tensors show.
#include "src/schemes/detect.hpp"

#include <algorithm>
#include <type_traits>
#include <unordered_set>
#include <variant>

#include "mneme/error.hpp"
#include "src/schemes/detect_context.hpp"

namespace mneme {

DetectContext::DetectContext(Catalog& c, const QuantConfig& q)
    : catalog(c), config(q), companion_(c.tensors.size(), false) {}

const TensorInfo* DetectContext::find(const std::string& name) const {
  // Built before any detector renames a tensor: each looks up its companions
  // before it rewrites its weight.
  if (!indexed_) {
    by_name_.reserve(catalog.tensors.size());
    for (std::size_t i = 0; i < catalog.tensors.size(); ++i) {
      by_name_.emplace(catalog.tensors[i].name, i);
    }
    indexed_ = true;
  }
  const auto it = by_name_.find(name);
  if (it == by_name_.end() || companion_[it->second]) {
    return nullptr;
  }
  return &catalog.tensors[it->second];
}

bool DetectContext::any_name_ends_with(std::string_view suffix) const {
  for (const auto& [s, any] : suffixes_) {
    if (s == suffix) return any;
  }
  const bool any = std::any_of(catalog.tensors.begin(), catalog.tensors.end(),
                               [&](const TensorInfo& t) { return t.name.ends_with(suffix); });
  suffixes_.emplace_back(suffix, any);
  return any;
}

Companion DetectContext::claim(const std::string& weight, const std::string& name) {
  const std::size_t i = by_name_.at(name);
  if (companion_[i]) {
    scheme_error("quantized", weight, "companion " + printable(name) + " serves another weight");
  }
  const TensorInfo& c = catalog.tensors[i];
  if (!c.layout.trivial() || !std::holds_alternative<scheme::Plain>(c.scheme)) {
    scheme_error("quantized", weight, "companion " + printable(name) + " is not a plain tensor");
  }
  companion_[i] = true;
  claims_.push_back(i);
  return Companion{c.name, c.dtype, c.shape, c.data};
}

std::string DetectContext::read_small(const TensorInfo& t, std::uint64_t cap) const {
  if (t.data.length > cap) {
    fail(ErrorKind::limit, "tensor \"" + printable(t.name) + "\" is " +
                               std::to_string(t.data.length) + " bytes, above the " +
                               std::to_string(cap) + " a quantization state may take");
  }
  Source& src = *catalog.sources.at(t.data.source);
  if (src.sequential()) {
    fail(ErrorKind::unsupported,
         "tensor \"" + printable(t.name) +
             "\": reading a quantization state needs a random-access source");
  }
  std::string bytes(t.data.length, '\0');
  src.read_at(t.data.offset, std::as_writable_bytes(std::span(bytes)));
  return bytes;
}

void DetectContext::release_claims() {
  for (std::size_t i : claims_) {
    companion_[i] = false;
  }
  claims_.clear();
}

void DetectContext::remove_companions() {
  // In place, in order: no second tensor list.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < catalog.tensors.size(); ++i) {
    if (!companion_[i]) {
      if (kept != i) catalog.tensors[kept] = std::move(catalog.tensors[i]);
      ++kept;
    }
  }
  catalog.tensors.erase(catalog.tensors.begin() + static_cast<std::ptrdiff_t>(kept),
                        catalog.tensors.end());
}

void scheme_error(const std::string& scheme, const std::string& tensor, const std::string& why) {
  fail(ErrorKind::parse, scheme + " tensor \"" + printable(tensor) + "\": " + why);
}

namespace {

// config.json's quant_method must name what the tensors show.
// The variant index of scheme type T.
template <class T>
constexpr std::size_t kind() {
  return scheme_index<T>();
}

void check_method(const QuantConfig& config, const std::unordered_set<std::size_t>& found) {
  if (!config.method) {
    return;
  }
  const std::string& m = *config.method;
  const auto has = [&](std::size_t e) { return found.count(e) != 0; };
  const std::size_t gptq = kind<scheme::Gptq>(), awq = kind<scheme::Awq>(),
                    bnb4 = kind<scheme::Bnb4>(), int8 = kind<scheme::BnbInt8>(),
                    fp8 = kind<scheme::Fp8>();
  bool agrees = true;
  if (m == "gptq") {
    agrees = has(gptq) && !has(awq);
  } else if (m == "awq") {
    agrees = has(awq) && !has(gptq);
  } else if (m == "bitsandbytes") {
    agrees = has(bnb4) || has(int8);
  } else if (m == "fp8") {
    agrees = has(fp8);
  } else {
    return;  // methods we do not decode say nothing about these tensors
  }
  if (!agrees) {
    std::string seen;
    for (const auto& [e, name] : {std::pair{gptq, "gptq"},
                                  {awq, "awq"},
                                  {bnb4, "bitsandbytes 4-bit"},
                                  {int8, "bitsandbytes int8"},
                                  {fp8, "fp8"}}) {
      if (has(e)) {
        seen += (seen.empty() ? "" : ", ") + std::string(name);
      }
    }
    fail(ErrorKind::parse, config.method.origin + " is \"" + printable(m, 32) +
                               "\" but the tensors are " +
                               (seen.empty() ? "not quantized that way" : seen));
  }
}

}  // namespace

void detect_schemes(Catalog& catalog, const boost::json::value* config,
                    const boost::json::value* quantize_config, bool lenient) {
  const QuantConfig qc = read_quant_config(config, quantize_config, catalog.header.metadata);
  DetectContext ctx(catalog, qc);
  std::unordered_set<std::size_t> found;  // Scheme alternatives seen
  // One detector on one tensor. Lenient: a failure leaves the tensor (and
  // what it had claimed) as stored, and becomes a warning on it.
  const auto offer = [&](TensorInfo& t, auto&& detect) {
    if (!std::holds_alternative<scheme::Plain>(t.scheme) || ctx.is_companion(t)) {
      return;
    }
    if (!lenient) {
      if (detect(t)) {
        found.insert(t.scheme.index());
      }
      return;
    }
    TensorInfo before = t;
    try {
      if (detect(t)) {
        found.insert(t.scheme.index());
      }
      ctx.keep_claims();
    } catch (const Error& e) {
      ctx.release_claims();
      t = std::move(before);
      catalog.warnings.push_back({t.name, e.what()});
    }
  };
  // Bigger schemes first: their companion names (".scales", ".weight.absmax")
  // must not be mistaken for FP8 "_scale" companions.
  for (auto& t : catalog.tensors) {
    offer(t, [&](TensorInfo& w) { return detect_gptq_awq(ctx, w) || detect_bnb(ctx, w); });
  }
  for (auto& t : catalog.tensors) {
    offer(t, [&](TensorInfo& w) { return detect_fp8(ctx, w); });
  }
  try {
    check_method(qc, found);
  } catch (const Error& e) {
    if (!lenient) {
      throw;
    }
    catalog.warnings.push_back({"", e.what()});
  }
  ctx.remove_companions();
  if (found.empty()) {
    return;
  }
  std::unordered_set<std::string> names;
  for (const auto& t : catalog.tensors) {
    if (!names.insert(t.name).second) {
      const std::string why = "two tensors are named \"" + printable(t.name) + "\" once decoded";
      if (!lenient) {
        fail(ErrorKind::parse, why);
      }
      catalog.warnings.push_back({t.name, why});
    }
  }
}

}  // namespace mneme
