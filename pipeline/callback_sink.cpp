#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "pipeline/buffers.hpp"

namespace mneme {

struct CallbackSink::Pool : pipeline::StagingPool {
  using StagingPool::StagingPool;
};

CallbackSink::CallbackSink(ChunkFn on_chunk, TensorFn on_tensor)
    : on_chunk_(std::move(on_chunk)), on_tensor_(std::move(on_tensor)) {}

CallbackSink::~CallbackSink() = default;

void CallbackSink::begin(const Catalog&, const Plan& plan) {
  plan_ = &plan;
  pool_ = std::make_unique<Pool>(plan.max_chunk_out);
}

std::span<std::byte> CallbackSink::acquire(const Chunk& chunk) { return pool_->acquire(chunk.out_bytes); }

void CallbackSink::commit(const Chunk& chunk, std::span<std::byte> out) {
  struct Release {
    Pool* pool;
    std::byte* p;
    ~Release() { pool->release(p); }
  } release{pool_.get(), out.data()};
  on_chunk_(plan_->outputs[chunk.output], chunk.out_offset, out);
}

void CallbackSink::tensor_done(std::size_t output) {
  if (on_tensor_) on_tensor_(plan_->outputs[output]);
}

}  // namespace mneme
