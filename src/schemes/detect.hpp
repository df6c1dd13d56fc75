// Quantization scheme detection over a whole catalog (all shards at once, so
// companions may live in any shard): tensor names, dtypes, shapes, and the
// model's config.json `quantization_config` when it sits beside the weights.
#pragma once

#include <optional>
#include <string>

#include <boost/json/value.hpp>

#include "mneme/catalog.hpp"

namespace mneme {

// Rewrites `catalog` in place: every quantized weight gets its encoding and
// companions, and the companions leave the tensor list. `config` is the parsed
// config.json, if any. Inconsistent or unknowable parameters are Error{parse}.
void detect_schemes(Catalog& catalog, const boost::json::value* config);

// "fp8 e4m3 block 128x128", "" for plain tensors: what inspect shows.
std::string scheme_description(const TensorInfo& t);

}  // namespace mneme
