// Loads a model with the installed library and prints one line per tensor:
//   consumer MODEL
// Exit 0 when every tensor arrived with the bytes its shape and type promise.
#include <cstdio>

#include "mneme/error.hpp"
#include "mneme/load.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL\n");
    return 2;
  }
  try {
    const mneme::LoadedModel m =
        mneme::load_model({argv[1]}, {.to = mneme::OutType::bf16, .threads = 2});
    for (const auto& t : m.tensors) {
      std::uint64_t elements = 1;
      for (auto d : t.shape) elements *= d;
      if (t.bytes != elements * mneme::dtype_size(t.dtype)) {
        std::fprintf(stderr, "consumer: %s has %llu bytes\n", t.name.c_str(),
                     static_cast<unsigned long long>(t.bytes));
        return 1;
      }
      std::printf("%s %s %llu\n", t.name.c_str(), std::string(mneme::dtype_name(t.dtype)).c_str(),
                  static_cast<unsigned long long>(t.bytes));
    }
    std::printf("consumer: %zu tensors loaded\n", m.tensors.size());
    return 0;
  } catch (const mneme::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
