// A fixed-size top-k buffer kept as a binary min-heap over (score, index) stored in two
// parallel arrays: the caller's output row itself, so selection needs no extra memory.
// The root is the worst kept entry; "worse" means lower score, or equal score and higher
// index, which makes results independent of scan order and thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace recbatch {

class TopKHeap {
public:
    TopKHeap(float* scores, std::int64_t* indices, std::size_t k) : scores_(scores), indices_(indices), k_(k) {}

    // Empty slots hold the padding sentinel (-inf, -1), worse than any real item.
    void reset() {
        std::fill(scores_, scores_ + k_, -INFINITY);
        std::fill(indices_, indices_ + k_, std::int64_t{-1});
    }

    float threshold() const { return scores_[0]; }

    void push(float score, std::int64_t index) {
        if (!better(score, index, scores_[0], indices_[0])) return;
        // Sift the new entry down from the root, replacing the worst.
        std::size_t i = 0;
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= k_) break;
            if (child + 1 < k_ && better(scores_[child], indices_[child], scores_[child + 1], indices_[child + 1]))
                ++child;
            if (better(score, index, scores_[child], indices_[child])) {
                scores_[i] = scores_[child];
                indices_[i] = indices_[child];
                i = child;
            } else {
                break;
            }
        }
        scores_[i] = score;
        indices_[i] = index;
    }

    // Rewrites the row best first; padding sentinels end up last.
    void sort_descending(std::vector<std::pair<float, std::int64_t>>& scratch) {
        scratch.clear();
        for (std::size_t i = 0; i < k_; ++i) scratch.emplace_back(scores_[i], indices_[i]);
        std::sort(scratch.begin(), scratch.end(), [](const auto& a, const auto& b) {
            if (a.second < 0 || b.second < 0) return b.second < 0 && a.second >= 0;
            return better(a.first, a.second, b.first, b.second);
        });
        for (std::size_t i = 0; i < k_; ++i) {
            scores_[i] = scratch[i].first;
            indices_[i] = scratch[i].second;
        }
    }

private:
    static bool better(float score, std::int64_t index, float other_score, std::int64_t other_index) {
        return score > other_score || (score == other_score && index < other_index);
    }

    float* scores_;
    std::int64_t* indices_;
    std::size_t k_;
};

}  // namespace recbatch
