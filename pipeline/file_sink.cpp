#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "pipeline/buffers.hpp"
#include "src/formats/gguf_writer.hpp"
#include "src/formats/safetensors_writer.hpp"

namespace mneme {

struct FileSink::State {
  explicit State(std::size_t staging) : pool(staging) {}
  pipeline::StagingPool pool;
  std::unique_ptr<TensorFileWriter> writer;
};

FileSink::FileSink(std::string path, FileFormat format, bool overwrite)
    : path_(std::move(path)), format_(format), overwrite_(overwrite) {}
FileSink::~FileSink() = default;

void FileSink::begin(const Catalog& catalog, const Plan& plan) {
  std::vector<TensorEntry> entries;
  entries.reserve(plan.outputs.size());
  for (const auto& o : plan.outputs) entries.push_back({o.name, o.dtype, o.shape, o.bytes});
  OutputPolicy policy;
  policy.overwrite = overwrite_;
  for (const auto& s : catalog.sources) {
    if (const auto id = s->file_id()) policy.inputs.push_back(*id);
  }
  state_ = std::make_unique<State>(plan.max_chunk_out);
  state_->writer = format_ == FileFormat::gguf
                       ? create_gguf_file(path_, entries, catalog, policy)
                       : create_safetensors_file(path_, entries, catalog.header.metadata, policy);
}

std::span<std::byte> FileSink::acquire(const Chunk& chunk) {
  return state_->pool.acquire(chunk.out_bytes);
}

void FileSink::commit(const Chunk& chunk, std::span<std::byte> out) {
  struct Release {
    pipeline::StagingPool& pool;
    std::byte* p;
    ~Release() { pool.release(p); }
  } release{state_->pool, out.data()};
  state_->writer->write(chunk.output, chunk.out_offset, out);
}

void FileSink::finish() {
  state_->writer->commit();
}

void FileSink::abort() noexcept {
  if (state_ && state_->writer) state_->writer->discard();
}

}  // namespace mneme
