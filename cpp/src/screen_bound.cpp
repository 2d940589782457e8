// The int8 screening pass's bound (levels avx2_int8, avx512_vnni, amx_int8).
//
// Per query q (float32) the driver picks s_q = max_i |q_i| / L (float32) and
// q8 = round(q / s_q) in [-L, L], L = 127 (31 for avx2_int8's 6-bit queries); PackedItems holds, per block of 32 items, one scale s_v
// and v8 = round(v / s_v) for each item v. With q~ = s_q q8 and v~ = s_v v8 (real numbers),
// for the real inner product p = q . v:
//     p = q~ . v~ + (q - q~) . v + q~ . (v - v~)
//     |p - s_q s_v (q8 . v8)| <= |q - q~| |v| + |q~| |v - v~|          (Cauchy-Schwarz)
// The float32 score f the kernel computes is a chain of d FMAs from 0, so
// |f - p| <= gamma_d sum_i |q_i v_i| <= gamma_d |q| |v|, gamma_d = d u / (1 - d u), u = 2^-24,
// plus an absolute d * 2^-150 where products fall into the subnormal range (no partial sum
// can overflow: rows where |q| max|v| comes near FLT_MAX are not screened). Hence
//     f <= s_q [ s_v D + a |v| + b |v - v~| ] + A,   D = q8 . v8 (exact in int32),
//     a >= (|q - q~| + gamma_d |q|) / s_q,  b >= |q~| / s_q,  A = (d + 16) 2^-149,
// and with N >= |v|, R >= |v - v~| (per block, rounded up) and t <= (T - A) / s_q:
//     f >= T  implies  D >= (t - a N - b R) / s_v.
// The kernel evaluates the right-hand side in float32 with every rounding directed down
// (the subtracted terms rounded up; AVX2 has no directed rounding, so avx2_int8 evaluates it
// in double and subtracts a margin that covers its roundings), floors it to an int32 threshold and compares the
// exact integer D against it; whatever does not fit (NaN, overflow, s_v = 0) gives INT_MIN,
// which flags everything. a, b and t below carry a further (1 + 1e-6) and 4u margin,
// which covers every double rounding here. So an item that is not flagged provably cannot
// reach the query's current k-th best score T.
// Flagged blocks are rescored by the float kernel's own arithmetic (score_blocks) and
// pushed under the plain path's rule (score >= T, eligible), so every heap sees exactly
// the pushes it sees on the float level: results, and even pruning decisions, are
// identical. Rows where the bound cannot be trusted (s_q not a normal float, a float32
// score that could overflow, T = +inf) get t = -inf: every item is rescored.

#include "screen_bound.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace recbatch::screen {
namespace {

constexpr double kUnit = 0x1p-24;

// The float32 nearest to x, moved down (up) one step where it is above (below) x.
float round_down(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) > x) f = std::nextafter(f, -INFINITY);
    return f;
}
float round_up(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) < x) f = std::nextafter(f, INFINITY);
    return f;
}

}  // namespace

RowBound quantise_query(const float* q, std::size_t dim, std::size_t groups, double norm, double max_item_norm,
                        int levels, std::uint8_t* bytes) {
    RowBound out;
    std::fill(bytes, bytes + groups * 4, static_cast<std::uint8_t>(levels + 1));
    float max_abs = 0.0f;
    for (std::size_t d = 0; d < dim; ++d) max_abs = std::max(max_abs, std::fabs(q[d]));
    const float scale = max_abs / static_cast<float>(levels);
    const double gamma = (static_cast<double>(dim) + 2.0) * kUnit / (1.0 - (static_cast<double>(dim) + 2.0) * kUnit);
    if (!(scale >= FLT_MIN) || !(gamma < 0.5)) return out;
    // No partial sum of a float32 score may overflow: |q| |v| (1 + gamma) well below FLT_MAX.
    if (!(norm * max_item_norm * 4.0 < static_cast<double>(FLT_MAX))) return out;
    double residual = 0.0, quantised = 0.0;
    for (std::size_t d = 0; d < dim; ++d) {
        const double q8 = std::clamp(std::nearbyint(static_cast<double>(q[d]) / scale), -double(levels), double(levels));
        bytes[d] = static_cast<std::uint8_t>(static_cast<int>(q8) + levels + 1);
        const double approx = static_cast<double>(scale) * q8;
        residual += (q[d] - approx) * (q[d] - approx);
        quantised += approx * approx;
    }
    const double inflate = 1.0 + 1e-9;
    const double eq = std::sqrt(residual) * inflate, nqt = std::sqrt(quantised) * inflate, nq = norm * inflate;
    out.scale = scale;
    out.a = round_up((eq + gamma * nq + 4.0 * kUnit * nqt) * (1.0 + 1e-6) / scale);
    out.b = round_up(nqt * (1.0 + 4.0 * kUnit) * (1.0 + 1e-6) / scale);
    out.ok = std::isfinite(out.a) && std::isfinite(out.b);
    return out;
}

// The screening threshold t for a row whose current k-th best score is T.
float screen_threshold(const RowBound& row, float threshold, std::size_t dim) {
    if (!row.ok || !(threshold > -INFINITY) || !(threshold < INFINITY)) return -INFINITY;
    const double absolute = (static_cast<double>(dim) + 16.0) * 0x1p-149;
    double x = (static_cast<double>(threshold) - absolute) / row.scale;
    x -= std::fabs(x) * 1e-12 + 4.0 * 0x1p-149;
    return round_down(x);
}

}  // namespace recbatch::screen
