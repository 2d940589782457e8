// <immintrin.h> for the kernel files, the only files that use it.
//
// GCC 12's AVX-512 headers pass a deliberately uninitialised vector (_mm512_undefined_*) as
// the unused merge operand of many intrinsics, and once inlined -Wall reports it as
// "'__Y' may be used uninitialized" inside the header itself: over a hundred false warnings per
// build (GCC bug 105593, fixed in GCC 13). GCC's diagnostic pragmas apply by source location,
// so silencing the two warnings around the include silences them only for the header's lines;
// our own code keeps both warnings.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
