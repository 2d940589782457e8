// One round of a buffered top-k list's radix selection (top_k_list.hpp): the keys whose digit
// (key >> shift) & (2^kSplitDigitBits - 1) is above `bucket` are copied to `above`, and those whose digit equals it
// are compacted to the front of `keys` itself, both in their input order; the rest are dropped.
#pragma once

#include <cstddef>
#include <cstdint>

namespace recbatch::kernels {

constexpr unsigned kSplitDigitBits = 11;  // 2,048 buckets
constexpr std::uint64_t kSplitDigits = (std::uint64_t{1} << kSplitDigitBits) - 1;

struct SplitCounts {
    std::size_t above, same;
};

// `above` has room for one key more than go there (the caller's count of the buckets above):
// the portable loop stores every key at its next free place before deciding whether it stays.
using SplitKeysFn = SplitCounts (*)(std::uint64_t* keys, std::size_t n, unsigned shift, std::uint64_t bucket,
                                    std::uint64_t* above);

namespace scalar {
SplitCounts split_keys(std::uint64_t* keys, std::size_t n, unsigned shift, std::uint64_t bucket, std::uint64_t* above);
}
// Eight keys per step: compares into masks, the masks' keys compressed in a register and
// stored under a mask (a compressing store to memory is microcoded, four times slower, on AMD
// Zen 4).
namespace avx512 {
SplitCounts split_keys(std::uint64_t* keys, std::size_t n, unsigned shift, std::uint64_t bucket, std::uint64_t* above);
}

}  // namespace recbatch::kernels
