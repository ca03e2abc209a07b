#!/usr/bin/env bash
# Take the Yardmaster test lab down: remove every container in each lab
# engine, stop each host's sshd (and its open sessions) and dockerd (and the
# containerd it started), unmount whatever is still mounted under the lab
# dir, and remove the iptables rules fault.sh added.
#
# Processes are found through their pid files and checked against their
# command lines: never by name, since other dockerds and sshds may run here.
#
# Kept for a fast next `up`: host keys, client keys, docker data roots (with
# their imported images) and the image cache.
# Idempotent: with nothing up it just verifies that and exits 0. Exits
# non-zero if a lab process, mount or iptables rule is left at the end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$HERE/lib.sh"

T0=$(date +%s.%N)
lab_require_root

if [[ -d $LAB ]]; then lab_lock; fi

# Network faults first: they do not matter for local sockets, but must not
# outlive the lab.
lab_remove_all_rules
((LAB_RULES_REMOVED == 0)) || lab_log "removed $LAB_RULES_REMOVED iptables rule(s)"

declare -A DOCKERD_PIDS=()
for name in "${LAB_HOSTS[@]}"; do
  d=$(host_dir "$name")
  [[ -d $d ]] || continue
  dpid=$(dockerd_pid "$name")
  cpid=$(containerd_pid "$name")

  # A frozen (SIGSTOPped) engine would make every step below hang.
  for pid in $dpid $cpid; do
    [[ $(lab_proc_state "$pid") == T ]] && kill -CONT "$pid"
  done

  # Containers first, while the engine still runs: dockerd does not kill them
  # reliably on its own shutdown, and their mounts must go too.
  if [[ -n $dpid ]]; then
    if ids=$(timeout 20 docker -H "unix://$d/docker.sock" ps -aq 2>/dev/null) && [[ -n $ids ]]; then
      lab_log "$name: removing $(wc -w <<<"$ids") container(s)"
      # shellcheck disable=SC2086 # one id per word
      timeout 60 docker -H "unix://$d/docker.sock" rm -f $ids >/dev/null ||
        lab_warn "$name: could not remove all containers"
    fi
  fi

  # sshd: the listener's children are the open sessions (e.g. a client's
  # `docker system dial-stdio`); stopping only the listener would leave them.
  spid=$(sshd_pid "$name")
  if [[ -n $spid ]]; then
    mapfile -t sessions < <(lab_descendants "$spid")
    for pid in "${sessions[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${sessions[@]}"; do lab_wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true; done
    lab_log "$name: stopping sshd (pid $spid${sessions:+, ${#sessions[@]} session process(es)})"
    lab_stop_pid "$spid" "sshd $name" 10
  fi

  # Only signal dockerd here: the three shut down in parallel (a second or
  # two each), and the next loop waits for them.
  if [[ -n $dpid ]]; then
    lab_log "$name: stopping dockerd (pid $dpid)"
    kill -TERM "$dpid" 2>/dev/null || true
    DOCKERD_PIDS[$name]=$dpid
  fi
done

for name in "${LAB_HOSTS[@]}"; do
  d=$(host_dir "$name")
  [[ -d $d ]] || continue
  if [[ -n ${DOCKERD_PIDS[$name]:-} ]]; then
    lab_stop_pid "${DOCKERD_PIDS[$name]}" "dockerd $name" 30
  fi
  # dockerd stops its containerd on a clean exit; after a SIGKILL it does not.
  cpid=$(containerd_pid "$name")
  if [[ -n $cpid ]]; then
    lab_log "$name: stopping leftover containerd (pid $cpid)"
    lab_stop_pid "$cpid" "containerd $name" 15
  fi
  # Anything else still naming this host's dirs (a containerd-shim whose
  # container could not be removed): it is ours.
  while read -r pid cmdline; do
    [[ -n $pid ]] || continue
    lab_warn "$name: stopping leftover process $pid: ${cmdline:0:120}"
    lab_stop_pid "$pid" "leftover $pid" 10
  done < <(lab_processes "$d/")

  rm -f "$d/docker.pid" "$d/sshd.pid"
done

# Sessions of the lab user that outlived their sshd (only the lab uses it).
if uid=$(id -u "$LAB_USER" 2>/dev/null); then
  for f in /proc/[0-9]*/status; do
    u=$(awk '/^Uid:/ { print $2; exit }' "$f" 2>/dev/null) || continue
    [[ $u == "$uid" ]] || continue
    pid=${f#/proc/}
    pid=${pid%/status}
    [[ $(lab_proc_state "$pid") != Z ]] || continue   # zombies are already dead
    lab_warn "stopping leftover $LAB_USER process $pid"
    lab_stop_pid "$pid" "$LAB_USER process $pid" 5
  done
fi

# Docker's mounts (data-root bind mount, overlay layers, container shm,
# netns files) normally vanish with a clean shutdown; a killed daemon leaves
# them. Also an interrupted debootstrap's /proc and /sys under the cache.
lab_unmount_under "$LAB"
for b in "$LAB_CACHE"/build.*; do
  [[ -d $b ]] && lab_unmount_under "$b"
done

# ---------------------------------------------------------------- verify --
problems=0
if left=$(lab_processes) && [[ -n $left ]]; then
  printf '[lab] ERROR: lab processes still running:\n%s\n' "$left" >&2
  problems=1
fi
if left=$(lab_mounts_under "$LAB") && [[ -n $left ]]; then
  printf '[lab] ERROR: still mounted under %s:\n%s\n' "$LAB" "$left" >&2
  problems=1
fi
if left=$(lab_iptables_rules) && [[ -n $left ]]; then
  printf '[lab] ERROR: iptables rules still present:\n%s\n' "$left" >&2
  problems=1
fi
((problems == 0)) || exit 1

lab_log "lab is down ($(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }')); kept keys, data roots and image cache for the next up"
