// libFuzzer target: scheme detection and the quantized codecs. The input is
// config.json and model.safetensors in one: a little-endian u32 length, that
// many bytes of config.json, then the safetensors file (seeds: the bundled
// GPTQ and FP8 samples, framed by scripts/fuzz.sh).
#include <cstring>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  if (size < 4) return 0;
  std::uint32_t config_bytes = 0;
  std::memcpy(&config_bytes, data, 4);
  if (config_bytes > size - 4) return 0;
  const fs::path dir = mneme::fuzz::work_dir() / "quant";
  fs::create_directories(dir);
  mneme::fuzz::write_file(dir / "config.json", data + 4, config_bytes);
  mneme::fuzz::write_file(dir / "model.safetensors", data + 4 + config_bytes,
                          size - 4 - config_bytes);
  mneme::fuzz::load(dir.string());
  return 0;
}
