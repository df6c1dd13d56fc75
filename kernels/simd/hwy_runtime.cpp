// Highway's run-time target choice, loaded when the first kernel dispatches.
//
// Debian's libhwy.so.1 runs a static initializer that calibrates a timer for
// Highway's nanobenchmark (hwy::platform::TimerResolution, about 5 ms here):
// linked normally, every process pays it at start, `mneme inspect` too,
// which decodes nothing (issue 15). Dynamic dispatch needs two functions of
// the library, SupportedTargets() (CPUID) and GetChosenTarget() (the mask
// HWY_DYNAMIC_DISPATCH reads). They are defined here and forward to the
// library, opened on the first call; nothing else links it. A process that
// links libhwy itself (the kernel tests do) gets the same library and the
// same ChosenTarget: the lookup is in the library, not in the global scope.
#include <hwy/targets.h>

#include <cstdint>

#include "src/core/dynamic_library.hpp"

namespace hwy {
namespace {

struct Runtime {
  ChosenTarget& (*chosen_target)() = nullptr;
  std::int64_t (*supported_targets)() = nullptr;

  Runtime() {
    const auto lib = mneme::core::DynamicLibrary::open({"libhwy.so.1", "libhwy.so"},
                                                       "the SIMD kernels need Highway");
    lib.bind(chosen_target, "_ZN3hwy15GetChosenTargetEv");
    lib.bind(supported_targets, "_ZN3hwy16SupportedTargetsEv");
  }
};

const Runtime& runtime() {
  static const Runtime loaded;  // thread-safe: the first dispatch may be on any decoder
  return loaded;
}

}  // namespace

ChosenTarget& GetChosenTarget() {
  return runtime().chosen_target();
}

std::int64_t SupportedTargets() {
  return runtime().supported_targets();
}

}  // namespace hwy
