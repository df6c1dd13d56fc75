// The one-call load: open a model, plan it and run it into memory, on an
// io_context of its own (the caller's threads and contexts are not used).
//
//   mneme::LoadedModel m = mneme::load_model({"path/to/model"}, {.to = mneme::OutType::bf16});
//   const auto* w = m.find("model.embed_tokens.weight");   // dtype, shape, bytes
//
// Safe to call from several threads at once: each call owns its context and
// bounds its own decode concurrency.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"

namespace mneme {

struct LoadOptions {
  std::optional<OutType> to;  // float and quantized tensors become this; unset: floats as stored
  unsigned threads = 0;       // decode threads; 0 = hardware concurrency
  std::uint64_t budget_bytes = 0;  // RunOptions::budget_bytes (0: 64 MiB or what one tensor needs)
  std::function<bool(const TensorInfo&)> select;  // which tensors; unset: all
  CatalogOptions open;                            // file I/O, timeouts, config.json, limits
  std::atomic<bool>* cancel = nullptr;
};

struct LoadedModel {
  Format format = Format::safetensors;
  ModelHeader header;
  std::vector<MemorySink::Tensor> tensors;  // in plan order
  RunStats stats;
  const MemorySink::Tensor* find(std::string_view name) const;
};

LoadedModel load_model(const std::vector<std::string>& sources, const LoadOptions& options = {});

}  // namespace mneme
