#!/bin/bash
# The prepared run for a lent many-core machine (no network there; its python3 has numpy, cmake,
# ninja, pybind11 and scikit-build-core, not the job layer's boto3, smart_open or orjson): builds
# the working tree, then issue 5's whole jobs on all cores, target 5 (threads, W2 in full) and
# target 4's log-sum-exp at W1 (two of its cores, then one). Writes its tables to $OUT, the most
# wanted first. About 5 minutes on 16 cores (session 9's tables: NOTES entry 48).
#
# Here, before the call (the job layer's wheels for the machine's Python 3.12, 17 MB):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl \
#     boto3 botocore s3transfer jmespath smart_open orjson
# Optionally an earlier version of the job layer's files in .ab/old/ (excluded too): the jobs
# then also run with those files, for a before/after on the same machine.
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
  # Personalized ranking: 200,000 lines (its job's thread, not the kernel, sets its pace).
  for job in "aws-user-personalization" "aws-similar-items" "aws-personalized-ranking --lines 200000"; do
    for tree in /tmp/rb /tmp/rb_old; do
      [ -d $tree ] || continue
      echo "## $job, package at $tree"
      PYTHONPATH=$tree:/tmp/site python3 benchmarks/job_benchmark.py --recipe $job
    done
  done 2>&1 | grep -v "work files" | tee "$OUT/jobs_all_cores.txt"
  stamp jobs
fi

cd benchmarks || exit 1
# Target 5: W2 in full (20,000 queries), the curve 1-16 threads, the FMA loop beside each point.
python3 thread_scaling.py --queries 20000 --threads 1,2,4,8,16 --repeat 3 | tee "$OUT/threads_w2_full.md"
stamp threads-w2-full
# Target 4: the log-sum-exp's overhead at W1 on two of its cores, then one, alternated with the
# float path it is measured against (best of 5 each turn).
for threads in 2 1; do
  cores=$([ $threads = 2 ] && echo 0,1 || echo 0)
  for turn in 1 2 3; do
    for options in level=avx512 level=avx512,logsumexp; do
      echo "threads $threads turn $turn $options: $(taskset -c $cores /tmp/bc/search_only W1 960 5 $threads $options | tail -1)"
    done
  done
done | tee "$OUT/lse_w1_2of16.txt"
stamp total
