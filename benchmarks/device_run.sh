#!/bin/bash
# The prepared run for a lent many-core machine (no network there; its python3 has numpy, cmake,
# ninja, pybind11 and scikit-build-core, not the job layer's boto3, smart_open or orjson): builds
# the working tree, then issue 5's whole jobs on all cores, the user-personalization job's kernel
# on 16 threads (W1's shape, a job's batch against a long call), target 5 (threads, W2) and
# entry 77's exclusions and entry 79's screening pause on two of its cores.
# Writes its tables to $OUT, the most wanted first. About 4 minutes on 16 cores (earlier runs:
# NOTES entries 48 and 55).
#
# Here, before the call (the job layer's wheels for the machine's Python 3.12, 17 MB):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl \
#     boto3 botocore s3transfer jmespath smart_open orjson
# Optionally an earlier version of the job layer's files in .ab/old/ (excluded too): the jobs
# then also run with those files, for a before/after on the same machine. Optionally a whole
# earlier tree in .ab/tree/ (mkdir -p .ab/tree && git archive <commit> | tar -x -C .ab/tree),
# built here too, for a before/after of the extension as well (the ranking jobs only).
# The call: carry [".whl", ".ab"], command `bash benchmarks/device_run.sh`.
cd "$(dirname "$0")/.." || exit 1
export CMAKE_BUILD_PARALLEL_LEVEL=16 PYTHONUNBUFFERED=1
t0=$(date +%s)
stamp() { echo "t $(( $(date +%s) - t0 )) s: $1"; }
{ nproc; grep -m1 "model name" /proc/cpuinfo; grep -m1 -o -w "amx_tile\|amx_int8\|avx512_vnni\|avx_vnni" /proc/cpuinfo | sort -u | tr '\n' ' '; echo; uname -r; } | tee "$OUT/machine.txt"
python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/rb . > /tmp/b1.log 2>&1 || { tail -30 /tmp/b1.log; exit 1; }
(cmake -S cpp -B /tmp/bc -DCMAKE_BUILD_TYPE=Release -DRECBATCH_BUILD_BENCHMARKS=ON -G Ninja > /tmp/b2.log 2>&1 && cmake --build /tmp/bc --target search_share search_only -j16 >> /tmp/b2.log 2>&1) || tail -20 /tmp/b2.log
stamp build | tee -a "$OUT/machine.txt"
site=/tmp/rb
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && site=/tmp/rb:/tmp/site
fi
export PYTHONPATH=$site
python3 -c "import recbatch; print('levels', recbatch.available_simd_levels(), 'default', recbatch.simd_level())" | tee -a "$OUT/machine.txt"

# Whole jobs on all cores (the job layer's Python work beside the kernel's threads).
if python3 -c "import boto3, smart_open, orjson" 2> /dev/null; then
  if [ -d .ab/old ]; then
    cp -r /tmp/rb /tmp/rb_old && cp .ab/old/*.py /tmp/rb_old/recbatch/jobs/
  fi
  if [ -f .ab/tree/pyproject.toml ]; then
    python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/rb_tree .ab/tree > /tmp/b3.log 2>&1 ||
      tail -20 /tmp/b3.log
    stamp "build of .ab/tree" | tee -a "$OUT/machine.txt"
  fi
  # Personalized ranking: 200,000 lines (its job's thread, not the kernel, sets its pace).
  # Ranking twice: with every listed item in the catalogue, and with 1% unknown to it (entry 59).
  for job in "aws-user-personalization" "aws-similar-items" "aws-personalized-ranking --lines 200000" \
    "aws-personalized-ranking --lines 200000 --unknown-items 0.01"; do
    for tree in /tmp/rb /tmp/rb_old /tmp/rb_tree; do
      [ -d $tree ] || continue
      [ $tree = /tmp/rb_tree ] && [ "${job#aws-personalized-ranking}" = "$job" ] && continue
      echo "## $job, package at $tree"
      PYTHONPATH=$tree:/tmp/site python3 benchmarks/job_benchmark.py --recipe $job
    done
  done 2>&1 | grep -v "work files" | tee "$OUT/jobs_all_cores.txt"
  stamp jobs
  # The ranking job's call alone, all threads and one (entries 66-72: predicted a fifth cheaper per
  # line than session 12's, and the job's thread the bound of the whole job).
  for threads in $(nproc) 1; do python3 benchmarks/ranking_call.py --threads $threads --seconds 10; done 2>&1 |
    tee "$OUT/ranking_call.txt"
  stamp ranking-call
fi

cd benchmarks || exit 1
# The user-personalization job's kernel on all cores: the log-sum-exp path (and the float path
# beside it) at W1's shape, per call of a job's batch (4,096 queries) and of 20,000, 16 threads
# and one (best of 3 each): does a batch keep 16 cores as busy as a long call does?
for options in level=avx512,logsumexp level=avx512; do
  for queries in 4096 20000; do
    for threads in 16 1; do /tmp/bc/search_only W1 $queries 3 $threads $options | tail -1; done
  done
done | tee "$OUT/w1_lse_16_threads.txt"
stamp w1-16
# Target 5: W2's shape, 16,000 queries, 1 and 16 threads, the FMA loop beside each.
python3 thread_scaling.py --queries 16000 --threads 1,16 --repeat 3 | tee "$OUT/threads_w2.md"
stamp total
# Entry 77 on an Intel CPU: one exclusion per query (related items' own item) sorted by the rule
# against per-row bitmaps forced, W1's shape with unit items and item queries, two cores, three
# alternated rounds (best of 5 each). Zen 4 gave the sorted path 3-9% at two threads.
for round in 1 2 3; do
  for options in unit,item_queries unit,item_queries,bitmap_rows_from=0 unit; do
    taskset -c 0,1 /tmp/bc/search_only W1 3840 5 2 $options | tail -1
  done
done | tee "$OUT/exclusions_w1_unit.txt"
stamp exclusions
# Entry 78 on many cores: large k, as batch segment jobs ask. A job's batch holds about 4M
# results (recipes.records_per_batch): 41 queries at k = 100,000, 419 at 10,000; 41 queries
# are 4 row groups, so 4 tasks for 16 threads (predicted: a quarter of the cores busy).
for queries in 41 419; do python3 large_k.py --threads "$(nproc)" --no-numpy --queries $queries --ks 10000,100000; done |
  tee "$OUT/large_k.txt"
python3 large_k.py --threads 1 --no-numpy --queries 41 --ks 10000,100000 | tee -a "$OUT/large_k.txt"
stamp large-k
# Entry 79 where the CPU screens with AMX (or VNNI): screening paused where a tile flags more
# than a quarter of its blocks, against never paused (rescore_share=inf) and the float path, at
# k = 2,000 and 10,000 of 200,000 (d = 64), two cores, three alternated rounds (best of 3 each).
# Zen 4 (VNNI): the rule came within noise of the faster of the two paths.
for round in 1 2 3; do
  for k in 2000 10000; do
    for options in "" ,rescore_share=inf ,level=avx512; do
      taskset -c 0,1 /tmp/bc/search_only W1 240 3 2 "m=200000,k=$k$options" | tail -1
    done
  done
done | tee "$OUT/screen_pause.txt"
stamp screen-pause
