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
// of a tile has it scored again, this time storing everything. The scaled exponent is
// t = s L - shift, with L = log2(e) and shift = M L both rounded to float32; the factor that
// makes the sum e^(s - M) again is applied in double (see score_tile_with). Rows whose |M|
// exceeds 2^22 take the two-pass update, where the float32 shift is too coarse.
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

// A running maximum beyond +-2^22 takes the two-pass update: the float32 shift M log2(e) is
// off by up to half its last unit, which there could push every 2^t of a row below float32's
// range unnoticed (a sum of zeros is finite).
constexpr float kFusedMaxMagnitude = 4194304.0f;

template <class Isa>
void score_tile_with(const TileJob& job) {
    if (job.lse_max == nullptr) return Isa::template score<false>(job, nullptr, nullptr);
    const auto has_max = [&job](std::size_t r) { return job.lse_max[r] > -INFINITY; };
    const auto fused = [&job](std::size_t r) {
        return job.lse_max[r] > -INFINITY && std::fabs(job.lse_max[r]) <= kFusedMaxMagnitude;
    };
    std::size_t with_max = 0;
    for (std::size_t r = 0; r < job.n_rows; ++r) with_max += has_max(r) ? 1 : 0;
    if (with_max < job.n_rows) seed_maxima<Isa>(job);
    std::size_t n_fused = 0;
    for (std::size_t r = 0; r < job.n_rows; ++r) n_fused += fused(r) ? 1 : 0;
    if (n_fused == 0) {  // nothing eligible in the first block of any row, or only huge scores
        Isa::template score<false>(job, nullptr, nullptr);
        for (std::size_t r = 0; r < job.n_rows; ++r) Isa::two_pass(job, r);
        return;
    }
    // A row not fused (no M yet, or a huge one) gets shift +inf: its partial sum is dropped, and
    // it takes the two-pass update below. So each row's result depends on its own scores alone,
    // never on the other rows of its group: a query gets the same log-sum-exp in any batch.
    constexpr float kLog2e = 1.44269504088896341f;
    alignas(64) float partial[kMaxRows * Isa::kLanes] = {};
    float shift[kMaxRows];
    for (std::size_t r = 0; r < job.n_rows; ++r) shift[r] = fused(r) ? job.lse_max[r] * kLog2e : INFINITY;
    Isa::template score<true>(job, shift, partial);
    bool rescored = false;
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        if (fused(r)) {
            const double sum = Isa::lane_sum(partial + Isa::kLanes * r);
            if (std::isfinite(sum)) {
                // The lanes hold 2^(s L - shift) with L = float32(log2(e)); times 2^(shift - M L),
                // that is e^((s - M) L ln 2): exact at s = M, and as L ln 2 = 1 - 1.3e-8, a term
                // 100 below M is off by 1.3e-6 of itself. (A factor e^(shift ln 2 - M) put every
                // term off by 1.3e-8 |s|: 0.013 of the log-sum-exp at scores of a million.)
                const double ml = static_cast<double>(kLog2e) * static_cast<double>(job.lse_max[r]);
                job.lse_sum[r] += sum * std::exp2(static_cast<double>(shift[r]) - ml);
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
