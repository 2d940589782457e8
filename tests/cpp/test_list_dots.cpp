// The list products of ranking (kernels/list_dots.hpp): the AVX2 kernel against the portable one,
// bit for bit, on floats whose sums round differently in any other order (mixed magnitudes and
// signs), for every dim around the 4-wide body and its leftovers and every row count around the
// kernel's groups of four, from rows anywhere (unaligned, shared, repeated); and both against a
// long double sum within float64's rounding. NaN and infinity come through as products do.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "expect.hpp"
#include "kernels/list_dots.hpp"
#include "recbatch/simd_level.hpp"

namespace {

using recbatch_test::expect;

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

struct Kernel {
    const char* name;
    recbatch::kernels::ListDotsFn fn;
};

std::vector<Kernel> kernels_here() {
    std::vector<Kernel> found{{"scalar", recbatch::kernels::scalar::list_dots}};
#if defined(__x86_64__) || defined(_M_X64)
    if (recbatch::simd_level_available(recbatch::SimdLevel::avx2)) found.push_back({"avx2", recbatch::kernels::avx2::list_dots});
#endif
    return found;
}

void check_random(const std::vector<Kernel>& kernels, std::size_t dim, std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
    // Values from 2^-20 to 2^20: the running sums lose different bits in different orders.
    const auto value = [&] { return std::ldexp(mantissa(rng), static_cast<int>(rng() % 41) - 20); };
    std::vector<float> pool(1 + (n + 3) * dim + 8);  // +1: rows start at odd offsets, unaligned
    for (auto& x : pool) x = value();
    std::vector<float> query(dim + 1);
    for (auto& x : query) x = value();
    std::vector<const float*> rows(n);
    for (std::size_t i = 0; i < n; ++i) {
        // Some rows repeat an earlier one (a list may name an item twice before it is sorted out).
        rows[i] = i > 0 && rng() % 5 == 0 ? rows[rng() % i] : pool.data() + 1 + (rng() % (n + 3)) * dim;
    }
    const float* q = query.data() + 1;  // unaligned too
    const std::string where = "dim=" + std::to_string(dim) + " n=" + std::to_string(n) + " seed=" + std::to_string(seed);

    std::vector<double> want(n + 1, 7.0);
    kernels[0].fn(q, rows.data(), n, dim, want.data());
    expect(want[n] == 7.0, where + " scalar wrote past n");
    for (std::size_t i = 0; i < n; ++i) {
        long double exact = 0, magnitude = 0;
        for (std::size_t d = 0; d < dim; ++d) {
            const long double product = static_cast<long double>(q[d]) * rows[i][d];
            exact += product;
            magnitude += std::fabs(product);
        }
        // Each float64 addition errs by at most half an ulp of its result, each result at most
        // the sum of the magnitudes: dim additions, well within dim * 2^-52 of it.
        const long double bound = static_cast<long double>(dim) * magnitude * std::ldexp(1.0L, -52);
        expect(std::fabs(static_cast<long double>(want[i]) - exact) <= bound, where + " scalar row " + std::to_string(i));
    }
    for (std::size_t k = 1; k < kernels.size(); ++k) {
        std::vector<double> got(n + 1, 7.0);
        kernels[k].fn(q, rows.data(), n, dim, got.data());
        bool same = got[n] == 7.0;
        for (std::size_t i = 0; i < n; ++i) same &= same_bits(got[i], want[i]);
        expect(same, where + " " + kernels[k].name + " differs from scalar");
    }
}

// Infinity and NaN in a row: each kernel gives what the products give (inf, -inf or NaN).
void check_special(const std::vector<Kernel>& kernels) {
    const float inf = INFINITY;
    const std::vector<float> query = {1, 2, 0, 1, 1, 1};
    const std::vector<float> a = {inf, 0, 0, 0, 0, 0}, b = {inf, -inf, 0, 0, 0, 0}, c = {0, 0, inf, 0, 0, 0},
                             d = {0, 0, 0, 0, 0, NAN}, e = {-inf, 1, 1, 1, 1, 1};
    const std::vector<const float*> rows = {a.data(), b.data(), c.data(), d.data(), e.data()};
    for (const Kernel& kernel : kernels) {
        double out[5];
        kernel.fn(query.data(), rows.data(), rows.size(), 6, out);
        const std::string where = std::string(kernel.name) + " special values";
        expect(out[0] == INFINITY, where + ": inf");
        expect(std::isnan(out[1]), where + ": inf - inf");
        expect(std::isnan(out[2]), where + ": 0 * inf");
        expect(std::isnan(out[3]), where + ": NaN in the leftover dimensions");
        expect(out[4] == -INFINITY, where + ": -inf");
    }
}

}  // namespace

int main() {
    const std::vector<Kernel> kernels = kernels_here();
    std::printf("list_dots kernels here:");
    for (const Kernel& kernel : kernels) std::printf(" %s", kernel.name);
    std::printf("\n");
    std::uint64_t seed = 1;
    for (std::size_t dim = 0; dim <= 19; ++dim)
        for (std::size_t n = 0; n <= 9; ++n) check_random(kernels, dim, n, seed++);
    for (std::size_t dim : {31, 32, 33, 64, 67, 128, 300})
        for (std::size_t n : {1, 4, 7, 50}) check_random(kernels, dim, n, seed++);
    check_special(kernels);
    return recbatch_test::report("test_list_dots");
}
