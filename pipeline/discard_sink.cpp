#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "pipeline/buffers.hpp"

namespace mneme {

struct DiscardSink::Pool : pipeline::StagingPool {
  using StagingPool::StagingPool;
};

DiscardSink::DiscardSink() = default;
DiscardSink::~DiscardSink() = default;

void DiscardSink::begin(const Catalog&, const Plan& plan) {
  if (!pool_) pool_ = std::make_unique<Pool>(plan.max_chunk_out);
}

std::span<std::byte> DiscardSink::acquire(const Chunk& chunk) { return pool_->acquire(chunk.out_bytes); }

void DiscardSink::commit(const Chunk&, std::span<std::byte> out) { pool_->release(out.data()); }

}  // namespace mneme
