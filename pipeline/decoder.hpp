// How the chunks of one output tensor become values: a GGUF block kernel, a
// quantized-safetensors scheme kernel, a float conversion, or a copy.
// Internal to the pipeline (pipeline/run.cpp owns one per output).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "kernels/convert/convert.hpp"
#include "kernels/gguf/gguf_kernels.hpp"
#include "kernels/quant/awq.hpp"
#include "kernels/quant/bnb.hpp"
#include "kernels/quant/fp8.hpp"
#include "kernels/quant/gptq.hpp"
#include "mneme/catalog.hpp"
#include "mneme/pipeline.hpp"

namespace mneme::pipeline {

struct Decoder {
  Encoding encoding = Encoding::plain;
  kernels::ConvertFn convert = nullptr;
  kernels::gguf::GgmlType gguf_type{};
  std::uint32_t block_elements = 1;
  OutType out = OutType::f32;
  std::uint64_t data_offset = 0;  // of the stored tensor: where a chunk's rows start

  // Quantized safetensors schemes read their companions (scales, zeros...)
  // when their first chunk arrives (load_scheme, under `mutex`, then `ready`)
  // and drop them when their last is done.
  std::mutex mutex;
  std::atomic<bool> ready{false};
  std::vector<std::vector<std::byte>> companions;
  std::optional<kernels::quant::Fp8Tensor> fp8;
  std::optional<kernels::quant::GptqTensor> gptq;
  std::optional<kernels::quant::AwqTensor> awq;
  std::optional<kernels::quant::Bnb4Tensor> bnb4;
  std::optional<kernels::quant::BnbInt8Tensor> int8;
  Chunk whole;                     // assembled outputs: the whole tensor as one chunk
  std::span<std::byte> whole_out;  // ... and the sink memory it decodes into

  // Picks the kernel that turns `t` into `o` (no I/O). Throws
  // Error{unsupported} when no kernel converts the types.
  void init(const TensorInfo& t, const OutputTensor& o);
  // The companions `t` needs read whole before its first chunk decodes (the
  // run's reader coroutines read them into `companions`, one per entry of
  // t.quant.companions; those not needed stay empty).
  static bool needs_companion(const Companion& c);
  // Validates a quantized scheme's kernel parameters over the companions
  // already in `companions`; nothing for other encodings. No I/O.
  void load_scheme(const TensorInfo& t);
  // Decodes chunk `c` from its input bytes into `out`: the chunk's own
  // output span, or for an assembled output the whole tensor.
  void decode(const Chunk& c, const std::byte* input, std::span<std::byte> out) const;
  void release_companions();
};

}  // namespace mneme::pipeline
