#!/usr/bin/env bash
# Two "hosts" on one machine, for running `mpirun --hostfile` across a real TCP link.
#
# Each host is a network namespace (`ip netns`) with its own loopback and one end of a veth
# pair: host 0 is 10.77.0.1 and host 1 is 10.77.0.2, interface `asplit0` on both. mpirun runs
# in host 0 and starts its daemon on host 1 through an rsh agent that does
# `ip netns exec <host 1> sh -c "..."` where a real cluster would do `ssh host1 "..."`.
# The file system is shared, so the binary and the data are at the same path on both hosts,
# except for a folder named with --own-folder: each host has its own (a cluster without a
# shared disk for the run directory).
#
#   two-hosts.sh check
#       exit 0 if this machine can do it; otherwise one line saying why, and exit 77.
#   two-hosts.sh run [--cut-link-when FILE] [--own-folder DIR] [--slots N] [--rate RATE] [--timeout SECONDS] -- MPIRUN-ARGUMENTS...
#       makes the two hosts, runs `mpirun --hostfile <both hosts> --bind-to none <transport
#       options> ARGUMENTS` in host 0, and removes everything it made, even on failure or
#       Ctrl-C. `--bind-to none`: with one slot per host, mpirun would pin each host's rank to
#       core 0, and on one machine both ranks would share that core. The transport
#       options force TCP over the veth link, and mpirun's keepalive makes it notice a lost host
#       within 15 + 3 x 3 = 24 s (alexnet-split's error line comes first if its
#       --collective-timeout is under 9 s; see the README, "Several hosts"). With
#       --cut-link-when, the link goes down as soon as FILE exists (a host vanishing). mpirun
#       is killed if it is still running after --timeout seconds (default 600). With
#       --own-folder, host 1 sees DIR.host1 (made if missing, kept afterwards) at the path DIR,
#       bound there in a mount namespace of its own; host 0 sees DIR itself. --slots N gives
#       each host N slots (default 1: ranks 0..N-1 on host 0, the next N on host 1). --rate
#       limits the link in each direction to RATE (tc's units, e.g. 1gbit) with a token bucket
#       (`tc qdisc ... tbf`), as a slower network would.
#       Exits with mpirun's status (124 if it had to be killed).
#   two-hosts.sh clean
#       removes namespaces left by runs that were killed before they could clean up (those
#       named alexnet-hosts-<pid>-* whose <pid> is gone). `run` does this first too.
#
# Example (as root, from the repository):
#   OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 Tests/hosts/two-hosts.sh run -- \
#       -np 2 -x OPENBLAS_NUM_THREADS=1 "$PWD/.build/release/alexnet-split" train --preset small --epochs 1
#
# It touches nothing outside the namespaces and the temporary folder it makes: no /etc/hosts
# lines (the hostfile uses the addresses), no routes or interfaces of the machine itself.
set -euo pipefail

prefix=alexnet-hosts
interface=asplit0
address=(10.77.0.1 10.77.0.2)

say() { echo "two-hosts: $*" >&2; }

# Why this machine cannot run two hosts, or nothing.
unable() {
  [ "$(id -u)" -eq 0 ] || { echo "needs root (ip netns add)"; return; }
  command -v ip >/dev/null || { echo "needs the ip command: apt-get install iproute2"; return; }
  command -v mpirun >/dev/null || { echo "needs mpirun: apt-get install openmpi-bin"; return; }
  local probe="$prefix-$$-probe"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "ip netns add fails here (no network namespaces in this container?)"
    return
  fi
  ip netns delete "$probe" 2>/dev/null || true
}

# Kills the processes in namespace $1 (all of them started by a run of this script) and deletes it.
remove_namespace() {
  local ns=$1 pids
  [ -e "/run/netns/$ns" ] || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    sleep 0.5
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  fi
  ip netns delete "$ns" 2>/dev/null || true  # deleting host 0 also deletes the veth pair
}

