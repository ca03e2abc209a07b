#!/usr/bin/env bash
# Inject (and undo) faults on lab hosts, for tests of how Yardmaster copes
# with a farm that misbehaves.
#
#   fault.sh unreachable  <host>  packets to its sshd are dropped: new
#                                 connections hang until the client's timeout,
#                                 open ones stall (a network partition)
#   fault.sh heal         <host>  undo `unreachable`
#   fault.sh sshd-stop    <host>  stop its sshd listener: "connection refused".
#                                 Open sessions survive, as with a real
#                                 `systemctl stop ssh`.
#   fault.sh sshd-start   <host>  undo `sshd-stop`
#   fault.sh cut-sessions <host>  end every open SSH connection to it (its sshd
#                                 kills them, as when a link flaps or a NAT
#                                 forgets them); new connections work at once
#   fault.sh freeze       <host>  SIGSTOP its dockerd and containerd: SSH works,
#                                 docker API calls hang (engine wedged);
#                                 running containers keep running
#   fault.sh thaw         <host>  undo `freeze` (SIGCONT)
#   fault.sh engine-stop  <host>  stop its dockerd (engine gone: dial-stdio
#                                 fails); its containers stop with it
#   fault.sh engine-start <host>  undo `engine-stop` (images are kept)
#   fault.sh status               state of every host
#
# <host> is n1, n2, n3 or all. Every action is idempotent. `up.sh` also heals
# and thaws everything, and `down.sh` removes whatever is left.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$HERE/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# The iptables rule for host $1, as arguments for -C/-I/-D.
rule_args() { mapfile -t RULE < <(lab_drop_rule "$1"); }
is_unreachable() {
  rule_args "$1"
  iptables -w -C "${RULE[@]}" 2>/dev/null
}

do_unreachable() {
  local name=$1
  command -v iptables >/dev/null || lab_die "iptables is not installed (apt-get install iptables)"
  if is_unreachable "$name"; then
    lab_log "$name: already unreachable"
  else
    rule_args "$name"
    iptables -w -I "${RULE[@]}"
    lab_log "$name: unreachable (iptables -I INPUT -d ${HOST_ADDR[$name]} -p tcp --dport $LAB_PORT -j DROP)"
  fi
}

do_heal() {
  local name=$1 n=0
  command -v iptables >/dev/null || { lab_log "$name: reachable (no iptables here)"; return; }
  while is_unreachable "$name"; do
    iptables -w -D "${RULE[@]}"
    n=$((n + 1))
  done
  if ((n)); then lab_log "$name: reachable again (removed DROP rule)"; else lab_log "$name: already reachable"; fi
}

do_sshd_stop() {
  local name=$1 pid
  pid=$(sshd_pid "$name")
  if [[ -z $pid ]]; then
    lab_log "$name: sshd already stopped"
    return
  fi
  lab_stop_pid "$pid" "sshd $name" 10
  lab_log "$name: sshd stopped (was pid $pid); connections to ${HOST_ADDR[$name]}:$LAB_PORT are refused"
}

do_cut_sessions() {
  local name=$1 pid n
  pid=$(sshd_pid "$name")
  [[ -n $pid ]] || lab_die "$name: sshd is not running"
  # The listener forks one process per connection; ending those ends the connections.
  n=$(pgrep -c -P "$pid" || true)
  pkill -TERM -P "$pid" || true
  lab_log "$name: cut ${n:-0} open SSH connection(s); the listener (pid $pid) still accepts new ones"
}

do_sshd_start() {
  local name=$1 pid d
  d=$(host_dir "$name")
  pid=$(sshd_pid "$name")
  if [[ -n $pid ]]; then
    lab_log "$name: sshd already running (pid $pid)"
    return
  fi
  [[ -s $d/sshd_config ]] || lab_die "$name: no $d/sshd_config; run up.sh first"
  lab_start_sshd "$name"
  lab_log "$name: sshd started (pid $(sshd_pid "$name"))"
}

