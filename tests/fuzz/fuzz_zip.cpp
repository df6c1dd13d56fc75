// libFuzzer target: the zip central directory and member reads (NPZ and
// .pth archives), on the input as an in-memory source.
#include "fuzz_support.hpp"
#include "io/sources.hpp"
#include "src/formats/zip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const mneme::SourcePtr src = mneme::make_memory_source(
        "fuzz.zip", std::span(reinterpret_cast<const std::byte*>(data), size));
    const auto archive = mneme::zip::read_archive(*src);
    for (const auto& entry : archive.entries) {
      (void)mneme::zip::read_member(*src, entry, 1u << 20);
    }
  } catch (const mneme::Error&) {
  }
  return 0;
}
