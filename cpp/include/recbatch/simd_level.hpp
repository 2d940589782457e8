// SIMD paths the kernel can run, and which ones this CPU supports.
#pragma once

#include <string>
#include <vector>

namespace recbatch {

// avx512_vnni is the avx512 float kernel plus an int8 screening pass (AVX512-VNNI
// vpdpbusd) that proves which items can still reach a query's top k; only those are
// rescored in float32 by the avx512 kernel's own arithmetic, so its results are identical
// to the avx512 level's, bit for bit (see kernels/screen_tile.hpp). amx_int8 runs the same
// screening pass on the AMX tile unit (TDPBUSD: the same exact int32 dot products, a whole
// 12-query x 16-item x 64-byte product per instruction), so its results are identical too.
enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2, avx512_vnni = 3, amx_int8 = 4 };

// The widest level this CPU and OS support (CPUID plus XGETBV), detected once.
SimdLevel detected_simd_level();

// Every level this CPU can run, lowest first.
std::vector<SimdLevel> available_simd_levels();

const char* simd_level_name(SimdLevel level);

// Parses a level name; throws std::invalid_argument for an unknown one.
SimdLevel parse_simd_level(const std::string& name);

}  // namespace recbatch
