# shellcheck shell=bash disable=SC2034
# (SC2034: the HOST_* and LAB_* settings are used by the sourcing scripts.)
# Shared definitions and helpers for the Yardmaster test lab.
# Sourced by up.sh, down.sh and fault.sh; not meant to be run on its own.
#
# The lab is three "hosts" on this one machine. Each host is its own dockerd
# (with its own managed containerd) plus its own sshd, listening on its own
# loopback address. Everything a host owns lives under $LAB/hosts/<name>/, and
# every process we start is identified later by its pid file AND by a path of
# ours in its command line, so we never signal a process we did not start
# (other dockerds/sshds may run on this machine).

# ---------------------------------------------------------------- topology --

LAB_HOSTS=(n1 n2 n3)
declare -A HOST_ADDR=([n1]=127.0.0.11 [n2]=127.0.0.12 [n3]=127.0.0.13)
# Engine labels, as shown by `docker info` (space separated key=value).
declare -A HOST_ENGINE_LABELS=(
  [n1]="farm.node=n1 role=general"
  [n2]="farm.node=n2 gpu=yes"
  [n3]="farm.node=n3 arch=arm64"
)
# What the farm file declares for each node (labels list and job slots).
declare -A HOST_FARM_LABELS=([n1]="linux, general" [n2]="linux, gpu" [n3]="linux, arm64")
declare -A HOST_SLOTS=([n1]=4 [n2]=2 [n3]=1)

LAB_PORT=2222
LAB_USER=yardlab
LAB_GROUP=yardlab-docker
# iptables comment that marks every rule the lab adds, so down.sh can find them.
LAB_RULE_TAG=yardmaster-lab
LAB_DEFAULT_IMAGE=lab/debian:bookworm
# Bump when the recipe of the lab images changes: images whose label differs
# are re-imported by up.sh.
LAB_IMAGE_REV=1

# Absolute, normalised paths: we compare them against /proc/mounts and process
# command lines, so "/x//y/" and "/x/y" must not differ.
LAB=$(realpath -m "${YARDMASTER_LAB_DIR:-/var/lib/yardmaster-lab}")
LAB_CACHE=$(realpath -m "${YARDMASTER_LAB_CACHE:-/var/cache/yardmaster-lab}")
LAB_TIMEOUT=${YARDMASTER_LAB_TIMEOUT:-60}   # seconds to wait for a daemon

# ------------------------------------------------------------------ lock --

# One up/down/fault change at a time (test suites may call lab:up from
# several workers). The lock is an flock on fd 9, released when the script
# exits; every daemon we start gets fd 9 closed, or it would hold the lock
# forever.
lab_lock() {
  mkdir -p "$LAB"
  exec 9>"$LAB/lock"
  if ! flock -w "${YARDMASTER_LAB_LOCK_WAIT:-600}" 9; then
    lab_die "another lab up/down/fault is still running (lock $LAB/lock held for ${YARDMASTER_LAB_LOCK_WAIT:-600}s)"
  fi
}

# ----------------------------------------------------------------- output --

lab_log() { printf '[lab] %s\n' "$*"; }
lab_warn() { printf '[lab] WARNING: %s\n' "$*" >&2; }
lab_die() {
  printf '[lab] ERROR: %s\n' "$*" >&2
  exit 1
}

lab_require_root() {
  [[ $(id -u) -eq 0 ]] || lab_die "must run as root (it starts dockerd/sshd and creates a user)"
}

