// A cache hint for the lookups that chase scattered rows (id tables, item rows): portable C++,
// no intrinsics header, and a no-op where the compiler has no builtin.
#pragma once

namespace recbatch {

// A hint only: the results are the same without it.
inline void prefetch(const void* address) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(address);
#else
    (void)address;
#endif
}

}  // namespace recbatch
