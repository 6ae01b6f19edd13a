#!/bin/bash
# Times the stages that the speed work changed (conv1's convolution, both LRNs) at the paper's
# shapes, batch 128, with AlexNetCore built at two commits, in one process: the two versions run
# in turn, five times each, and each one's best thread-CPU time counts (so other processes on a
# shared machine inflate the figures less than wall time would).
#
#   benchmarks/stage_timing/run.sh BEFORE_COMMIT [AFTER_COMMIT]    (AFTER defaults to HEAD)
#
# Prints ms per call before and after and their ratio, and whether the LRN's results are the
# same bits. Set OPENBLAS_CORETYPE (Haswell, SkylakeX, ...) to choose OpenBLAS's kernels.
set -euo pipefail
before=${1:?usage: run.sh BEFORE_COMMIT [AFTER_COMMIT]}
after=${2:-HEAD}
source "$(dirname "$0")/../two_commits.sh"
build_core_at "$before" OldCore
build_core_at "$after" NewCore
swiftc "${flags[@]}" -I "$work" -L "$work" -lOldCore -lNewCore -Xlinker -rpath -Xlinker "$work" \
    "$(dirname "$0")/main.swift" -o "$work/stage_timing"
echo "OpenBLAS kernels: ${OPENBLAS_CORETYPE:-(chosen by OpenBLAS)}; before $before, after $after"
OPENBLAS_NUM_THREADS=1 "$work/stage_timing"
