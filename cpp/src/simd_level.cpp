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

constexpr unsigned bit(SimdLevel level) { return 1u << static_cast<int>(level); }

// Bit l set: level l runs here. Each level needs its own instructions and register state;
// AVX-VNNI (the VEX vpdpbusd on ymm) is not implied by AVX-512 (Cascade Lake and Ice Lake
// servers lack it, Alder Lake has it without AVX-512), so the levels are a set, not a ladder.
unsigned detect() {
    unsigned levels = bit(SimdLevel::scalar);
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return levels;
    const bool fma = (ecx >> 12) & 1u;
    const bool osxsave = (ecx >> 27) & 1u;
    const bool avx = (ecx >> 28) & 1u;
    if (!(osxsave && avx && fma)) return levels;
    const unsigned long long xcr0 = read_xcr0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;
    const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
    if (!ymm_state) return levels;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return levels;
    const unsigned max_subleaf = eax;
    const bool avx2 = (ebx >> 5) & 1u;
    const bool avx512f = (ebx >> 16) & 1u;
    const bool avx512dq = (ebx >> 17) & 1u;
    const bool avx512bw = (ebx >> 30) & 1u;
    const bool avx512vl = (ebx >> 31) & 1u;
    const bool avx512vnni = (ecx >> 11) & 1u;
    const bool amx_tile = (edx >> 24) & 1u, amx_int8 = (edx >> 25) & 1u;
    if (!avx2) return levels;
    levels |= bit(SimdLevel::avx2) | bit(SimdLevel::avx2_int8);
#ifdef RECBATCH_HAVE_AVXVNNI
    unsigned int eax1 = 0, ebx1 = 0, ecx1 = 0, edx1 = 0;
    if (max_subleaf >= 1 && __get_cpuid_count(7, 1, &eax1, &ebx1, &ecx1, &edx1) && ((eax1 >> 4) & 1u))
        levels |= bit(SimdLevel::avx2_vnni);
#else
    (void)max_subleaf;
#endif
    if (!(zmm_state && avx512f && avx512dq && avx512bw && avx512vl)) return levels;
    levels |= bit(SimdLevel::avx512);
    if (!avx512vnni) return levels;
    levels |= bit(SimdLevel::avx512_vnni);
    const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // XTILECFG and XTILEDATA
    if (amx_tile && amx_int8 && tile_state && amx_permitted()) levels |= bit(SimdLevel::amx_int8);
    return levels;
}
#else
unsigned detect() { return 1u << static_cast<int>(SimdLevel::scalar); }
#endif

constexpr int kLevels = static_cast<int>(SimdLevel::amx_int8) + 1;

unsigned detected_levels() {
    static const unsigned levels = detect();
    return levels;
}

}  // namespace

bool simd_level_available(SimdLevel level) { return ((detected_levels() >> static_cast<int>(level)) & 1u) != 0; }

SimdLevel detected_simd_level() {
    SimdLevel best = SimdLevel::scalar;
    for (int l = 0; l < kLevels; ++l)
        if (simd_level_available(static_cast<SimdLevel>(l))) best = static_cast<SimdLevel>(l);
    return best;
}

std::vector<SimdLevel> available_simd_levels() {
    std::vector<SimdLevel> levels;
    for (int l = 0; l < kLevels; ++l)
        if (simd_level_available(static_cast<SimdLevel>(l))) levels.push_back(static_cast<SimdLevel>(l));
    return levels;
}

const char* simd_level_name(SimdLevel level) {
    switch (level) {
        case SimdLevel::scalar: return "scalar";
        case SimdLevel::avx2: return "avx2";
        case SimdLevel::avx2_int8: return "avx2_int8";
        case SimdLevel::avx2_vnni: return "avx2_vnni";
        case SimdLevel::avx512: return "avx512";
        case SimdLevel::avx512_vnni: return "avx512_vnni";
        case SimdLevel::amx_int8: return "amx_int8";
    }
    return "unknown";
}

SimdLevel parse_simd_level(const std::string& name) {
    for (SimdLevel level :
         {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx2_int8, SimdLevel::avx2_vnni, SimdLevel::avx512,
          SimdLevel::avx512_vnni, SimdLevel::amx_int8})
        if (name == simd_level_name(level)) return level;
    throw std::invalid_argument("unknown SIMD level '" + name +
                                "'; expected scalar, avx2, avx2_int8, avx2_vnni, avx512, avx512_vnni or amx_int8");
}

}  // namespace recbatch
