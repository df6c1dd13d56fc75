// Shared state of one detection pass (internal to src/schemes): the catalog,
// its tensors by name, which of them have become companions, and the
// configuration the model declares. One detector per scheme family reads it.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mneme/catalog.hpp"
#include "src/schemes/quant_config.hpp"

namespace mneme {

class DetectContext {
 public:
  DetectContext(Catalog& catalog, const QuantConfig& config);

  Catalog& catalog;
  const QuantConfig& config;

  // The tensor named `name` that is not yet a companion, or null. The name
  // index is built on the first call: a model no detector looks into (no
  // tensor of a quantized dtype or companion name) never pays for it.
  const TensorInfo* find(const std::string& name) const;
  // Whether `t` (one of the catalog's tensors) has been claimed as a companion.
  bool is_companion(const TensorInfo& t) const {
    return companion_[static_cast<std::size_t>(&t - catalog.tensors.data())];
  }
  // Whether any tensor's name ends with `suffix` (".absmax", ".SCB"): a
  // detector whose companion nobody has skips its per-tensor lookups.
  bool any_name_ends_with(std::string_view suffix) const;
  // Claims tensor `name` (which find() returned) as a companion of the weight
  // named `weight`: it leaves the output. A tensor serves one weight only.
  Companion claim(const std::string& weight, const std::string& name);
  // Reads a small companion (quant_state JSON) whole; random-access sources only.
  std::string read_small(const TensorInfo& t, std::uint64_t cap) const;

  // Drops every attached companion from the catalog's tensor list.
  void remove_companions();
  // Undoes every claim() since the last call (a detection that failed).
  void release_claims();
  // Keeps them (a detection that succeeded).
  void keep_claims() { claims_.clear(); }

 private:
  mutable std::unordered_map<std::string, std::size_t> by_name_;  // built by the first find()
  mutable bool indexed_ = false;
  mutable std::vector<std::pair<std::string, bool>> suffixes_;  // any_name_ends_with answers
  std::vector<bool> companion_;
  std::vector<std::size_t> claims_;  // since the last keep/release
};

[[noreturn]] void scheme_error(const std::string& scheme, const std::string& tensor,
                               const std::string& why);

// Each returns true when `t` is a weight of its family (and rewrites it).
bool detect_fp8(DetectContext& ctx, TensorInfo& t);
bool detect_gptq_awq(DetectContext& ctx, TensorInfo& t);
bool detect_bnb(DetectContext& ctx, TensorInfo& t);

}  // namespace mneme
