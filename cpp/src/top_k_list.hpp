// A row's k best (score, item) entries, built in the caller's output row of indices. A key
// packs the score's bits, mapped so that unsigned order is float order, above (2^32 - 1 -
// index): one unsigned comparison orders by score, then by lower index, which makes results
// independent of scan order and thread count. PackedItems holds fewer than 2^32 items, so every
// index fits; key 0 is below every real entry.
//
// Two ways to keep them, with the same results:
//   - a binary min-heap of the k keys (the root is the worst kept entry), for small k: it stays
//     in L1 and a push costs a few compares;
//   - for large k, where a push down a heap of tens of kilobytes is a chain of cache misses:
//     keys at or above the floor are appended to a spare buffer, and when it fills, a selection
//     (a radix selection over the kept keys and the spare ones, in a scratch buffer one thread's
//     lists share) keeps the k best and raises the floor to the k-th. Each key is then moved a few
//     times, sequentially, instead of sifted through log2(k) scattered levels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "kernels/split_keys.hpp"

namespace recbatch {

class TopKList {
public:
    // Heap mode. The keys live in `indices` (int64 and uint64 may alias) until sort_descending
    // rewrites the row as (score, index) pairs.
    TopKList(float* scores, std::int64_t* indices, std::size_t k)
        : scores_(scores), keys_(reinterpret_cast<std::uint64_t*>(indices)), k_(k) {}

    // Buffered mode: `spare` holds spare_size keys of this list, `scratch` k + spare_size keys
    // that every list of the calling thread may use in turn.
    TopKList(float* scores, std::int64_t* indices, std::size_t k, std::uint64_t* spare, std::size_t spare_size,
             std::uint64_t* scratch, kernels::SplitKeysFn split_keys = kernels::scalar::split_keys)
        : scores_(scores),
          keys_(reinterpret_cast<std::uint64_t*>(indices)),
          k_(k),
          spare_(spare),
          spare_size_(spare_size),
          scratch_(scratch),
          split_keys_(split_keys) {}

    void reset() {
        kept_ = pending_ = 0;
        floor_ = best_ = 0;
        if (spare_ == nullptr) std::fill(keys_, keys_ + k_, std::uint64_t{0});
    }

    // The score an item needs to be considered (ties go on to the index comparison): the k-th
    // best so far, or -inf before k entries. Buffered, it is the k-th as of the last selection,
    // a lower bound; the first time k entries are held, a selection runs so that it is finite.
    float threshold() {
        if (spare_ == nullptr) return keys_[0] == 0 ? -INFINITY : score_of(keys_[0]);
        if (floor_ == 0 && kept_ + pending_ >= k_) select();
        return floor_ == 0 ? -INFINITY : score_of(floor_);
    }

    // The order of entries: a larger key is a better entry (score first, then lower index).
    static std::uint64_t key_of(float score, std::int64_t index) {
        std::uint32_t bits;
        const float positive_zero = score + 0.0f;  // -0 and +0 compare equal: give them one key
        std::memcpy(&bits, &positive_zero, sizeof bits);
        bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
        return (std::uint64_t{bits} << 32) | (0xffffffffu - static_cast<std::uint32_t>(index));
    }

