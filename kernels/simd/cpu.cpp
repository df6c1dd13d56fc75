#include "kernels/simd/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <cstring>

namespace mneme::kernels::simd {

bool detect_avx512_bf16() noexcept {
  if (const char* v = std::getenv("MNEME_NATIVE_BF16"); v && std::strcmp(v, "0") == 0) return false;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || eax < 1) return false;
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
  // The AVX-512 state is enabled by the OS wherever Highway chose an AVX-512
  // target, the only targets that use this.
  return (eax >> 5) & 1u;
#else
  return false;
#endif
}

}  // namespace mneme::kernels::simd
