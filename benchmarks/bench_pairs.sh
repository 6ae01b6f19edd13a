#!/bin/bash
# Two builds of alexnet-split timed in turn by `bench`, pair by pair: A B A B ... Each pair's
# img/s ratio A/B is taken while the machine is in one state, so the median ratio means something
# on a shared, drifting machine where single img/s figures do not.
#
#   benchmarks/bench_pairs.sh [--mpi] ROUNDS BINARY_A BINARY_B -- BENCH_ARGUMENTS...
#
# --mpi runs each under `mpirun -np 2` with one OpenBLAS thread per rank (the split model);
# without it, one process (give --one-process or --simulate among the bench arguments).
# OPENBLAS_CORETYPE, if set, is passed on (e.g. Haswell for the AVX2 kernels). For example,
# the build of an older commit against this one's, the small split step on AVX2 kernels:
#
#   git worktree add /tmp/old OLD_COMMIT && (cd /tmp/old && swift build -c release)
#   OPENBLAS_CORETYPE=Haswell benchmarks/bench_pairs.sh --mpi 4 .build/release/alexnet-split \
#       /tmp/old/.build/release/alexnet-split -- --preset small --batch-size 128 --steps 30 --warmup 1
set -euo pipefail
mpi=0
if [ "${1:-}" = --mpi ]; then mpi=1; shift; fi
rounds=${1:?usage: bench_pairs.sh [--mpi] ROUNDS BINARY_A BINARY_B -- BENCH_ARGUMENTS...}
a=${2:?binary A}
b=${3:?binary B}
shift 3
[ "${1:-}" = -- ] && shift

# img/s of one `bench --json` run of binary $1 with the bench arguments.
images_per_second() {
    local binary=$1; shift
    local command=("$binary" bench --json "$@")
    if [ $mpi = 1 ]; then
        local pass=(-x OPENBLAS_NUM_THREADS=1)
        [ -n "${OPENBLAS_CORETYPE:-}" ] && pass+=(-x OPENBLAS_CORETYPE)
        command=(mpirun --allow-run-as-root --oversubscribe "${pass[@]}" -np 2 "${command[@]}")
    fi
    "${command[@]}" 2>/dev/null | grep '^{' | tail -1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["images_per_second"])'
}

ratios=()
for round in $(seq "$rounds"); do
    x=$(images_per_second "$a" "$@")
    y=$(images_per_second "$b" "$@")
    ratio=$(python3 -c "print(round($x / $y, 3))")
    printf 'pair %d: A %.1f img/s, B %.1f img/s, A/B %s\n' "$round" "$x" "$y" "$ratio"
    ratios+=("$ratio")
done
python3 - "${ratios[@]}" <<'EOF'
import statistics, sys
r = [float(v) for v in sys.argv[1:]]
print(f"A/B over {len(r)} pairs: median {statistics.median(r):.3f} (range {min(r):.3f}-{max(r):.3f})")
EOF
