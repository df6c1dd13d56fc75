// libFuzzer target: the input as model.gguf, opened, planned and decoded
// (tests/fuzz/fuzz_support.hpp).
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return mneme::fuzz::load_file(data, size, "model.gguf");
}
