// score_tile's orchestration of the one-pass log-sum-exp, shared by the AVX2 and AVX-512 files.
//
// Every row's exponentials are taken against its running maximum from earlier tiles, M (fixed
// for the tile), inside the micro-kernel's epilogue, so scores above M are fine up to M + 88 (a
// float32 exp overflows beyond). A row whose tile sum comes out non-finite (a score that much
// above M, or a NaN) is redone by the two-pass update, which moves M to the tile's maximum.
// A row with no M yet (its first tile) takes it from the tile's first block, scored on its own
// beforehand: any eligible score serves as M, and items are stored by decreasing norm, so that
// block's maximum is rarely far below the row's. (Before, every first tile took the two-pass
// update: a tenth of the work at W3's 20,000 items, at about twice the cost.) A row with no
// eligible item there takes the two-pass update for this tile. The two-pass
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

// Gives every row without a running maximum the largest eligible score of the tile's first
// block, where it has a finite one: the group's rows scored against that block alone, a
// 1 / n_blocks share of the tile's work.
template <class Isa>
void seed_maxima(const TileJob& job) {
    alignas(64) float scores[kMaxRows * 32];
    std::uint32_t eligible[kMaxRows], candidates[kMaxRows];
    std::uint64_t flagged[kMaxRows] = {};
    float lowest[kMaxRows];
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        eligible[r] = job.eligible[r * job.eligible_stride];
        lowest[r] = -INFINITY;  // every eligible score is a candidate, so every one is stored
    }
    TileJob first{};
    first.queries = job.queries;
    first.n_rows = job.n_rows;
    first.panels = job.panels;
    first.n_blocks = 1;
    first.dim = job.dim;
    first.thresholds = lowest;
    first.eligible = eligible;
    first.eligible_stride = 1;
    first.scores = scores;
    first.candidates = candidates;
    first.flagged = flagged;
    first.flag_words = 1;
    Isa::template score<false>(first, nullptr, nullptr);
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        if (job.lse_max[r] > -INFINITY || flagged[r] == 0) continue;
        float top = -INFINITY;
        for (std::size_t j = 0; j < 32; ++j)
            if (((candidates[r] >> j) & 1u) != 0 && scores[r * 32 + j] > top) top = scores[r * 32 + j];
        if (std::isfinite(top)) job.lse_max[r] = top;  // lse_sum is still 0: any M describes it
    }
}

template <class Isa>
void score_tile_with(const TileJob& job) {
    if (job.lse_max == nullptr) return Isa::template score<false>(job, nullptr, nullptr);
    const auto has_max = [&job](std::size_t r) { return job.lse_max[r] > -INFINITY; };
    std::size_t with_max = 0;
    for (std::size_t r = 0; r < job.n_rows; ++r) with_max += has_max(r) ? 1 : 0;
    if (with_max < job.n_rows) {
        seed_maxima<Isa>(job);
        with_max = 0;
        for (std::size_t r = 0; r < job.n_rows; ++r) with_max += has_max(r) ? 1 : 0;
    }
    if (with_max == 0) {  // nothing eligible in the first block of any row
        Isa::template score<false>(job, nullptr, nullptr);
        for (std::size_t r = 0; r < job.n_rows; ++r) Isa::two_pass(job, r);
        return;
    }
    // A row still without M gets shift +inf: its partial sum is dropped, and it takes the
    // two-pass update below. So each row's result depends on its own scores alone, never on the
    // other rows of its group: a query gets the same log-sum-exp in any batch.
    alignas(64) float partial[kMaxRows * Isa::kLanes] = {};
    float shift[kMaxRows];
    for (std::size_t r = 0; r < job.n_rows; ++r) shift[r] = has_max(r) ? job.lse_max[r] * 1.44269504088896341f : INFINITY;
    Isa::template score<true>(job, shift, partial);
    bool rescored = false;
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        if (has_max(r)) {
            const double sum = Isa::lane_sum(partial + Isa::kLanes * r);
            if (std::isfinite(sum)) {
                job.lse_sum[r] += sum * std::exp(0.69314718055994531 * static_cast<double>(shift[r]) -
                                                 static_cast<double>(job.lse_max[r]));
                continue;
            }
        }
        if (!rescored) Isa::template score<false>(job, nullptr, nullptr);  // same candidates again
        rescored = true;
        Isa::two_pass(job, r);
    }
}

}  // namespace
}  // namespace recbatch::kernels
