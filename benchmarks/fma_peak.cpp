// The float32 FMA peak of this machine: a register-only loop of fused multiply-adds, one per
// thread, no memory traffic. Compiled at run time by benchmarks/limits.py, once per ISA:
//   g++ -O2 -std=c++17 -pthread -mavx2 -mfma          fma_peak.cpp   (8 lanes)
//   g++ -O2 -std=c++17 -pthread -mavx512f -DFMA_AVX512 fma_peak.cpp   (16 lanes)
// Usage: fma_peak THREADS ITERATIONS  ->  prints "seconds gflops cpu_seconds checksum".
// cpu_seconds (the process's CPU time) lets the caller compute the rate per CPU-second, which
// other processes on a busy machine do not lower.
// Twelve independent accumulators cover the FMA latency (4 cycles) times two FMA ports; the
// checksum is printed so that the compiler cannot drop the loop.
#include <immintrin.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#if defined(FMA_AVX512)
using Vec = __m512;
constexpr int kLanes = 16;
static inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline Vec splat(float x) { return _mm512_set1_ps(x); }
static inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
static inline float total(Vec v) { return _mm512_reduce_add_ps(v); }
#else
using Vec = __m256;
constexpr int kLanes = 8;
static inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline Vec splat(float x) { return _mm256_set1_ps(x); }
static inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
static inline float total(Vec v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float sum = 0.0f;
  for (float x : lanes) sum += x;
  return sum;
}
#endif

constexpr int kAccumulators = 12;

static float spin(long iterations, float seed) {
  const Vec mul = splat(1.0f - seed * 1e-7f);
  const Vec inc = splat(seed);
  Vec acc[kAccumulators];
  for (int j = 0; j < kAccumulators; ++j) acc[j] = splat(seed * static_cast<float>(j + 1));
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kAccumulators; ++j) acc[j] = fma(acc[j], mul, inc);
  }
  Vec sum = acc[0];
  for (int j = 1; j < kAccumulators; ++j) sum = add(sum, acc[j]);
  return total(sum);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s THREADS ITERATIONS\n", argv[0]);
    return 2;
  }
  const int threads = std::atoi(argv[1]);
  const long iterations = std::atol(argv[2]);
  std::vector<float> results(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  const std::clock_t cpu_start = std::clock();
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&results, t, iterations] { results[t] = spin(iterations, 1e-3f * (t + 1)); });
  }
  for (auto& worker : pool) worker.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double flops = 2.0 * kLanes * kAccumulators * static_cast<double>(iterations) * threads;
  float checksum = 0.0f;
  for (float r : results) checksum += r;
  std::printf("%.6f %.3f %.6f %g\n", seconds, flops / seconds / 1e9, cpu_seconds, checksum);
  return 0;
}
