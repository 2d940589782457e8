#!/bin/bash
# The prepared run for a lent many-core machine (no network there; its python3 has numpy, cmake,
# ninja, pybind11 and scikit-build-core): builds the working tree, then targets 5 (threads, W2) and
# 1 (two of its cores) of issue 5. Writes its tables to $OUT. About 4 minutes on 16 cores.
#   bash benchmarks/device_run.sh
cd "$(dirname "$0")/.." || exit 1
export CMAKE_BUILD_PARALLEL_LEVEL=16
t0=$(date +%s)
{ nproc; grep -m1 "model name" /proc/cpuinfo; grep -m1 -o -w "amx_tile\|amx_int8\|avx512_vnni" /proc/cpuinfo | sort -u | tr '\n' ' '; echo; uname -r; } | tee "$OUT/machine.txt"
python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/rb . > /tmp/b1.log 2>&1 || { tail -30 /tmp/b1.log; exit 1; }
(cmake -S cpp -B /tmp/bc -DCMAKE_BUILD_TYPE=Release -DRECBATCH_BUILD_BENCHMARKS=ON -G Ninja > /tmp/b2.log 2>&1 && cmake --build /tmp/bc --target search_share -j16 >> /tmp/b2.log 2>&1) || tail -20 /tmp/b2.log
echo "build $(( $(date +%s) - t0 )) s" | tee -a "$OUT/machine.txt"
export PYTHONPATH=/tmp/rb
python3 -c "import recbatch; print('levels', recbatch.available_simd_levels(), 'default', recbatch.simd_level())" | tee -a "$OUT/machine.txt"
cd benchmarks
python3 thread_scaling.py --queries 4000 --threads 1,2,4,8,16 --repeat 2 | tee "$OUT/threads_default.md"
echo "t $(( $(date +%s) - t0 )) s"
python3 thread_scaling.py --queries 4000 --threads 1,2,4,8,16 --levels avx512 --repeat 2 --no-peak | tee "$OUT/threads_avx512.md"
echo "t $(( $(date +%s) - t0 )) s"
# The path of CPUs without AVX-512 (entry 42), for its scaling on many cores.
python3 thread_scaling.py --queries 4000 --threads 1,4,16 --levels avx2_int8,avx2 --repeat 2 --no-peak | tee "$OUT/threads_avx2.md"
echo "t $(( $(date +%s) - t0 )) s"
for w in W1 W2 W3; do taskset -c 0,1 /tmp/bc/search_share $w "" 15 2; done | tee "$OUT/search_share_2of16.md"
echo "t $(( $(date +%s) - t0 )) s"
taskset -c 0,1 python3 efficiency.py --threads 2 --scale 0.1 --repeat 5 | tee "$OUT/efficiency_2of16cores.md"
echo "t $(( $(date +%s) - t0 )) s"
for w in W1 W2 W3; do taskset -c 0 /tmp/bc/search_share $w "" 10 1; done | tee "$OUT/search_share_1of16.md"
echo "total $(( $(date +%s) - t0 )) s"
