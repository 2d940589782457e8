#include "kernels/intrinsics.hpp"
#include "kernels/split_keys.hpp"

namespace recbatch::kernels::avx512 {

SplitCounts split_keys(std::uint64_t* keys, std::size_t n, unsigned shift, std::uint64_t bucket, std::uint64_t* above) {
    const __m512i digits = _mm512_set1_epi64(static_cast<long long>(kSplitDigits)), wanted = _mm512_set1_epi64(static_cast<long long>(bucket));
    const __m128i by = _mm_cvtsi32_si128(static_cast<int>(shift));
    std::size_t moved = 0, kept = 0, i = 0;
    // In place: the eight keys are loaded before any of them is stored, and `kept` <= i.
    for (; i + 8 <= n; i += 8) {
        const __m512i key = _mm512_loadu_si512(keys + i);
        const __m512i digit = _mm512_and_si512(_mm512_srl_epi64(key, by), digits);
        const __mmask8 up = _mm512_cmpgt_epu64_mask(digit, wanted), same = _mm512_cmpeq_epu64_mask(digit, wanted);
        const unsigned n_up = static_cast<unsigned>(__builtin_popcount(up));
        const unsigned n_same = static_cast<unsigned>(__builtin_popcount(same));
        _mm512_mask_storeu_epi64(above + moved, static_cast<__mmask8>((1u << n_up) - 1), _mm512_maskz_compress_epi64(up, key));
        _mm512_mask_storeu_epi64(keys + kept, static_cast<__mmask8>((1u << n_same) - 1),
                                 _mm512_maskz_compress_epi64(same, key));
        moved += n_up;
        kept += n_same;
    }
    for (; i < n; ++i) {
        const std::uint64_t key = keys[i], digit = (key >> shift) & kSplitDigits;
        if (digit > bucket) above[moved++] = key;
        keys[kept] = key;
        kept += digit == bucket ? 1 : 0;
    }
    return {moved, kept};
}

}  // namespace recbatch::kernels::avx512
