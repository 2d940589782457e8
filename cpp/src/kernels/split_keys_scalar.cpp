// Portable split: the reference the SIMD one is tested against.
#include "kernels/split_keys.hpp"

namespace recbatch::kernels::scalar {

SplitCounts split_keys(std::uint64_t* keys, std::size_t n, unsigned shift, std::uint64_t bucket, std::uint64_t* above) {
    std::size_t moved = 0, kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t key = keys[i], digit = (key >> shift) & kSplitDigits;
        // Stores at counters the comparisons advance: no branch on the keys (half of them would
        // be mispredicted). A store lands for good only where its counter then moves on.
        above[moved] = key;
        moved += digit > bucket ? 1 : 0;
        keys[kept] = key;
        kept += digit == bucket ? 1 : 0;
    }
    return {moved, kept};
}

}  // namespace recbatch::kernels::scalar
