// The loop skeletons of the first-tile thinning entries (lane_maxima, keep_at_least; contract in
// score_tile.hpp), shared by the ISA files. Each file instantiates them with its own Lanes type,
// which holds the intrinsics:
//   static Lanes lowest();                       32 lanes of -inf
//   void take_max(const float* block, std::uint32_t lanes);  lane-wise maximum with the block's
//                                                scores in the lanes whose bit is set
//   void store(float* out) const;                the 32 lanes
//   static std::uint32_t at_least(const float* block, float bound);  bit j: block[j] >= bound
// Everything here has internal linkage (an unnamed namespace, and each Lanes type lives in its
// file's own), so every copy is that file's, compiled with its flags only.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/score_tile.hpp"

namespace recbatch::kernels {
namespace {

constexpr std::size_t kBlockLanes = 32;

// Does row r's tile flag block b (any candidate)?
inline bool block_flagged(const TileJob& job, std::size_t r, std::size_t b) {
    return ((job.flagged[r * job.flag_words + b / 64] >> (b % 64)) & 1u) != 0;
}

template <class Lanes>
void lane_maxima_with(const TileJob& job, float* out) {
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        Lanes lanes = Lanes::lowest();
        const std::uint32_t* candidates = job.candidates + r * job.n_blocks;
        // Only candidates count (with no threshold yet: the eligible items), so that each lane's
        // maximum is an item's that may enter the top k. Blocks without one hold stale scores.
        for (std::size_t b = 0; job.thresholds[r] == -INFINITY && b < job.n_blocks; ++b)
            if (block_flagged(job, r, b))
                lanes.take_max(job.scores + (r * job.n_blocks + b) * kBlockLanes, candidates[b]);
        lanes.store(out + r * kBlockLanes);
    }
}

template <class Lanes>
void keep_at_least_with(const TileJob& job, const float* bounds) {
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        if (!(bounds[r] > -INFINITY)) continue;
        std::uint32_t* candidates = job.candidates + r * job.n_blocks;
        for (std::size_t b = 0; b < job.n_blocks; ++b)
            if (block_flagged(job, r, b))
                candidates[b] &= Lanes::at_least(job.scores + (r * job.n_blocks + b) * kBlockLanes, bounds[r]);
    }
}

}  // namespace
}  // namespace recbatch::kernels
