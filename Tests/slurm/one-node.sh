#!/usr/bin/env bash
# A Slurm cluster of one node, on this machine, for as long as a command runs.
#
# It starts munged (Slurm's authentication), slurmctld (the controller) and slurmd (the node's
# daemon) from Debian's packages (munge, slurmctld, slurmd, slurm-client), every one with its
# configuration, key, sockets, spool, state, PID and log files in a temporary folder: nothing
# under /etc, /var or /run is read or written (Slurm's commands find the cluster through
# SLURM_CONF). The node has this machine's CPUs, in one partition, `test`.
#
#   one-node.sh check
#       exit 0 if this machine has what it takes; otherwise one line saying why, and exit 77.
#   one-node.sh run [--timeout SECONDS] -- COMMAND...
#       starts the cluster, waits until the node is idle, runs COMMAND with SLURM_CONF set,
#       and stops everything it started, even on failure or Ctrl-C: it cancels the jobs, then
#       kills every process that carries its SLURM_CONF (daemons, job steps, ranks) and removes
#       the folder. COMMAND is killed if still running after --timeout seconds (default 600).
#       Exits with COMMAND's status (124 if it had to be killed), or 77 with the reason when
#       the cluster does not come up here (slurmd cannot start in some containers).
#
# Example (as root, from the repository):
#   Tests/slurm/one-node.sh run -- sh -c 'sbatch --wait -n 2 --wrap "srun hostname"; sinfo'
set -euo pipefail

say() { echo "one-node: $*" >&2; }

# Why this machine cannot run the cluster, or nothing.
unable() {
  [ "$(id -u)" -eq 0 ] || { echo "needs root (slurmd runs jobs as any user)"; return; }
  local command
  for command in munged slurmctld slurmd sbatch; do
    command -v "$command" >/dev/null || { echo "needs $command: apt-get install munge slurmctld slurmd slurm-client"; return; }
  done
  [ "$(nproc)" -ge 2 ] || echo "needs 2 CPUs for a job of 2 tasks; this machine has $(nproc)"
}

# A TCP port nobody listens on, from a range keyed by this process.
free_port() {
  local port=$((20000 + ($$ * 7 + $1 * 1013) % 40000))
  while ss -Htln "sport = :$port" 2>/dev/null | grep -q .; do port=$((port + 1)); done
  echo "$port"
}

write_configuration() {
  local work=$1 host
  host=$(hostname -s)
  cat >"$work/slurm.conf" <<EOF
ClusterName=alexnetsplit
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port 1)
SlurmdPort=$(free_port 2)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge/socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
# No cgroups (a container may not delegate them): track processes by parentage, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

# Starts the three daemons in the foreground of background jobs, each logging to the folder.
start_daemons() {
  local work=$1
  mkdir -p "$work/munge" "$work/state" "$work/spool"
  chmod 755 "$work" "$work/munge"  # munged wants its socket's folders open to all
  head -c 1024 /dev/urandom >"$work/munge/key"
  chmod 400 "$work/munge/key"
  munged --foreground --socket="$work/munge/socket" --key-file="$work/munge/key" --pid-file="$work/munge/pid" \
    --log-file="$work/munge/log" --seed-file="$work/munge/seed" >>"$work/munge/log" 2>&1 &
  local i
  for i in $(seq 50); do [ -S "$work/munge/socket" ] && break; sleep 0.1; done
  slurmctld -D >>"$work/slurmctld.log" 2>&1 &
  slurmd -D >>"$work/slurmd.log" 2>&1 &
}

# Waits until the node takes jobs; prints why not after 30 s.
wait_for_node() {
  local work=$1 i state=""
  for i in $(seq 60); do
    state=$(sinfo -h -o %t 2>/dev/null || true)
    [ "$state" = idle ] && return 0
    sleep 0.5
  done
  echo "the node is not idle after 30 s (state: ${state:-none}); slurmd: $(tail -n 3 "$work/slurmd.log" 2>/dev/null | tr '\n' ' ')slurmctld: $(grep -i error "$work/slurmctld.log" 2>/dev/null | tail -n 2 | tr '\n' ' ')"
}

# Every process started under this cluster (its environment names our slurm.conf), but this script.
processes_of() {
  local marker="SLURM_CONF=$1/slurm.conf" path pid
  for path in /proc/[0-9]*/environ; do
    pid=${path#/proc/}
    pid=${pid%/environ}
    [ "$pid" != $$ ] || continue
    if { tr '\0' '\n' <"$path"; } 2>/dev/null | grep -qxF "$marker"; then echo "$pid"; fi
  done
}

stop_cluster() {
  local work=$1 pids i
  scancel --user="$(id -un)" 2>/dev/null || true  # every job of this private cluster
  for i in 1 2; do
    pids=$(processes_of "$work")
    [ -n "$pids" ] || break
    kill -TERM $pids 2>/dev/null || true
    sleep 1
  done
  pids=$(processes_of "$work")
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

run() {
  local limit=600
  while [ $# -gt 0 ]; do
    case $1 in
      --timeout) limit=$2; shift 2 ;;
      --) shift; break ;;
      *) echo "error: unknown option $1; usage: one-node.sh run [--timeout SECONDS] -- COMMAND..." >&2; exit 64 ;;
    esac
  done
  [ $# -gt 0 ] || { echo "error: no command after --; usage: one-node.sh run -- COMMAND..." >&2; exit 64; }
  local why
  why=$(unable)
  [ -z "$why" ] || { echo "error: cannot start a Slurm node: $why" >&2; exit 77; }

  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/alexnet-slurm-$$.XXXXXX")
  export SLURM_CONF="$work/slurm.conf"
  cleanup() {
    trap - EXIT INT TERM HUP
    stop_cluster "$work"
    rm -rf "$work"
  }
  trap cleanup EXIT
  trap 'cleanup; exit 130' INT
  trap 'cleanup; exit 143' TERM HUP

  write_configuration "$work"
  start_daemons "$work"
  why=$(wait_for_node "$work")
  if [ -n "$why" ]; then
    echo "error: cannot start a Slurm node: $why" >&2
    cleanup
    exit 77
  fi
  say "slurmctld and slurmd are up ($(sinfo -h -o '%P %D node, %c CPUs, %t'))"
  local status=0
  timeout -k 10 "$limit" "$@" || status=$?
  [ "$status" -ne 124 ] || say "the command was still running after $limit s; killed it"
  cleanup
  exit "$status"
}

case ${1:-} in
  check)
    why=$(unable)
    [ -z "$why" ] || { echo "$why"; exit 77; }
    ;;
  run) shift; run "$@" ;;
  *) echo "usage: one-node.sh check | run [--timeout SECONDS] -- COMMAND..." >&2; exit 64 ;;
esac
