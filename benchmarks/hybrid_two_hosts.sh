#!/usr/bin/env bash
# The hybrid layout's acceptance measurement (docs/hosts.md, "Replicas across two hosts"): on
# two network-namespace hosts joined at 1 Gbit/s (Tests/hosts/two-hosts.sh), `bench --preset
# paper --batch-size 128` as
#   -np 4 --replica-layout hybrid   (a replica pair per host)
#   -np 4 --replica-layout data
#   -np 2                           (one tower per host)
# in turn, ROUNDS times, then the medians of img/s, of communication plus waiting as a share of
# the step, and whether the measured traffic equals the prediction to the byte.
# Run as root on a quiet machine, from the repository, after `swift build -c release`:
#   benchmarks/hybrid_two_hosts.sh [ROUNDS] [STEPS]      (defaults 3 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-5}
binary="$PWD/.build/release/alexnet-split"
out=$(mktemp -d)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
Tests/hosts/two-hosts.sh check

run() {  # name, slots, ranks, extra bench arguments...
  local name=$1 slots=$2 ranks=$3
  shift 3
  Tests/hosts/two-hosts.sh run --slots "$slots" --rate 1gbit --timeout 1800 -- \
    -np "$ranks" -x OPENBLAS_NUM_THREADS=1 "$binary" bench --preset paper --batch-size 128 \
    --steps "$steps" --warmup 2 --json "$@" >"$out/$name-$round.json"
}

for round in $(seq "$rounds"); do
  run hybrid 2 4 --replica-layout hybrid
  run data 2 4 --replica-layout data
  run two 1 2
done

python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
for name, what in [("hybrid", "-np 4 hybrid"), ("data", "-np 4 --replica-layout data"), ("two", "-np 2")]:
    reports = [json.load(open(f"{out}/{name}-{r}.json")) for r in range(1, rounds + 1)]
    rate = statistics.median(r["images_per_second"] for r in reports)
    step = [statistics.median(r["step_ms"]) for r in reports]
    share = statistics.median((r["communication_ms"] + r["waiting_ms"]) / s for r, s in zip(reports, step))
    exact = all(r["traffic_bytes"] == r["predicted_traffic_bytes"] for r in reports)
    print(f"{what:30s} {rate:7.1f} img/s   communication + waiting {100 * share:5.1f}% of the step   traffic = prediction: {exact}")
PY
echo "reports in $out"