# Unix socket paths are limited to 107 bytes (sun_path). The longest one we
# create is containerd's debug socket; refuse early with a clear message
# instead of letting containerd fail with an obscure bind error.
lab_check_socket_paths() {
  local longest="$LAB/hosts/n1/exec/containerd/containerd-debug.sock"
  if ((${#longest} >= 100)); then
    lab_die "YARDMASTER_LAB_DIR is too long: $longest is ${#longest} chars (unix sockets need < 100)"
  fi
}

# -------------------------------------------------------------- per host --

lab_host_known() {
  [[ -n ${HOST_ADDR[$1]:-} ]] || lab_die "unknown lab host '$1' (hosts: ${LAB_HOSTS[*]})"
}
host_dir() { printf '%s/hosts/%s' "$LAB" "$1"; }
host_sock() { printf '%s/docker.sock' "$(host_dir "$1")"; }
host_docker() { docker -H "unix://$(host_sock "$1")" "${@:2}"; }

# ------------------------------------------------------------- processes --

# Print the pid recorded in pidfile $1 if that process is alive (not a zombie)
# and its command line contains $2; print nothing otherwise. The command-line
# check protects against a stale pid file whose pid was reused by someone else.
lab_pid_from_file() {
  local pidfile=$1 marker=$2 pid
  [[ -r $pidfile ]] || return 0
  pid=$(tr -dc '0-9' <"$pidfile" 2>/dev/null) || return 0
  [[ -n $pid ]] || return 0
  lab_pid_matches "$pid" "$marker" && printf '%s' "$pid"
  return 0
}

# True if $1 is alive (not a zombie) and its command line contains $2.
lab_pid_matches() {
  local pid=$1 marker=$2 cmdline
  [[ -r /proc/$pid/cmdline ]] || return 1
  [[ $(lab_proc_state "$pid") != Z ]] || return 1
  cmdline=$(lab_cmdline "$pid") || return 1
  [[ $cmdline == *"$marker"* ]]
}

# Command line of pid $1, arguments joined by spaces; fails if it is gone.
# (2>/dev/null before the < redirection: a vanished /proc entry is normal.)
lab_cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline"; }

# One-letter process state (R, S, T = stopped by SIGSTOP, Z = zombie, ...).
lab_proc_state() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }         # the comm field may contain spaces: cut after ")"
  printf '%s' "${stat%% *}"
}

dockerd_pid() { lab_pid_from_file "$(host_dir "$1")/docker.pid" "$(host_sock "$1")"; }
sshd_pid() { lab_pid_from_file "$(host_dir "$1")/sshd.pid" "$(host_dir "$1")/sshd_config"; }

# dockerd starts and supervises its own containerd, whose config lives in our
# exec-root. It writes containerd.pid there; we double check via the command
# line, which names that config file.
containerd_pid() {
  local d
  d=$(host_dir "$1")
  lab_pid_from_file "$d/exec/containerd/containerd.pid" "$d/exec/containerd/containerd.toml"
}

# All descendants of pid $1 (children, grandchildren, ...), one per line.
lab_descendants() {
  local -A kids=()
  local f rest pid ppid
  for f in /proc/[0-9]*/stat; do
    rest=$(cat "$f" 2>/dev/null) || continue
    pid=${f#/proc/}
    pid=${pid%/stat}
    rest=${rest##*) }
    rest=${rest#* }         # drop state
    ppid=${rest%% *}
    kids[$ppid]+="$pid "
  done
  local queue=("$1") cur child
  while ((${#queue[@]})); do
    cur=${queue[0]}
    queue=("${queue[@]:1}")
    for child in ${kids[$cur]:-}; do
      printf '%s\n' "$child"
      queue+=("$child")
    done
  done
}

# Wait until pid $1 is gone (or a zombie) for at most $2 seconds.
lab_wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while [[ -e /proc/$pid ]] && [[ $(lab_proc_state "$pid") != Z ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
  return 0
}

# SIGTERM, wait, then SIGKILL. A stopped (SIGSTOPped) process never acts on
# SIGTERM, so send SIGCONT as well.
lab_stop_pid() {
  local pid=$1 what=$2 grace=${3:-20}
  kill -TERM "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true
  if ! lab_wait_gone "$pid" "$grace"; then
    lab_warn "$what (pid $pid) did not exit within ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    lab_wait_gone "$pid" 10 || lab_die "$what (pid $pid) survived SIGKILL"
  fi
}

# Every live process whose command line mentions $1 (default: any of our
# host dirs): dockerd, containerd, containerd-shim, sshd listeners. Matching
# is done here, not with a grep in a pipeline, which would match itself.
lab_processes() {
  local want=${1:-$LAB/hosts/} f pid cmdline
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [[ $pid != "$$" && $pid != "${BASHPID:-}" ]] || continue
    cmdline=$(lab_cmdline "$pid") || continue
    [[ $cmdline == *"$want"* ]] || continue
    [[ $(lab_proc_state "$pid") != Z ]] || continue
    printf '%s %s\n' "$pid" "$cmdline"
  done
}

# ---------------------------------------------------------------- mounts --

# Mount points under directory $1, deepest first. /proc/mounts escapes spaces
# and friends as octal (\040); printf %b decodes them.
lab_mounts_under() {
  local dir=$1 _dev mnt _rest
  while read -r _dev mnt _rest; do
    mnt=$(printf '%b' "$mnt")
    if [[ $mnt == "$dir" || $mnt == "$dir"/* ]]; then printf '%s\n' "$mnt"; fi
  done </proc/mounts | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2- | uniq
}

# Unmount everything under $1; lazily if a plain umount fails (busy).
lab_unmount_under() {
  local m
  while IFS= read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || lab_warn "could not unmount $m"
  done < <(lab_mounts_under "$1")
}

# -------------------------------------------------------------- iptables --

# The rule that makes a host unreachable (connections to its sshd hang).
lab_drop_rule() {
  printf '%s\n' INPUT -d "${HOST_ADDR[$1]}/32" -p tcp -m tcp --dport "$LAB_PORT" \
    -m comment --comment "$LAB_RULE_TAG" -j DROP
}

# Lab rules currently in INPUT, as `iptables -S` prints them ("-A INPUT ...").
lab_iptables_rules() {
  command -v iptables >/dev/null 2>&1 || return 0
  iptables -w -S INPUT 2>/dev/null | grep -F -- "--comment $LAB_RULE_TAG" || true
}

# Delete every rule tagged with our comment. Returns how many were removed.
lab_remove_all_rules() {
  local line n=0
  local -a rule
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    read -r -a rule <<<"${line/#-A /}"
    iptables -w -D "${rule[@]}" && n=$((n + 1))
  done < <(lab_iptables_rules)
  LAB_RULES_REMOVED=$n
}

# ------------------------------------------------------------- starting --

# Show why dockerd for host $1 failed: its decisive error line(s), which
# are otherwise buried under a screenful of shutdown chatter, then the tail.
lab_dockerd_failure() {
  local log
  log=$(host_dir "$1")/dockerd.log
  printf '[lab] last lines of %s:\n' "$log" >&2
  tail -n 12 "$log" | cut -c1-300 >&2
  printf '[lab] errors:\n' >&2
  grep -E 'failed to start daemon|level=(fatal|error)' "$log" | tail -n 3 | cut -c1-400 >&2 || true
}

# Storage driver for every lab engine. Decided once by up.sh (overlay2 if it
# works here, else vfs) and remembered, since images live per driver.
lab_storage_driver() {
  if [[ -n ${YARDMASTER_LAB_STORAGE_DRIVER:-} ]]; then
    printf '%s' "$YARDMASTER_LAB_STORAGE_DRIVER"
  elif [[ -s $LAB/storage-driver ]]; then
    cat "$LAB/storage-driver"
  else
    printf 'overlay2'
  fi
}

# The dockerd command line for host $1 with storage driver $2.
lab_dockerd_args() {
  local name=$1 driver=$2 d label
  d=$(host_dir "$name")
  local -a args=(
    dockerd
    # Own state everywhere, so several engines coexist on one machine.
    --data-root "$d/data" --exec-root "$d/exec"
    --pidfile "$d/docker.pid" -H "unix://$d/docker.sock"
    # Our own config file (see lab_start_dockerd): a machine-wide
    # /etc/docker/daemon.json must not leak into (or conflict with) the lab.
    --config-file "$d/daemon.json"
    # No docker0 bridge and no iptables/forwarding changes: lets several
    # daemons coexist and keeps the host's network untouched. Containers get
    # no outside network ("IPv4 forwarding is disabled" warning: harmless).
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false
    --storage-driver "$driver"
    # Socket owned by root:yardlab-docker, mode 660: the ssh user reaches it
    # through group membership, as on a real farm node.
    --group "$LAB_GROUP"
    # If a system containerd runs (/run/containerd/containerd.sock exists),
    # dockerd uses it instead of starting its own: separate namespaces keep
    # the lab engines from seeing each other's containers even then.
    --containerd-namespace "yardlab-$name" --containerd-plugins-namespace "yardlab-$name-plugins"
  )
  for label in ${HOST_ENGINE_LABELS[$name]}; do
    args+=(--label "$label")
  done
  printf '%s\n' "${args[@]}"
}

# Start dockerd for host $1 with driver $2 and wait until it answers.
# Returns 0 when up, 2 when the daemon died during startup (caller may retry
# with another driver), and dies on a timeout.
lab_start_dockerd() {
  lab_spawn_dockerd "$1" "$2"
  lab_await_dockerd "$1" "$LAB_SPAWNED_PID"
}

# Start dockerd for host $1 with driver $2 without waiting for it (several
# engines then start at once); its pid is left in LAB_SPAWNED_PID.
lab_spawn_dockerd() {
  local name=$1 driver=$2 d
  d=$(host_dir "$name")
  mkdir -p "$d/data" "$d/exec"
  # "deprecated-key-path" (config file only, no flag in 20.10): each engine
  # its own identity key. The default, /etc/docker/key.json, is shared, and
  # then all three engines report the same engine ID in `docker info`.
  printf '{ "deprecated-key-path": "%s/key.json" }\n' "$d" >"$d/daemon.json"
  # A stale pid file (from a killed daemon) makes dockerd refuse to start if
  # that pid happens to be alive now.
  rm -f "$d/docker.pid"
  local -a args
  mapfile -t args < <(lab_dockerd_args "$name" "$driver")
  printf '%s\n' "${args[@]}" >"$d/dockerd.args"
  printf '\n===== %s starting: %s\n' "$(date -Is)" "${args[*]}" >>"$d/dockerd.log"
  # setsid: the daemon must not belong to the caller's process group or
  # terminal (npm, a CI step or a shell killing its group would take the lab
  # down with it). In a non-interactive script `setsid` does not fork, so $!
  # is dockerd's pid.
  # 9>&-: do not hand our lock fd (see lab_lock) to a daemon that outlives us.
  setsid "${args[@]}" >>"$d/dockerd.log" 2>&1 </dev/null 9>&- &
  LAB_SPAWNED_PID=$!
}

# Wait until dockerd $2 of host $1 answers: 0 when up, 2 when it died during
# startup, dies on a timeout (YARDMASTER_LAB_TIMEOUT).
lab_await_dockerd() {
  local name=$1 pid=$2 d deadline last size limit
  d=$(host_dir "$name")
  deadline=$((SECONDS + LAB_TIMEOUT))
  # A dockerd that keeps logging is working (removing what a killed one left: stale sandboxes,
  # half a second each): the wait counts from its last line, up to five times the limit.
  limit=$((SECONDS + 5 * LAB_TIMEOUT))
  last=$(stat -c %s "$d/dockerd.log" 2>/dev/null || echo 0)
  until timeout 5 docker -H "unix://$d/docker.sock" info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [[ $(lab_proc_state "$pid") == Z ]]; then
      wait "$pid" 2>/dev/null || true
      return 2
    fi
    size=$(stat -c %s "$d/dockerd.log" 2>/dev/null || echo 0)
    if ((size != last)); then
      last=$size
      deadline=$((SECONDS + LAB_TIMEOUT < limit ? SECONDS + LAB_TIMEOUT : limit))
    fi
    if ((SECONDS >= deadline)); then
      printf '[lab] ERROR: dockerd for %s did not answer within %ss\n' "$name" "$LAB_TIMEOUT" >&2
      lab_dockerd_failure "$name"
      exit 1
    fi
    sleep 0.3
  done
  return 0
}

lab_write_sshd_config() {
  local name=$1 d
  d=$(host_dir "$name")
  cat <<EOF
# sshd for lab host $name (generated by test/lab/up.sh; rewritten on every up)
ListenAddress ${HOST_ADDR[$name]}:$LAB_PORT
AddressFamily inet
HostKey $d/hostkey
PidFile $d/sshd.pid
LogLevel VERBOSE

# Key authentication only, for the lab user only.
AllowUsers $LAB_USER
PermitRootLogin no
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $LAB/client/authorized_keys
# The key files live under $LAB, owned by root: skip the ownership checks.
StrictModes no
# No PAM: no login session machinery needed (the account must then not be
# "locked" in /etc/shadow, see up.sh).
UsePAM no
PrintMotd no
PrintLastLog no

# \`docker system dial-stdio\` (what \`docker -H ssh://\` and dockerode's ssh
# protocol run on the far side) talks to DOCKER_HOST: this host's own engine.
SetEnv DOCKER_HOST=unix://$d/docker.sock

# Clients may also forward straight to the docker socket (OpenSSH streamlocal)
# and use a node as a jump host to another node.
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no

# OpenSSH defaults, written out because a client that pools one connection
# per node must stay within them: at most 10 channels (sessions) per
# connection, and unauthenticated connections beyond 10 start to be dropped.
MaxSessions 10
MaxStartups 10:30:100

Subsystem sftp internal-sftp
EOF
}

# True if something listens on TCP $1:$2. Read from /proc/net/tcp rather than
# by connecting, so that it also works while fault.sh makes the host
# unreachable (a connect would hang), and needs no ss/netstat.
lab_listening() {
  local a b c d hex
  IFS=. read -r a b c d <<<"$1"
  hex=$(printf '%02X%02X%02X%02X:%04X' "$d" "$c" "$b" "$a" "$2")
  # fields: sl local_address rem_address st ...; st 0A = LISTEN
  awk -v want="$hex" '$2 == want && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}

# Start sshd for host $1 (config must already be written) and wait until it
# listens on its address.
lab_start_sshd() {
  local name=$1 d addr deadline err
  d=$(host_dir "$name")
  addr=${HOST_ADDR[$name]}
  mkdir -p /run/sshd   # privilege separation directory, required by sshd
  chmod 755 /run/sshd
  rm -f "$d/sshd.pid"
  if ! err=$(/usr/sbin/sshd -t -f "$d/sshd_config" 2>&1); then
    lab_die "sshd config for $name is invalid: $err"
  fi
  # sshd daemonises itself; setsid keeps even the short-lived parent out of
  # our process group.
  if ! setsid /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" </dev/null 9>&-; then
    printf '[lab] ERROR: sshd for %s failed to start. Last lines of %s:\n' "$name" "$d/sshd.log" >&2
    tail -n 15 "$d/sshd.log" >&2
    exit 1
  fi
  deadline=$((SECONDS + 15))
  until [[ -n $(sshd_pid "$name") ]] && lab_listening "$addr" "$LAB_PORT"; do
    if ((SECONDS >= deadline)); then
      printf '[lab] ERROR: sshd for %s is not listening on %s:%s. Last lines of %s:\n' \
        "$name" "$addr" "$LAB_PORT" "$d/sshd.log" >&2
      tail -n 15 "$d/sshd.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}
