// Portable kernel: plain C++ that every CPU of the architecture runs (the compiler may
// auto-vectorise it with the baseline ISA only). It is also the reference the SIMD
// kernels are tested against.
#include <cmath>

#include "kernels/score_tile.hpp"
#include "kernels/thinning.hpp"

namespace recbatch::kernels::scalar {
namespace {

constexpr std::size_t kBlock = 32;

void score_row_block(const float* query, const float* panel, std::size_t dim, float* out) {
    float acc[kBlock] = {};
    for (std::size_t d = 0; d < dim; ++d) {
        const float q = query[d];
        const float* column = panel + d * kBlock;
        for (std::size_t j = 0; j < kBlock; ++j) acc[j] += q * column[j];
    }
    for (std::size_t j = 0; j < kBlock; ++j) out[j] = acc[j];
}

// A block's 32 lanes, for the thinning skeletons (thinning.hpp).
struct Lanes {
    float v[kBlock];
    static Lanes lowest() {
        Lanes lanes;
        for (float& x : lanes.v) x = -INFINITY;
        return lanes;
    }
    void take_max(const float* block, std::uint32_t lanes) {
        for (std::size_t j = 0; j < kBlock; ++j)
            if ((lanes >> j) & 1u) v[j] = std::fmax(v[j], block[j]);
    }
    void store(float* out) const {
        for (std::size_t j = 0; j < kBlock; ++j) out[j] = v[j];
    }
    static std::uint32_t at_least(const float* block, float bound) {
        std::uint32_t keep = 0;
        for (std::size_t j = 0; j < kBlock; ++j) keep |= static_cast<std::uint32_t>(block[j] >= bound) << j;
        return keep;
    }
};

}  // namespace

void score_tile(const TileJob& job) {
    const std::size_t row_floats = job.n_blocks * kBlock;
    for (std::size_t r = 0; r < job.n_rows; ++r) {
        float* row_scores = job.scores + r * row_floats;
        const std::uint32_t* eligible = job.eligible + r * job.eligible_stride;
        const float threshold = job.thresholds[r];
        for (std::size_t b = 0; b < job.n_blocks; ++b) {
            float* out = row_scores + b * kBlock;
            score_row_block(job.queries[r], job.panels + b * job.dim * kBlock, job.dim, out);
            std::uint32_t mask = 0;
            for (std::size_t j = 0; j < kBlock; ++j)
                mask |= static_cast<std::uint32_t>(out[j] >= threshold) << j;
            if ((mask & eligible[b]) == 0) continue;
            job.candidates[r * job.n_blocks + b] = mask & eligible[b];
            job.flagged[r * job.flag_words + b / 64] |= std::uint64_t{1} << (b % 64);
        }
        if (job.lse_max == nullptr) continue;
        float tile_max = -INFINITY;
        for (std::size_t b = 0; b < job.n_blocks; ++b)
            for (std::size_t j = 0; j < kBlock; ++j)
                if ((eligible[b] >> j) & 1u) tile_max = std::fmax(tile_max, row_scores[b * kBlock + j]);
        if (tile_max == -INFINITY) continue;
        if (tile_max > job.lse_max[r]) {
            job.lse_sum[r] *= std::exp(static_cast<double>(job.lse_max[r]) - tile_max);
            job.lse_max[r] = tile_max;
        }
        const float shift = job.lse_max[r];
        double sum = 0.0;
        for (std::size_t b = 0; b < job.n_blocks; ++b)
            for (std::size_t j = 0; j < kBlock; ++j)
                if ((eligible[b] >> j) & 1u) sum += std::exp(static_cast<double>(row_scores[b * kBlock + j] - shift));
        job.lse_sum[r] += sum;
    }
}

void lane_maxima(const TileJob& job, float* out) { lane_maxima_with<Lanes>(job, out); }

// All 32 x 32 comparisons, without a branch (which the compiler turns into vector compares of
// the baseline ISA): a sorted insertion took several times as long (its branches mispredict on
// random scores), std::nth_element longer still.
float kth_largest_lane(const float* values, std::size_t k) {
    float kth = -INFINITY;
    for (std::size_t i = 0; i < kBlock; ++i) {
        std::uint32_t reaching = 0;
        for (std::size_t j = 0; j < kBlock; ++j) reaching += values[j] >= values[i] ? 1u : 0u;
        kth = reaching >= k && values[i] > kth ? values[i] : kth;
    }
    return kth;
}

void keep_at_least(const TileJob& job, const float* bounds) { keep_at_least_with<Lanes>(job, bounds); }

}  // namespace recbatch::kernels::scalar
