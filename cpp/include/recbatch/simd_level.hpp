// SIMD paths the kernel can run, and which ones this CPU supports.
#pragma once

#include <string>
#include <vector>

namespace recbatch {

// avx2_int8 is the avx2 float kernel plus an int8 screening pass (vpmaddubsw and vpmaddwd)
// that proves which items can still reach a query's top k; only those are rescored in float32 by
// the avx2 kernel's own arithmetic, so its results are identical to the avx2 level's, bit for bit
// (see kernels/score_tile.hpp). avx2_vnni is the same pass with AVX-VNNI's vpdpbusd on ymm
// registers (CPUs with AVX-VNNI but no AVX-512: Intel client cores since Alder Lake, E-core Xeons). avx512_vnni is the same for the avx512 float kernel, screening
// with AVX512-VNNI's vpdpbusd, and amx_int8 runs that pass on the AMX tile unit (TDPBUSD: the same
// exact int32 dot products, a whole 12-query x 16-item x 64-byte product per instruction). Every
// level computes each score as one FMA chain over the dimensions in order, from zero, so all of
// them return the same bits.
// In order of preference, which is not an order of CPU features: a CPU may run avx512_vnni but
// not avx2_vnni (Ice Lake servers), so ask simd_level_available, never compare levels.
enum class SimdLevel { scalar = 0, avx2 = 1, avx2_int8 = 2, avx2_vnni = 3, avx512 = 4, avx512_vnni = 5, amx_int8 = 6 };

// Whether this CPU and OS run the level (CPUID plus XGETBV, detected once).
bool simd_level_available(SimdLevel level);

// The preferred level this CPU runs: the last of available_simd_levels().
SimdLevel detected_simd_level();

// Every level this CPU can run, in the order above.
std::vector<SimdLevel> available_simd_levels();

const char* simd_level_name(SimdLevel level);

// Parses a level name; throws std::invalid_argument for an unknown one.
SimdLevel parse_simd_level(const std::string& name);

}  // namespace recbatch
