// CPU features the kernels use that Highway 1.0.3 does not detect.
#pragma once

namespace mneme::kernels::simd {

// AVX512_BF16 (CPUID.(EAX=7,ECX=1):EAX[5], Zen 4, Sapphire Rapids): the
// VCVTNE2PS2BF16 / VCVTNEPS2BF16 narrowing narrow-inl.h uses on the AVX-512
// targets. False where MNEME_NATIVE_BF16=0 is set (to measure or test the
// portable path on such a CPU).
bool detect_avx512_bf16() noexcept;

// Read once, at load; a plain load in the kernels' loops.
inline const bool kHasAvx512Bf16 = detect_avx512_bf16();

}  // namespace mneme::kernels::simd