# dockerd plus the containerd it started: freezing only dockerd leaves its
# containerd answering, which is not what a wedged engine looks like.
engine_pids() {
  local name=$1 dpid cpid
  dpid=$(dockerd_pid "$name")
  [[ -n $dpid ]] || return 0
  cpid=$(containerd_pid "$name")
  # Only a containerd that really is dockerd's child (not a system one).
  if [[ -n $cpid ]] && ! lab_descendants "$dpid" | grep -qx "$cpid"; then cpid=""; fi
  printf '%s\n' "$dpid" ${cpid:+"$cpid"}
}

do_freeze() {
  local name=$1 pids
  mapfile -t pids < <(engine_pids "$name")
  ((${#pids[@]})) || lab_die "$name: dockerd is not running"
  kill -STOP "${pids[@]}"
  lab_log "$name: engine frozen (SIGSTOP dockerd pid ${pids[0]}${pids[1]:+, containerd pid ${pids[1]}}); docker API calls now hang"
}

do_thaw() {
  local name=$1 pids
  mapfile -t pids < <(engine_pids "$name")
  if ((${#pids[@]} == 0)); then
    lab_log "$name: dockerd is not running, nothing to thaw"
    return
  fi
  kill -CONT "${pids[@]}"
  lab_log "$name: engine thawed (SIGCONT dockerd pid ${pids[0]}${pids[1]:+, containerd pid ${pids[1]}})"
}

do_engine_stop() {
  local name=$1 pid
  pid=$(dockerd_pid "$name")
  if [[ -z $pid ]]; then
    lab_log "$name: dockerd already stopped"
    return
  fi
  lab_stop_pid "$pid" "dockerd $name" 30
  lab_unmount_under "$(host_dir "$name")"
  lab_log "$name: dockerd stopped (was pid $pid)"
}

do_engine_start() {
  local name=$1 pid rc=0
  pid=$(dockerd_pid "$name")
  if [[ -n $pid ]]; then
    lab_log "$name: dockerd already running (pid $pid)"
    return
  fi
  lab_start_dockerd "$name" "$(lab_storage_driver)" || rc=$?
  if ((rc)); then
    printf '[lab] ERROR: %s: dockerd exited during startup\n' "$name" >&2
    lab_dockerd_failure "$name"
    exit 1
  fi
  lab_log "$name: dockerd started (pid $(dockerd_pid "$name"))"
}

# One line per host: what a test (or a human) needs to know.
do_status() {
  local name d pid state sshd engine net containers
  printf '%-4s %-17s %-22s %-34s %-12s %s\n' HOST ADDRESS SSHD ENGINE NETWORK CONTAINERS
  for name in "${LAB_HOSTS[@]}"; do
    d=$(host_dir "$name")
    pid=$(sshd_pid "$name")
    sshd=${pid:+running (pid $pid)}
    sshd=${sshd:-stopped}
    pid=$(dockerd_pid "$name")
    containers=-
    if [[ -z $pid ]]; then
      engine=stopped
    else
      state=$(lab_proc_state "$pid")
      if [[ $state == T ]]; then
        engine="frozen (pid $pid)"
      elif containers=$(timeout 5 docker -H "unix://$d/docker.sock" ps -q 2>/dev/null | wc -l); then
        engine="running (pid $pid)"
      else
        engine="NOT ANSWERING (pid $pid)"
        containers=-
      fi
    fi
    net=reachable
    if command -v iptables >/dev/null && is_unreachable "$name"; then net=UNREACHABLE; fi
    printf '%-4s %-17s %-22s %-34s %-12s %s\n' "$name" "${HOST_ADDR[$name]}:$LAB_PORT" \
      "$sshd" "$engine" "$net" "$containers"
  done
}

action=${1:-}
[[ -n $action ]] || usage
lab_require_root
if [[ $action == status ]]; then
  do_status
  exit 0
fi
case $action in
  unreachable | heal | sshd-stop | sshd-start | cut-sessions | freeze | thaw | engine-stop | engine-start) ;;
  -h | --help | help) usage ;;
  *) printf 'unknown action: %s\n\n' "$action" >&2; usage ;;
esac
target=${2:-}
[[ -n $target ]] || { printf 'missing host (n1, n2, n3 or all)\n\n' >&2; usage; }
if [[ $target == all ]]; then
  targets=("${LAB_HOSTS[@]}")
else
  lab_host_known "$target"
  targets=("$target")
fi
for name in "${targets[@]}"; do
  "do_${action//-/_}" "$name"
done