    // -inf (and NaN) scores never enter: such rows are padded instead.
    void push(float score, std::int64_t index) {
        if (!(score > -INFINITY)) return;
        const std::uint64_t key = key_of(score, index);
        if (spare_ != nullptr) {
            if (key <= floor_) return;
            best_ = std::max(best_, key);
            spare_[pending_++] = key;
            if (pending_ == spare_size_) select();
            return;
        }
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

    // Leaves the row's k keys in its indices, unordered, 0 for an empty slot: what
    // best_of_keys takes (a query's catalogue ranges, merged without sorting each range).
    void finish_unordered() {
        if (spare_ == nullptr) return;
        select();
        std::fill(keys_ + kept_, keys_ + k_, std::uint64_t{0});
    }

    // The k best of n keys (any order, 0 for none; `keys` reordered) written best first as
    // scores and indices, padded with (-inf, -1). `scratch` holds 2k keys.
    static void best_of_keys(std::uint64_t* keys, std::size_t n, std::size_t k, std::uint64_t* scratch,
                             float* scores, std::int64_t* indices, kernels::SplitKeysFn split_keys) {
        std::size_t held = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (keys[i] != 0) keys[held++] = keys[i];
        std::uint64_t* const best = scratch;  // k keys, then the radix sort's k
        if (held > k) {
            select_best(keys, held, k, best, 0, 0, split_keys);
            held = k;
        } else {
            std::copy(keys, keys + held, best);
        }
        if (held >= kRadixFrom)
            radix_sort_descending(best, held, scratch + k);
        else
            std::sort(best, best + held, std::greater<>());
        for (std::size_t i = 0; i < k; ++i) {
            scores[i] = i < held ? score_of(best[i]) : -INFINITY;
            indices[i] = i < held ? static_cast<std::int64_t>(0xffffffffu - (best[i] & 0xffffffffu)) : -1;
        }
    }

    // Rewrites the row best first as scores and indices; empty slots become (-inf, -1), last.
    void sort_descending() {
        if (spare_ != nullptr) {
            select();
            std::fill(keys_ + kept_, keys_ + k_, std::uint64_t{0});
        }
        // A long buffered list is radix sorted in its selection buffer (k = 100,000: a quarter of
        // the search's time went to std::sort); the zeros past kept_ are already last.
        if (spare_ != nullptr && kept_ >= kRadixFrom)
            radix_sort_descending(keys_, kept_, scratch_);
        else
            std::sort(keys_, keys_ + k_, std::greater<>());
        for (std::size_t i = 0; i < k_; ++i) {
            const std::uint64_t key = keys_[i];
            scores_[i] = key == 0 ? -INFINITY : score_of(key);
            const std::int64_t index = key == 0 ? -1 : static_cast<std::int64_t>(0xffffffffu - (key & 0xffffffffu));
            std::memcpy(keys_ + i, &index, sizeof index);
        }
    }

private:
    static constexpr std::size_t kRadixFrom = 1024;

    // Keys descending. A stable counting sort per 11-bit digit of the score half (bits 32 to 63),
    // least significant first, a digit every key shares skipped: three passes at most, where
    // sorting all 64 bits a byte at a time took six or seven (the index half's bytes vary too).
    // Keys of equal scores, which differ only in the index half, are left in input order by
    // those passes and sorted among themselves after. `spare` holds n keys.
    static void radix_sort_descending(std::uint64_t* keys, std::size_t n, std::uint64_t* spare) {
        constexpr unsigned kBits = 11;
        constexpr std::size_t kBuckets = std::size_t{1} << kBits;
        std::uint64_t* from = keys;
        std::uint64_t* to = spare;
        for (unsigned shift = 32; shift < 64; shift += kBits) {
            std::size_t count[kBuckets] = {};
            for (std::size_t i = 0; i < n; ++i) ++count[(from[i] >> shift) & (kBuckets - 1)];
            if (count[(from[0] >> shift) & (kBuckets - 1)] == n) continue;  // one digit value: order kept
            std::size_t start = 0;  // the largest digit first: descending
            for (std::size_t b = kBuckets; b-- > 0;) {
                const std::size_t c = count[b];
                count[b] = start;
                start += c;
            }
            for (std::size_t i = 0; i < n; ++i) to[count[(from[i] >> shift) & (kBuckets - 1)]++] = from[i];
            std::swap(from, to);
        }
        if (from != keys) std::copy(from, from + n, keys);
        for (std::size_t i = 0; i < n;) {
            std::size_t j = i + 1;
            while (j < n && (keys[j] >> 32) == (keys[i] >> 32)) ++j;
            if (j - i > 1) std::sort(keys + i, keys + j, std::greater<>());
            i = j;
        }
    }

    // Buffered mode: the k best of the kept and pending keys become the kept ones (unordered),
    // and once there are k, the floor is the k-th best.
    void select() {
        if (pending_ == 0) return;
        const std::size_t held = kept_ + pending_;
        if (held <= k_) {
            std::copy(spare_, spare_ + pending_, keys_ + kept_);
            kept_ = held;
            pending_ = 0;
            if (kept_ == k_) floor_ = *std::min_element(keys_, keys_ + k_);
            return;
        }
        std::copy(keys_, keys_ + kept_, scratch_);
        std::copy(spare_, spare_ + pending_, scratch_ + kept_);
        pending_ = 0;
        // The kept keys' smallest is the floor, which every pending key is above, and the best
        // key pushed is the largest: the selection's first round needs no pass for them.
        floor_ = select_best(scratch_, held, k_, keys_, floor_, best_, split_keys_);
        kept_ = k_;
    }

    // Moves the k best of the n distinct keys in `keys` (reordered, n > k) to `out`, unordered,
    // and returns the k-th best; `low` and `high` are the smallest and largest key, or low = 0
    // where they are not known. A radix selection: keys between the smallest and the largest
    // share every bit above their highest differing one, so the 11 bits from there down order
    // them into 2,048 buckets. One pass counts the buckets, a second (`split_keys`, the
    // caller's ISA's) moves the keys of the buckets above the k-th's to `out` and keeps the k-th's
    // bucket, compacted in place, for the next round. Each pass is a sequential walk without
    // data-dependent branches, where nth_element's
    // partitions branch on every comparison, half of them mispredicted (it was a quarter of a
    // search's time at k = 10,000). A last few keys are left to nth_element.
    static std::uint64_t select_best(std::uint64_t* keys, std::size_t n, std::size_t k, std::uint64_t* out,
                                     std::uint64_t low, std::uint64_t high, kernels::SplitKeysFn split_keys) {
        constexpr unsigned kDigitBits = kernels::kSplitDigitBits;
        constexpr std::size_t kBuckets = std::size_t{1} << kDigitBits, kFewKeys = 256;
        for (;;) {
            if (n <= kFewKeys) {
                std::nth_element(keys, keys + (k - 1), keys + n, std::greater<>());
                std::copy(keys, keys + k, out);
                return keys[k - 1];
            }
            if (low == 0) {
                low = high = keys[0];
                for (std::size_t i = 1; i < n; ++i) {
                    low = std::min(low, keys[i]);
                    high = std::max(high, keys[i]);
                }
            }
            const unsigned top = 63u - static_cast<unsigned>(__builtin_clzll(low ^ high));  // n > 1 distinct keys
            const unsigned shift = top >= kDigitBits - 1 ? top - (kDigitBits - 1) : 0;
            std::size_t count[kBuckets] = {};
            for (std::size_t i = 0; i < n; ++i) ++count[(keys[i] >> shift) & (kBuckets - 1)];
            std::size_t bucket = kBuckets - 1, above = 0;  // keys in buckets above `bucket`
            while (above + count[bucket] < k) above += count[bucket--];
            // `out` has room for k keys, one more than the `above` that go there.
            const kernels::SplitCounts split = split_keys(keys, n, shift, bucket, out);
            const std::size_t moved = split.above, kept = split.same;
            if (kept == k - above) {  // the whole bucket is taken: its smallest key is the k-th
                std::copy(keys, keys + kept, out + moved);
                return *std::min_element(keys, keys + kept);
            }
            out += moved;
            k -= above;
            n = kept;
            low = 0;
        }
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
    std::uint64_t* spare_ = nullptr;  // buffered mode only, as the three below
    std::size_t spare_size_ = 0;
    std::uint64_t* scratch_ = nullptr;
    kernels::SplitKeysFn split_keys_ = kernels::scalar::split_keys;
    std::size_t kept_ = 0, pending_ = 0;
    std::uint64_t floor_ = 0;  // keys at or below it cannot enter
    std::uint64_t best_ = 0;   // buffered mode: the largest key pushed
};

}  // namespace recbatch
