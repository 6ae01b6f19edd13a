#!/bin/bash
# Times the small preset's convolutions (every algorithm, and GEMM forward with Winograd
# gradients), LRNs, ReLUs and poolings at the shapes of one tower (rank 0 of `mpirun -np 2`),
# batch 128, with AlexNetCore built at two commits, in one process: the two versions run in
# turn, seven times each, and each one's best thread-CPU time counts (so other processes on a
# shared machine inflate the figures less than wall time would).
#
#   benchmarks/small_stage_timing/run.sh BEFORE_COMMIT [AFTER_COMMIT] [FILTER]   (AFTER defaults to HEAD)
#
# FILTER keeps the rows whose label contains it (e.g. "conv3", "winograd-4x4 bwd"). "fwd" is the
# forward pass, "wgrad" the backward pass without the input gradient, "bwd" with it.
# Set OPENBLAS_CORETYPE (Haswell, SkylakeX, ...) to choose OpenBLAS's kernels.
set -euo pipefail
before=${1:?usage: run.sh BEFORE_COMMIT [AFTER_COMMIT] [FILTER]}
after=${2:-HEAD}
filter=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../two_commits.sh"
for name in Old New; do
    build_core_at "$([ $name = Old ] && echo "$before" || echo "$after")" "${name}Core"
    # The same stage list, built once against each version.
    { echo "import ${name}Core"; sed "s/CORE/$name/; s/Core\./${name}Core./g" "$here/stages.swift.in"; } > "$work/stages$name.swift"
done
swiftc "${flags[@]}" -I "$work" -L "$work" -lOldCore -lNewCore -Xlinker -rpath -Xlinker "$work" \
    "$here/main.swift" "$work/stagesOld.swift" "$work/stagesNew.swift" -o "$work/small_stage_timing"
echo "OpenBLAS kernels: ${OPENBLAS_CORETYPE:-(chosen by OpenBLAS)}; before $before, after $after"
OPENBLAS_NUM_THREADS=1 "$work/small_stage_timing" "$filter"