# Namespaces of runs whose script is gone.
clean_leftovers() {
  local path ns owner
  for path in /run/netns/"$prefix"-*; do
    [ -e "$path" ] || continue
    ns=${path##*/}
    owner=${ns#"$prefix"-}
    owner=${owner%%-*}
    case $owner in '' | *[!0-9]*) continue ;; esac
    if ! kill -0 "$owner" 2>/dev/null; then
      say "removing $ns, left by run $owner"
      remove_namespace "$ns"
    fi
  done
}

run() {
  local cut_when="" limit=600 own="" own_namespace="" slots=1 rate=""
  while [ $# -gt 0 ]; do
    case $1 in
      --cut-link-when) cut_when=$2; shift 2 ;;
      --own-folder) own=$(realpath -m "$2"); shift 2 ;;
      --slots) slots=$2; shift 2 ;;
      --rate) rate=$2; shift 2 ;;
      --timeout) limit=$2; shift 2 ;;
      --) shift; break ;;
      *) echo "error: unknown option $1; usage: two-hosts.sh run [--cut-link-when FILE] [--own-folder DIR] [--slots N] [--rate RATE] [--timeout SECONDS] -- MPIRUN-ARGUMENTS..." >&2; exit 64 ;;
    esac
  done
  [ $# -gt 0 ] || { echo "error: no mpirun arguments after --; usage: two-hosts.sh run -- -np 2 PROGRAM ..." >&2; exit 64; }
  local why
  why=$(unable)
  [ -z "$why" ] || { echo "error: cannot make two hosts: $why" >&2; exit 77; }
  clean_leftovers

  local ns=("$prefix-$$-0" "$prefix-$$-1")
  local work watcher=""
  work=$(mktemp -d "${TMPDIR:-/tmp}/$prefix-$$.XXXXXX")
  cleanup() {
    trap - EXIT INT TERM HUP
    [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
    remove_namespace "${ns[0]}"
    remove_namespace "${ns[1]}"
    rm -rf "$work"
  }
  trap cleanup EXIT
  trap 'cleanup; exit 130' INT
  trap 'cleanup; exit 143' TERM HUP

  local i
  for i in 0 1; do
    ip netns add "${ns[$i]}"
    ip -n "${ns[$i]}" link set lo up
  done
  ip link add "$interface" netns "${ns[0]}" type veth peer name "$interface" netns "${ns[1]}"
  for i in 0 1; do
    ip -n "${ns[$i]}" addr add "${address[$i]}/24" dev "$interface"
    ip -n "${ns[$i]}" link set "$interface" up
    # A burst of 1 MB passes at once; beyond it, packets wait (up to 100 ms) for tokens.
    [ -z "$rate" ] || tc -n "${ns[$i]}" qdisc add dev "$interface" root tbf rate "$rate" burst 1mb latency 100ms
  done

  cat >"$work/hostfile" <<EOF
${address[0]} slots=$slots
${address[1]} slots=$slots
EOF
  # Host 1 runs its commands through `enter`, which with --own-folder first binds host 1's own
  # folder over the path (in a mount namespace of its own, made by unshare).
  printf '#!/bin/sh\nexec sh -c "$*"\n' >"$work/enter"
  if [ -n "$own" ]; then
    mkdir -p "$own" "$own.host1"
    cat >"$work/enter" <<EOF
#!/bin/sh
mount --bind '$own.host1' '$own' || exit 255
exec sh -c "\$*"
EOF
    own_namespace="unshare --mount --propagation private"
  fi
  chmod +x "$work/enter"
  # mpirun calls the agent as `agent [options] HOST COMMAND...`, as it would call ssh.
  cat >"$work/agent" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do case \$1 in -*) shift ;; *) break ;; esac; done
host=\$1; shift
echo "\$host" >>"$work/launched"
case \$host in
  ${address[0]}) exec ip netns exec ${ns[0]} sh -c "\$*" ;;
  ${address[1]}) exec ip netns exec ${ns[1]} $own_namespace "$work/enter" "\$*" ;;
  *) echo "two-hosts agent: no host \$host (only ${address[0]} and ${address[1]})" >&2; exit 255 ;;
esac
EOF
  chmod +x "$work/agent"

  if [ -n "$cut_when" ]; then
    (
      while [ ! -e "$cut_when" ]; do sleep 0.1; done
      ip -n "${ns[0]}" link set "$interface" down
      date +%s.%N >"$work/cut"
      say "link down: $cut_when appeared"
    ) &
    watcher=$!
  fi

  local started status=0
  started=$(date +%s.%N)
  timeout -k 10 "$limit" ip netns exec "${ns[0]}" mpirun --hostfile "$work/hostfile" --bind-to none \
    --mca plm_rsh_agent "$work/agent" --mca plm_rsh_no_tree_spawn 1 \
    --mca btl self,tcp --mca btl_tcp_if_include "$interface" --mca oob_tcp_if_include "$interface" \
    --mca oob_tcp_keepalive_time 15 --mca oob_tcp_keepalive_intvl 3 --mca oob_tcp_keepalive_probes 3 \
    "$@" || status=$?
  local ended
  ended=$(date +%s.%N)
  [ "$status" -ne 124 ] || say "mpirun was still running after $limit s; killed it"
  [ ! -e "$work/launched" ] || say "the agent started mpirun's daemon on: $(sort -u "$work/launched" | tr '\n' ' ')"
  if [ -e "$work/cut" ]; then
    say "mpirun exited with status $status, $(awk -v a="$(cat "$work/cut")" -v b="$ended" 'BEGIN { printf "%.1f", b - a }') s after the link went down"
  else
    say "mpirun exited with status $status after $(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }') s"
  fi
  cleanup
  exit "$status"
}

case ${1:-} in
  check)
    why=$(unable)
    [ -z "$why" ] || { echo "$why"; exit 77; }
    ;;
  run) shift; run "$@" ;;
  clean) clean_leftovers ;;
  *) echo "usage: two-hosts.sh check | run [--cut-link-when FILE] [--own-folder DIR] [--slots N] [--rate RATE] [--timeout SECONDS] -- MPIRUN-ARGUMENTS... | clean" >&2; exit 64 ;;
esac
