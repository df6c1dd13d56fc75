// libFuzzer target: the input as model.safetensors.index.json beside two
// valid shards (the bundled sample's first two), opened and decoded.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  static const fs::path dir = [] {
    const fs::path d = mneme::fuzz::work_dir() / "sharded";
    fs::create_directories(d);
    const fs::path sample = fs::path(MNEME_SOURCE_DIR) / "fixtures" / "sample-model";
    for (const char* shard :
         {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"}) {
      fs::copy_file(sample / shard, d / shard, fs::copy_options::overwrite_existing);
    }
    return d;
  }();
  mneme::fuzz::write_file(dir / "model.safetensors.index.json", data, size);
  mneme::fuzz::load((dir / "model.safetensors.index.json").string());
  return 0;
}
