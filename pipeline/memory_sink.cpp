#include <memory>

#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"

namespace mneme {

void MemorySink::begin(const Catalog&, const Plan& plan) {
  tensors_.clear();
  tensors_.reserve(plan.outputs.size());
  for (const auto& o : plan.outputs) {
    // Uninitialised on purpose: every byte is written by a chunk.
    tensors_.push_back(Tensor{o.name, o.dtype, o.shape, std::make_unique_for_overwrite<std::byte[]>(o.bytes), o.bytes});
  }
}

std::span<std::byte> MemorySink::acquire(const Chunk& chunk) {
  return {tensors_[chunk.output].data.get() + chunk.out_offset, chunk.out_bytes};
}

}  // namespace mneme
