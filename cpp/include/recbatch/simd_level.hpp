// SIMD paths the kernel can run, and which ones this CPU supports.
#pragma once

#include <string>
#include <vector>

namespace recbatch {

enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2 };

// The widest level this CPU and OS support (CPUID plus XGETBV), detected once.
SimdLevel detected_simd_level();

// Every level this CPU can run, lowest first.
std::vector<SimdLevel> available_simd_levels();

const char* simd_level_name(SimdLevel level);

// Parses a level name; throws std::invalid_argument for an unknown one.
SimdLevel parse_simd_level(const std::string& name);

}  // namespace recbatch
