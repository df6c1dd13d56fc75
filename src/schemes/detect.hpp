// Quantization scheme detection over a whole catalog (all shards at once, so
// companions may live in any shard): tensor names, dtypes, shapes, the
// safetensors __metadata__, and the model's config.json `quantization_config`
// (and quantize_config.json) when they sit beside the weights.
#pragma once

#include <string>

#include <boost/json/value.hpp>

#include "mneme/catalog.hpp"

namespace mneme {

// Rewrites `catalog` in place: every quantized weight gets its encoding,
// parameters and companions, and the companions leave the tensor list.
// `config` / `quantize_config` are the parsed JSON files, if any. Inconsistent
// or unknowable parameters are Error{parse} (unsupported for recognised
// variants we do not decode); never a guess.
// `lenient` (inspection): a tensor whose scheme cannot be resolved stays as
// stored, with the error as a Catalog::warnings entry, and so does a
// disagreement with config.json.
void detect_schemes(Catalog& catalog, const boost::json::value* config,
                    const boost::json::value* quantize_config = nullptr, bool lenient = false);

}  // namespace mneme
