#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "pipeline/buffers.hpp"
#include "src/formats/gguf_writer.hpp"
#include "src/formats/safetensors_writer.hpp"
#include "src/formats/tensor_file_writer.hpp"

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
  // Room to place each chunk's bytes at the alignment of its file offset.
  state_ = std::make_unique<State>(plan.max_chunk_out + TensorFileWriter::kDirectAlign);
  state_->writer = format_ == FileFormat::gguf
                       ? create_gguf_file(path_, entries, catalog, policy)
                       : create_safetensors_file(path_, entries, catalog.header.metadata, policy);
}

// The chunk's bytes start as far into a (page-aligned) staging buffer as its
// file offset is into a page, so the writer can send its whole pages to the
// device directly (TensorFileWriter::write).
std::size_t FileSink::misalignment(const Chunk& chunk) const {
  return state_->writer->file_offset(chunk.output, chunk.out_offset) %
         TensorFileWriter::kDirectAlign;
}

std::span<std::byte> FileSink::acquire(const Chunk& chunk) {
  const std::size_t skip = misalignment(chunk);
  return state_->pool.acquire(skip + chunk.out_bytes).subspan(skip);
}

void FileSink::commit(const Chunk& chunk, std::span<std::byte> out) {
  struct Release {
    pipeline::StagingPool& pool;
    std::byte* p;
    ~Release() { pool.release(p); }
  } release{state_->pool,
            out.data() - reinterpret_cast<std::uintptr_t>(out.data()) %
                             TensorFileWriter::kDirectAlign};  // staging is page-aligned
  state_->writer->write(chunk.output, chunk.out_offset, out);
}

void FileSink::finish() {
  state_->writer->commit();
}

void FileSink::abort() noexcept {
  if (state_ && state_->writer) state_->writer->discard();
}

}  // namespace mneme
