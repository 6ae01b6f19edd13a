#!/usr/bin/env bash
# The recipe of docs/hosts.md under Slurm, three jobs of scripts/slurm/train.sbatch on one run
# directory; run it inside a cluster (one-node.sh run -- scancel-and-resume.sh BINARY FOLDER):
#   1. mpirun launches the ranks; once a checkpoint after step 19 exists, `scancel JOBID`.
#   2. The same submission again: it resumes. srun --mpi=pmix launches the ranks (mpirun if
#      this Slurm lacks PMIx); once it has written a checkpoint, `scancel --batch --signal=TERM JOBID`: the
#      signal that --signal=B:TERM@120 sends before the time limit.
#   3. The same submission again, with mpirun, to the end (sbatch --wait).
# Each job's output is FOLDER/job<n>.out, and after each job the script prints
# "after job <n>: <the run's checkpoints>". The training options are TRAIN-ARGUMENTS, and
# the run directory is FOLDER/run.
#
#   scancel-and-resume.sh BINARY FOLDER TRAIN-ARGUMENTS...
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scancel-and-resume.sh BINARY FOLDER TRAIN-ARGUMENTS..." >&2; exit 64; }
binary=$1 folder=$2
shift 2
script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/slurm/train.sbatch"
export ALEXNET_SPLIT=$binary RUN_DIR=$folder/run
# The test runs as root (CI does); Open MPI refuses root unless told, and sbatch passes the
# environment on to the job's mpirun.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

say() { echo "scancel-and-resume: $*" >&2; }

# Submits job $1 with launcher $2 on this one node (2 tasks, 1 CPU each); more sbatch options follow.
submit() {
  local n=$1 launch=$2
  shift 2
  LAUNCHER=$launch sbatch --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --output="$folder/job$n.out" \
    "$@" "$script" "${train[@]}"
}

# Waits (at most $3 s) until file $1 has a line matching $2.
wait_for_line() {
  local i
  for i in $(seq $(($3 * 5))); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  say "no line matching '$2' in $1 after $3 s:"
  cat "$1" >&2 2>/dev/null || true
  return 1
}

# Waits (at most 90 s) until job $1 has left the queue. (The job's last line, which
# train.sbatch prints once the launcher has ended, comes first: squeue may stop listing a
# cancelled job before its processes have ended.)
wait_for_end() {
  local i
  for i in $(seq 450); do
    squeue -h -j "$1" 2>/dev/null | grep -q . || return 0
    sleep 0.2
  done
  say "job $1 still queued after 90 s"
  return 1
}

checkpoints() { echo "after job $1: $(ls "$RUN_DIR/checkpoints" 2>/dev/null | tr '\n' ' ')"; }

# Waits (at most $2 s) until the run has a complete checkpoint (its manifest written) after step
# $1. Checkpoints, not output lines: mpirun may pass the ranks' output on to the job's file only
# in large pieces, long after it was printed.
wait_for_checkpoint_after() {
  local i step
  for i in $(seq $(($2 * 5))); do
    for step in $(ls "$RUN_DIR/checkpoints" 2>/dev/null | sed -n 's/^step-0*\([0-9][0-9]*\)$/\1/p'); do
      [ "$step" -gt "$1" ] && [ -f "$RUN_DIR/checkpoints/$(printf 'step-%07d' "$step")/manifest.json" ] && return 0
    done
    sleep 0.2
  done
  say "no checkpoint after step $1 in $RUN_DIR after $2 s; the queue, the node and the jobs' output:"
  { squeue -a; sinfo -N -l; tail -n 20 "$folder"/job*.out; } >&2 2>/dev/null || true
  return 1
}

# The newest complete checkpoint's step (0 when there is none).
newest_checkpoint() {
  ls "$RUN_DIR/checkpoints" 2>/dev/null | sed -n 's/^step-0*\([0-9][0-9]*\)$/\1/p' | sort -n | tail -n 1 | grep . || echo 0
}

launcher=mpirun
if srun --mpi=list 2>&1 | grep -qw pmix; then launcher=srun; fi
echo "job 2 launcher: $launcher"

train=("$@")
job=$(submit 1 mpirun --parsable)
wait_for_checkpoint_after 19 120
scancel "$job"
wait_for_line "$folder/job1.out" "exited with status" 90
wait_for_end "$job"
checkpoints 1

job=$(submit 2 "$launcher" --parsable)
wait_for_checkpoint_after "$(newest_checkpoint)" 120
scancel --batch --signal=TERM "$job"
wait_for_line "$folder/job2.out" "exited with status" 90
wait_for_end "$job"
checkpoints 2

submit 3 mpirun --wait >/dev/null || true
checkpoints 3
