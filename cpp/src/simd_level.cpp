// Run-time CPU feature detection. A level counts only when the CPU has the instructions
// (CPUID) and the OS saves the wider registers on context switches (XGETBV); checking
// CPUID alone would crash on systems that disable AVX state.
#include "recbatch/simd_level.hpp"

#include <stdexcept>

#if defined(RECBATCH_X86_64) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define RECBATCH_HAVE_CPUID 1
#endif
#if defined(RECBATCH_HAVE_AMX) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace recbatch {
namespace {

#ifdef RECBATCH_HAVE_CPUID
unsigned long long read_xcr0() {
    unsigned int eax = 0, edx = 0;
    // xgetbv with ecx = 0, spelled as bytes so this file needs no -mxsave.
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}

// Linux hands the AMX tile data state (8 KiB per thread) only to a process that asks for it
// once; without the grant the first tile instruction faults. Builds without the AMX kernel
// never ask.
bool amx_permitted() {
#if defined(RECBATCH_HAVE_AMX) && defined(__linux__)
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
}

SimdLevel detect() {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return SimdLevel::scalar;
    const bool fma = (ecx >> 12) & 1u;
    const bool osxsave = (ecx >> 27) & 1u;
    const bool avx = (ecx >> 28) & 1u;
    if (!(osxsave && avx && fma)) return SimdLevel::scalar;
    const unsigned long long xcr0 = read_xcr0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;
    const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
    if (!ymm_state) return SimdLevel::scalar;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return SimdLevel::scalar;
    const bool avx2 = (ebx >> 5) & 1u;
    const bool avx512f = (ebx >> 16) & 1u;
    const bool avx512dq = (ebx >> 17) & 1u;
    const bool avx512bw = (ebx >> 30) & 1u;
    const bool avx512vl = (ebx >> 31) & 1u;
    if (!avx2) return SimdLevel::scalar;
    const bool avx512vnni = (ecx >> 11) & 1u;
    if (!(zmm_state && avx512f && avx512dq && avx512bw && avx512vl)) return SimdLevel::avx2_int8;
    if (!avx512vnni) return SimdLevel::avx512;
    const bool amx_tile = (edx >> 24) & 1u, amx_int8 = (edx >> 25) & 1u;
    const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // XTILECFG and XTILEDATA
    if (amx_tile && amx_int8 && tile_state && amx_permitted()) return SimdLevel::amx_int8;
    return SimdLevel::avx512_vnni;
}
#else
SimdLevel detect() { return SimdLevel::scalar; }
#endif

}  // namespace

SimdLevel detected_simd_level() {
    static const SimdLevel level = detect();
    return level;
}

std::vector<SimdLevel> available_simd_levels() {
    std::vector<SimdLevel> levels;
    for (int l = 0; l <= static_cast<int>(detected_simd_level()); ++l) levels.push_back(static_cast<SimdLevel>(l));
    return levels;
}

const char* simd_level_name(SimdLevel level) {
    switch (level) {
        case SimdLevel::scalar: return "scalar";
        case SimdLevel::avx2: return "avx2";
        case SimdLevel::avx2_int8: return "avx2_int8";
        case SimdLevel::avx512: return "avx512";
        case SimdLevel::avx512_vnni: return "avx512_vnni";
        case SimdLevel::amx_int8: return "amx_int8";
    }
    return "unknown";
}

SimdLevel parse_simd_level(const std::string& name) {
    for (SimdLevel level :
         {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx2_int8, SimdLevel::avx512, SimdLevel::avx512_vnni,
          SimdLevel::amx_int8})
        if (name == simd_level_name(level)) return level;
    throw std::invalid_argument("unknown SIMD level '" + name +
                                "'; expected scalar, avx2, avx2_int8, avx512, avx512_vnni or amx_int8");
}

}  // namespace recbatch
