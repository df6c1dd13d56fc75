#include "mneme/pipeline.hpp"
#include "pipeline/buffers.hpp"
#include "src/formats/safetensors_writer.hpp"

namespace mneme {

struct SafetensorsFileSink::State {
  explicit State(std::size_t staging) : pool(staging) {}
  pipeline::StagingPool pool;
  std::unique_ptr<SafetensorsWriter> writer;
};

SafetensorsFileSink::SafetensorsFileSink(std::string path) : path_(std::move(path)) {}
SafetensorsFileSink::~SafetensorsFileSink() = default;

void SafetensorsFileSink::begin(const Catalog& catalog, const Plan& plan) {
  std::vector<SafetensorsEntry> entries;
  entries.reserve(plan.outputs.size());
  for (const auto& o : plan.outputs) entries.push_back({o.name, o.dtype, o.shape, o.bytes});
  state_ = std::make_unique<State>(plan.max_chunk_out);
  state_->writer = std::make_unique<SafetensorsWriter>(path_, entries, catalog.metadata);
}

std::span<std::byte> SafetensorsFileSink::acquire(const Chunk& chunk) { return state_->pool.acquire(chunk.out_bytes); }

void SafetensorsFileSink::commit(const Chunk& chunk, std::span<std::byte> out) {
  struct Release {
    pipeline::StagingPool& pool;
    std::byte* p;
    ~Release() { pool.release(p); }
  } release{state_->pool, out.data()};
  state_->writer->write(chunk.output, chunk.out_offset, out);
}

void SafetensorsFileSink::finish() { state_->writer->commit(); }

void SafetensorsFileSink::abort() noexcept {
  if (state_ && state_->writer) state_->writer->discard();
}

}  // namespace mneme
