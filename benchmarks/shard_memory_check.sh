#!/usr/bin/env bash
# The memory check of streamed shards: rank 0's peak memory training the paper preset must not
# grow with the number of photos.
#
#   bash benchmarks/shard_memory_check.sh WORK [SMALL] [LARGE]    (default 10000 and 100000)
#
# 1. WORK/photos-SMALL: SMALL real-photo crops of 300-500 pixels in 10 synset folders, laid out as
#    ILSVRC-2012 comes (benchmarks/make_fake_imagenet.py; needs scikit-image).
#    WORK/photos-LARGE: the same photos hard-linked LARGE/SMALL times under new names, so the
#    large set costs no more to generate; prepare still decodes, resizes and encodes every one.
# 2. `prepare` both (S = 256, JPEG q90), printing photos/s per core.
# 3. `mpirun -np 2 train --preset paper --max-steps 20` on each, printing each rank's peak RSS
#    (GNU time's %M), and `bench` for the same preset and batch (the model's own need).
set -euo pipefail
work=${1:?usage: shard_memory_check.sh WORK [SMALL] [LARGE]}
small=${2:-10000}
large=${3:-100000}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/.build/release/alexnet-split"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mpi=(mpirun -np 2 --oversubscribe -x OPENBLAS_NUM_THREADS)
mkdir -p "$work"

[ -f "$work/photos-$small/LOC_val_solution.csv" ] ||
    python3 "$here/benchmarks/make_fake_imagenet.py" "$work/photos-$small" --train "$small" --val 500 --classes 10
if [ ! -f "$work/photos-$large/LOC_val_solution.csv" ]; then
    rm -rf "$work/photos-$large"
    python3 - "$work/photos-$small" "$work/photos-$large" "$large" <<'PY'
import os, shutil, sys
small, large, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.copytree(os.path.join(small, "val"), os.path.join(large, "val"), copy_function=os.link)
synsets = sorted(os.listdir(os.path.join(small, "train")))
photos = {s: sorted(os.listdir(os.path.join(small, "train", s))) for s in synsets}
total = sum(len(p) for p in photos.values())
for s in synsets:
    os.makedirs(os.path.join(large, "train", s))
    want = count * len(photos[s]) // total
    for k in range(want):
        name = photos[s][k % len(photos[s])]
        os.link(os.path.join(small, "train", s, name), os.path.join(large, "train", s, f"copy{k // len(photos[s])}_{name}"))
PY
    cp "$work/photos-$small"/*.txt "$work/photos-$small"/*.csv "$work/photos-$large/"
fi

for n in "$small" "$large"; do
    echo "== $n photos: prepare"
    "$bin" prepare "$work/photos-$n" "$work/shards-$n" --val-labels "$work/photos-$n/LOC_val_solution.csv" | grep -v '^prepare:'
    du -sb "$work/shards-$n"
done

echo "== bench, paper preset, batch 128 (the model's own memory)"
"${mpi[@]}" "$bin" bench --preset paper --batch-size 128 --steps 3 --warmup 1 | grep -E "img/s median|peak memory"
echo "== bench --data, paper preset, batch 128"
"${mpi[@]}" "$bin" bench --preset paper --batch-size 128 --steps 5 --warmup 1 --data "$work/shards-$large" |
    grep -E "img/s median|coordinator on the critical path|loader alone|peak memory"

for n in "$small" "$large"; do
    echo "== train --preset paper --max-steps 20 on $n photos"
    "${mpi[@]}" bash -c '/usr/bin/time -f "rank $OMPI_COMM_WORLD_RANK peak RSS %M KB" "$0" "$@" 2>&1' "$bin" train --preset paper \
        --data "$work/shards-$n" --max-steps 20 --batch-size 128 --no-checkpoints --run-dir "$work/run-$n" --log-every 5 |
        grep -E "^data:|rank . peak RSS|step +20/|test accuracy"
done
