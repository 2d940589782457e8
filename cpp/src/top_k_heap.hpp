// A fixed-size top-k buffer kept as a binary min-heap of 64-bit keys in the caller's output
// row of indices, so selection needs no extra memory. A key packs the score's bits, mapped so
// that unsigned order is float order, above (2^32 - 1 - index): one unsigned comparison orders
// by score, then by lower index, which makes results independent of scan order and thread
// count, and lets the sift pick a child without a data-dependent branch. The root is the
// worst kept entry; an empty slot is key 0, below every real entry. PackedItems holds fewer
// than 2^32 items, so every index fits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

namespace recbatch {

class TopKHeap {
public:
    // The keys live in `indices` (int64 and uint64 may alias) until sort_descending rewrites
    // the row as (score, index) pairs.
    TopKHeap(float* scores, std::int64_t* indices, std::size_t k)
        : scores_(scores), keys_(reinterpret_cast<std::uint64_t*>(indices)), k_(k) {}

    void reset() { std::fill(keys_, keys_ + k_, std::uint64_t{0}); }

    // The score an item needs to be considered (ties go on to the index comparison).
    float threshold() const { return keys_[0] == 0 ? -INFINITY : score_of(keys_[0]); }

    // -inf (and NaN) scores never enter: such rows are padded instead.
    void push(float score, std::int64_t index) {
        if (!(score > -INFINITY)) return;
        const std::uint64_t key = key_of(score, index);
        if (key <= keys_[0]) return;
        std::size_t i = 0;
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= k_) break;
            if (child + 1 < k_) child += keys_[child + 1] < keys_[child] ? 1 : 0;
            if (key <= keys_[child]) break;
            keys_[i] = keys_[child];
            i = child;
        }
        keys_[i] = key;
    }

    // Rewrites the row best first as scores and indices; empty slots become (-inf, -1), last.
    void sort_descending() {
        std::sort(keys_, keys_ + k_, std::greater<>());
        for (std::size_t i = 0; i < k_; ++i) {
            const std::uint64_t key = keys_[i];
            scores_[i] = key == 0 ? -INFINITY : score_of(key);
            const std::int64_t index = key == 0 ? -1 : static_cast<std::int64_t>(0xffffffffu - (key & 0xffffffffu));
            std::memcpy(keys_ + i, &index, sizeof index);
        }
    }

private:
    static std::uint64_t key_of(float score, std::int64_t index) {
        std::uint32_t bits;
        const float positive_zero = score + 0.0f;  // -0 and +0 compare equal: give them one key
        std::memcpy(&bits, &positive_zero, sizeof bits);
        bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
        return (std::uint64_t{bits} << 32) | (0xffffffffu - static_cast<std::uint32_t>(index));
    }

    static float score_of(std::uint64_t key) {
        std::uint32_t bits = static_cast<std::uint32_t>(key >> 32);
        bits = (bits & 0x80000000u) ? (bits & 0x7fffffffu) : ~bits;
        float score;
        std::memcpy(&score, &bits, sizeof score);
        return score;
    }

    float* scores_;
    std::uint64_t* keys_;
    std::size_t k_;
};

}  // namespace recbatch
