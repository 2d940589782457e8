// score_tile's orchestration of the one-pass log-sum-exp, shared by the AVX2 and AVX-512 files.
//
// Every row's exponentials are taken against its running maximum from earlier tiles, M (fixed
// for the tile), inside the micro-kernel's epilogue, so scores above M are fine up to M + 88 (a
// float32 exp overflows beyond). A row whose tile sum comes out non-finite (a score that much
// above M, or a NaN) is redone by the two-pass update, which moves M to the tile's maximum; so
// is every row while some row of the group has no M yet (its first eligible tile). The two-pass
// update rereads every score of the tile, which the fused pass does not store (24 stores per
// block and a hot score buffer, paid on every tile for a rare event): the first overflowing row
// of a tile has it scored again, this time storing everything. The scaled exponent
// t = s log2(e) - round(M log2(e)) uses a rounded shift; the exact factor
// exp(M - ln2 round(M log2(e))) is applied in double.
//
// Isa (a type in the including file's anonymous namespace, so each copy is that file's own):
//   static constexpr std::size_t kLanes;   partial sums per row
//   template <bool Lse> static void score(const TileJob&, const float* shift, float* partial);
//   static double lane_sum(const float* lanes);           the kLanes partial sums of one row
//   static void two_pass(const TileJob&, std::size_t row);
#pragma once

#include <cmath>

#include "kernels/score_tile.hpp"

namespace recbatch::kernels {
namespace {

template <class Isa>
void score_tile_with(const TileJob& job) {
    if (job.lse_max == nullptr) return Isa::template score<false>(job, nullptr, nullptr);
    bool fused = true;
    for (std::size_t r = 0; r < job.n_rows; ++r) fused = fused && job.lse_max[r] > -INFINITY;
    if (!fused) {
        Isa::template score<false>(job, nullptr, nullptr);
        for (std::size_t r = 0; r < job.n_rows; ++r) Isa::two_pass(job, r);
        return;
    }
    alignas(64) float partial[kMaxRows * Isa::kLanes] = {};
    float shift[kMaxRows];
    for (std::size_t r = 0; r < job.n_rows; ++r) shift[r] = job.lse_max[r] * 1.44269504088896341f;
    Isa::template score<true>(job, shift, partial);
    bool rescored = false;
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        const double sum = Isa::lane_sum(partial + Isa::kLanes * r);
        if (std::isfinite(sum)) {
            job.lse_sum[r] += sum * std::exp(0.69314718055994531 * static_cast<double>(shift[r]) -
                                             static_cast<double>(job.lse_max[r]));
            continue;
        }
        if (!rescored) Isa::template score<false>(job, nullptr, nullptr);  // same candidates again
        rescored = true;
        Isa::two_pass(job, r);
    }
}

}  // namespace
}  // namespace recbatch::kernels
