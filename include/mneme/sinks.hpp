// The sinks mneme provides (the Sink interface is in mneme/pipeline.hpp):
// whole tensors in memory, a discarding sink for benchmarks, a chunk callback,
// and the streaming file writer. acquire/commit run on decode threads,
// concurrently and in any order; a GPTQ/AWQ output arrives as one chunk that
// covers the whole tensor (OutputTensor::assembled).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mneme/pipeline.hpp"

namespace mneme {

// Keeps every tensor in memory (the caller wanted the whole model).
class MemorySink : public Sink {
 public:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<std::uint64_t> shape;
    std::unique_ptr<std::byte[]> data;
    std::uint64_t bytes = 0;
    std::span<const std::byte> view() const { return {data.get(), bytes}; }
  };
  void begin(const Catalog& catalog, const Plan& plan) override;
  std::span<std::byte> acquire(const Chunk& chunk) override;
  void commit(const Chunk&, std::span<std::byte>) override {}
  std::vector<Tensor>& tensors() { return tensors_; }

 private:
  std::vector<Tensor> tensors_;
};

// Decodes into recycled scratch memory and drops the result (`mneme load`).
class DiscardSink : public Sink {
 public:
  DiscardSink();
  void begin(const Catalog& catalog, const Plan& plan) override;
  std::span<std::byte> acquire(const Chunk& chunk) override;
  void commit(const Chunk& chunk, std::span<std::byte> out) override;
  ~DiscardSink() override;

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

// Hands each finished chunk to a callback (a GPU upload queue, say), from
// staging buffers that are recycled once the callback returns.
class CallbackSink : public Sink {
 public:
  using ChunkFn = std::function<void(const OutputTensor& tensor, std::uint64_t offset,
                                     std::span<const std::byte> bytes)>;
  using TensorFn = std::function<void(const OutputTensor& tensor)>;
  explicit CallbackSink(ChunkFn on_chunk, TensorFn on_tensor = {});
  ~CallbackSink() override;
  void begin(const Catalog& catalog, const Plan& plan) override;
  std::span<std::byte> acquire(const Chunk& chunk) override;
  void commit(const Chunk& chunk, std::span<std::byte> out) override;
  void tensor_done(std::size_t output) override;

 private:
  ChunkFn on_chunk_;
  TensorFn on_tensor_;
  const Plan* plan_ = nullptr;
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

// Streams a model file: header first (every size is known from the plan),
// then every chunk written at its place as it completes; never the whole model
// in memory. `path` must be a new path or a regular file (a symlink is
// followed to its target), never one of the model's input files; an existing
// file is replaced only when `overwrite` is set. The bytes go to a temporary
// of a unique name beside the destination, synced and renamed over it on
// success; a failed or cancelled run removes it (Error{io} otherwise).
enum class FileFormat : std::uint8_t { safetensors, gguf };

class FileSink : public Sink {
 public:
  FileSink(std::string path, FileFormat format, bool overwrite = true);
  ~FileSink() override;
  void begin(const Catalog& catalog, const Plan& plan) override;
  std::span<std::byte> acquire(const Chunk& chunk) override;
  void commit(const Chunk& chunk, std::span<std::byte> out) override;
  void finish() override;
  void abort() noexcept override;

 private:
  struct State;
  std::size_t misalignment(const Chunk& chunk) const;
  std::string path_;
  FileFormat format_;
  bool overwrite_;
  std::unique_ptr<State> state_;
};

}  // namespace mneme
