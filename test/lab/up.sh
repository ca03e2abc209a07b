#!/usr/bin/env bash
# Bring up the Yardmaster test lab: three build-farm "hosts" on this machine,
# each its own dockerd + sshd on its own loopback address (port 2222), reached
# over SSH as the unprivileged user "yardlab", exactly as the app reaches real
# farm nodes. Writes the farm file the app loads and a lab.json for tests.
#
# Idempotent: daemons that are already alive are left alone (and keep their
# containers), images already imported are not imported again, keys are
# generated once. A second run takes a couple of seconds.
# Also clears leftovers of fault.sh (iptables DROP rules, frozen daemons), so
# that after `up` the lab is always in its healthy state.
#
# Environment:
#   YARDMASTER_LAB_DIR            state dir (default /var/lib/yardmaster-lab)
#   YARDMASTER_LAB_CACHE          image cache (default /var/cache/yardmaster-lab)
#   YARDMASTER_LAB_STORAGE_DRIVER force a docker storage driver (overlay2, vfs)
#   YARDMASTER_LAB_MIRROR         Debian mirror for debootstrap
#   YARDMASTER_LAB_TIMEOUT        seconds to wait for each daemon (default 60)
#
# Needs (Debian): docker.io openssh-server busybox-static debootstrap iptables (mmdebstrap: faster)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$HERE/lib.sh"

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

lab_require_root
lab_check_socket_paths

missing=()
for cmd in dockerd docker containerd runc /usr/sbin/sshd ssh ssh-keygen debootstrap tar setsid flock; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[[ -x /usr/bin/busybox || -x /bin/busybox ]] || missing+=(busybox)
((${#missing[@]} == 0)) || lab_die "missing: ${missing[*]}.
  Install: apt-get install -y docker.io openssh-server busybox-static debootstrap iptables"

mkdir -p "$LAB/hosts" "$LAB/client" "$LAB_CACHE"
# yardlab must be able to traverse down to each host's docker.sock and read
# the authorized_keys file: keep the directories world-searchable.
chmod 755 "$LAB" "$LAB/hosts" "$LAB/client"
lab_lock

# Remove the temporary debootstrap tree if we are interrupted while building.
BUILD_DIR=""
cleanup_build() {
  [[ -n $BUILD_DIR && -d $BUILD_DIR ]] || return 0
  # debootstrap mounts /proc and /sys inside the target: unmount before
  # deleting, and never let rm cross into another file system.
  lab_unmount_under "$BUILD_DIR"
  if [[ -z $(lab_mounts_under "$BUILD_DIR") ]]; then
    rm -rf --one-file-system "$BUILD_DIR"
  else
    lab_warn "left $BUILD_DIR in place: something is still mounted under it"
  fi
}
trap cleanup_build EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------ leftovers of fault.sh --

lab_remove_all_rules
((LAB_RULES_REMOVED == 0)) || lab_log "removed $LAB_RULES_REMOVED iptables rule(s) left by fault.sh"
for name in "${LAB_HOSTS[@]}"; do
  for pid in $(dockerd_pid "$name") $(containerd_pid "$name"); do
    if [[ $(lab_proc_state "$pid") == T ]]; then
      lab_log "$name: thawing frozen pid $pid (left by fault.sh freeze)"
      kill -CONT "$pid"
    fi
  done
done

# ------------------------------------------------------- user and keys --

if ! getent group "$LAB_GROUP" >/dev/null; then
  groupadd --system "$LAB_GROUP"
  lab_log "created group $LAB_GROUP"
fi
if ! id "$LAB_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --groups "$LAB_GROUP" \
    --comment "Yardmaster test lab" "$LAB_USER"
  lab_log "created user $LAB_USER"
else
  # Someone may have created the user differently: make it what the lab needs.
  id -nG "$LAB_USER" | tr ' ' '\n' | grep -qx "$LAB_GROUP" || usermod -aG "$LAB_GROUP" "$LAB_USER"
  [[ $(getent passwd "$LAB_USER" | cut -d: -f7) == /bin/bash ]] || usermod -s /bin/bash "$LAB_USER"
  home=$(getent passwd "$LAB_USER" | cut -d: -f6)
  if [[ ! -d $home ]]; then
    mkdir -p "$home"
    cp -rT /etc/skel "$home"
    chown -R "$LAB_USER:" "$home"
  fi
fi
# useradd leaves the password field as "!" (locked). Without PAM, sshd refuses
# locked accounts even for key logins; "*" means "no password" but unlocked.
if [[ $(getent shadow "$LAB_USER" | cut -d: -f2) == '!'* ]]; then
  usermod -p '*' "$LAB_USER"
fi

docker_cli=""
for c in /usr/local/bin/docker /usr/bin/docker /bin/docker; do
  [[ -x $c ]] && { docker_cli=$c; break; }
done
[[ -n $docker_cli ]] || lab_die "no docker CLI in /usr/local/bin, /usr/bin or /bin (sshd's default PATH for $LAB_USER)"

CLIENT_KEY=$LAB/client/id_ed25519
KNOWN_HOSTS=$LAB/client/known_hosts
SSH_CONFIG=$LAB/client/ssh_config
if [[ ! -s $CLIENT_KEY ]]; then
  rm -f "$CLIENT_KEY" "$CLIENT_KEY.pub"
  ssh-keygen -q -t ed25519 -N '' -C "yardmaster-lab-client" -f "$CLIENT_KEY"
  lab_log "generated client key $CLIENT_KEY"
fi
[[ -s $CLIENT_KEY.pub ]] || ssh-keygen -y -f "$CLIENT_KEY" >"$CLIENT_KEY.pub"
chmod 600 "$CLIENT_KEY"
# sshd reads authorized_keys as the user: it must be readable by yardlab.
install -m 644 "$CLIENT_KEY.pub" "$LAB/client/authorized_keys"

# An ssh config + wrapper so that the OpenSSH client (and the docker CLI,
# which runs `ssh` from PATH for ssh:// hosts) use the lab key and known_hosts
# without touching anybody's ~/.ssh. OpenSSH finds ~/.ssh via the passwd
# entry, not $HOME, so a temporary HOME would not do.
{
  printf '# OpenSSH client config for the Yardmaster lab (generated by test/lab/up.sh)\n'
  for name in "${LAB_HOSTS[@]}"; do
    printf 'Host %s\n  HostName %s\n' "$name" "${HOST_ADDR[$name]}"
  done
  printf 'Host %s\n' "${LAB_HOSTS[*]} ${HOST_ADDR[*]}"
  cat <<EOF
  Port $LAB_PORT
  User $LAB_USER
  IdentityFile $CLIENT_KEY
  IdentitiesOnly yes
  UserKnownHostsFile $KNOWN_HOSTS
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
EOF
} >"$SSH_CONFIG.tmp"
mv "$SSH_CONFIG.tmp" "$SSH_CONFIG"
chmod 644 "$SSH_CONFIG"
mkdir -p "$LAB/client/bin"
cat >"$LAB/client/bin/ssh" <<EOF
#!/bin/sh
# Put this directory first in PATH to make \`docker -H ssh://...\` use the lab's ssh config.
exec /usr/bin/ssh -F $SSH_CONFIG "\$@"
EOF
chmod 755 "$LAB/client/bin/ssh"

# ------------------------------------------------------------- daemons --

# Runs "$@" once per lab host named in HOSTS_TODO, all at once, and fails if
# any of them failed (each says why on stderr). One at a time, three imports
# or checks on a busy machine added up.
each_host() {
  local -A pids=()
  local name failed=0
  for name in "${HOSTS_TODO[@]}"; do
    "$@" "$name" &
    pids[$name]=$!
  done
  for name in "${!pids[@]}"; do wait "${pids[$name]}" || failed=1; done
  return $failed
}

DRIVER=$(lab_storage_driver)
STARTED=()           # hosts whose dockerd was (re)started by this run
declare -A SPAWNED   # host -> pid of a dockerd started and not yet answering
SSHD_TODO=()         # hosts whose sshd must start (all at once, after this loop)
ALIVE_TODO=()        # hosts whose running dockerd must answer (checked all at once)

# Every engine that must start is started at once, then awaited: on a busy
# machine each takes seconds to answer, and one after another added up.
for name in "${LAB_HOSTS[@]}"; do
  d=$(host_dir "$name")
  mkdir -p "$d"
  chmod 755 "$d"

  # Host key: generated once and kept, so known_hosts stays valid across ups.
  if [[ ! -s $d/hostkey ]]; then
    rm -f "$d/hostkey" "$d/hostkey.pub"
    ssh-keygen -q -t ed25519 -N '' -C "yardmaster-lab-$name" -f "$d/hostkey"
  fi
  [[ -s $d/hostkey.pub ]] || ssh-keygen -y -f "$d/hostkey" >"$d/hostkey.pub"
  chmod 600 "$d/hostkey"   # sshd refuses group/world-readable host keys

  # dockerd: keep it if it is ours and was started with the same arguments;
  # restart it if the wanted arguments changed (labels, storage driver).
  pid=$(dockerd_pid "$name")
  if [[ -n $pid ]]; then
    if [[ $(cat "$d/dockerd.args" 2>/dev/null) != "$(lab_dockerd_args "$name" "$DRIVER")" ]]; then
      lab_log "$name: dockerd arguments changed, restarting it (its containers stop)"
      lab_stop_pid "$pid" "dockerd $name" 30
      pid=""
    else
      ALIVE_TODO+=("$name") # checked below, all at once
    fi
  fi
  if [[ -z $pid ]]; then
    lab_unmount_under "$d"   # leftovers of a daemon that was killed hard
    lab_log "$name: starting dockerd (storage driver $DRIVER)"
    lab_spawn_dockerd "$name" "$DRIVER"
    SPAWNED[$name]=$LAB_SPAWNED_PID
  fi

  # sshd: (re)write the config; a running sshd re-reads it on SIGHUP.
  lab_write_sshd_config "$name" >"$d/sshd_config.new"
  pid=$(sshd_pid "$name")
  if cmp -s "$d/sshd_config.new" "$d/sshd_config"; then
    rm -f "$d/sshd_config.new"
  else
    mv "$d/sshd_config.new" "$d/sshd_config"
    if [[ -n $pid ]]; then
      /usr/sbin/sshd -t -f "$d/sshd_config" || lab_die "sshd config for $name is invalid"
      lab_log "$name: sshd config changed, reloading sshd"
      kill -HUP "$pid"
      sleep 0.5
      pid=$(sshd_pid "$name")
    fi
  fi
  if [[ -z $pid ]]; then
    lab_log "$name: starting sshd on ${HOST_ADDR[$name]}:$LAB_PORT"
    SSHD_TODO+=("$name")
  fi
done
HOSTS_TODO=("${SSHD_TODO[@]}")
((${#HOSTS_TODO[@]} == 0)) || each_host lab_start_sshd || exit 1

# An engine that was already running must answer.
answers() {
  if ! timeout 10 docker -H "unix://$(host_dir "$1")/docker.sock" info >/dev/null 2>&1; then
    printf '[lab] ERROR: %s: dockerd (pid %s) is running but does not answer\n' "$1" "$(dockerd_pid "$1")" >&2
    lab_dockerd_failure "$1"
    return 1
  fi
}
HOSTS_TODO=("${ALIVE_TODO[@]}")
((${#HOSTS_TODO[@]} == 0)) || each_host answers || exit 1

# Waits for the engines spawned above (SPAWNED); sorts them into STARTED and died.
await_engines() {
  died=()
  for name in "${LAB_HOSTS[@]}"; do
    [[ -n ${SPAWNED[$name]:-} ]] || continue
    rc=0
    lab_await_dockerd "$name" "${SPAWNED[$name]}" || rc=$?
    if ((rc == 2)); then died+=("$name"); else STARTED+=("$name"); fi
  done
}

# One engine that exits at once with overlay2 (a file system without d_type)
# makes all of them fall back to vfs.
await_engines
if ((${#died[@]})) && [[ $DRIVER == overlay2 && -z ${YARDMASTER_LAB_STORAGE_DRIVER:-} ]]; then
  lab_warn "${died[0]}: dockerd exited at startup with the overlay2 storage driver:"
  grep -E 'failed to start daemon|level=(fatal|error)' "$(host_dir "${died[0]}")/dockerd.log" | tail -n 2 | cut -c1-400 >&2 || true
  lab_warn "falling back to the vfs storage driver (slower, uses more disk)"
  DRIVER=vfs
  for name in "${STARTED[@]}"; do lab_stop_pid "$(dockerd_pid "$name")" "dockerd $name" 30; done
  STARTED=()
  for name in "${!SPAWNED[@]}"; do
    lab_unmount_under "$(host_dir "$name")"
    lab_spawn_dockerd "$name" "$DRIVER"
    SPAWNED[$name]=$LAB_SPAWNED_PID
  done
  await_engines
fi
if ((${#died[@]})); then
  printf '[lab] ERROR: %s: dockerd exited during startup (storage driver %s)\n' "${died[0]}" "$DRIVER" >&2
  lab_dockerd_failure "${died[0]}"
  exit 1
fi
((${#STARTED[@]} == 0)) || printf '%s\n' "$DRIVER" >"$LAB/storage-driver"
lab_log "daemons up ($(elapsed))"

# -------------------------------------------------------------- images --

IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# True if host $1 has image $2 imported with the current recipe revision.
have_image() {
  [[ $(host_docker "$1" image inspect -f '{{index .Config.Labels "yardmaster.lab.rev"}}' "$2" 2>/dev/null) == "$LAB_IMAGE_REV" ]]
}

# busybox: one static binary plus applet symlinks. Built fresh (it takes
# milliseconds) and streamed straight into `docker import`.
BUSYBOX_APPLETS=(
  sh ash echo cat sleep ls env true false printf test '[' '[[' id hostname uname
  date wc head tail grep sed mkdir rm touch pwd seq cp mv ln chmod chown
  basename dirname cut tr sort uniq tee xargs find awk expr kill ps stat du
  df which whoami yes timeout gzip gunzip tar md5sum sha256sum mktemp
  readlink realpath sync nproc
)
import_busybox() {
  local name=$1 tmp bb
  bb=/usr/bin/busybox
  [[ -x $bb ]] || bb=/bin/busybox
  if command -v ldd >/dev/null 2>&1 && ldd "$bb" 2>&1 | grep -q '=>'; then
    lab_die "$bb is dynamically linked: install busybox-static (the image has no libc)"
  fi
  tmp=$(mktemp -d)
  mkdir -p "$tmp/rootfs"/{bin,usr/bin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$tmp/rootfs/tmp"
  chmod 700 "$tmp/rootfs/root"
  cp "$bb" "$tmp/rootfs/bin/busybox"
  for a in "${BUSYBOX_APPLETS[@]}"; do ln -s busybox "$tmp/rootfs/bin/$a"; done
  ln -s /bin/busybox "$tmp/rootfs/usr/bin/env"   # for "#!/usr/bin/env sh" scripts
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$tmp/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/rootfs/etc/group"
  tar --numeric-owner -C "$tmp/rootfs" -c . |
    host_docker "$name" import \
      --change 'CMD ["/bin/sh"]' \
      --change "ENV PATH=$IMAGE_PATH" \
      --change "LABEL yardmaster.lab.rev=$LAB_IMAGE_REV" \
      - lab/busybox:1 >/dev/null
  rm -rf "$tmp"
}

# The Debian mirror apt uses here: first deb822 stanza (or sources.list line)
# that serves bookworm from a .../debian URI.
debian_mirror() {
  if [[ -n ${YARDMASTER_LAB_MIRROR:-} ]]; then
    printf '%s' "$YARDMASTER_LAB_MIRROR"
    return
  fi
  local m=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    m=$(awk '
      /^[[:space:]]*$/ { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && uri ~ /\/debian\/?$/) { print uri; exit } uri = ""; suites = ""; next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 " " }
      END { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && uri ~ /\/debian\/?$/) print uri }
    ' /etc/apt/sources.list.d/debian.sources | head -n 1)
  fi
  if [[ -z $m && -r /etc/apt/sources.list ]]; then
    m=$(awk '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\// && $(i + 1) == "bookworm") { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  printf '%s' "${m:-http://deb.debian.org/debian}"
}

# debootstrap prints one "I: Retrieving/Validating/Extracting/Unpacking/
# Configuring <pkg> ..." line per package and step (hundreds of lines):
# show the phase lines and a tick every 40 package steps instead.
debootstrap_progress() {
  local line n=0 t0=$SECONDS
  while IFS= read -r line; do
    if [[ $line =~ ^I:\ (Retrieving|Validating|Extracting|Unpacking|Configuring)\ [^\ ]+(\ [^\ ]+|\.\.\.)$ ]]; then
      n=$((n + 1))
      ((n % 40)) || printf '  debootstrap: ... %d package steps (%ss)\n' "$n" $((SECONDS - t0))
    else
      printf '  debootstrap: %s\n' "$line"
    fi
  done
}

# lab/debian:bookworm root filesystem as a tarball in the cache, built once.
# Built in a temp dir beside the cache file and renamed into place, so an
# interrupted run never leaves a truncated tarball that looks valid.
DEBIAN_TAR=$LAB_CACHE/debian-bookworm.tar
build_debian_tarball() {
  [[ -s $DEBIAN_TAR ]] && return 0
  local mirror t0=$SECONDS old
  # Leftovers of an earlier run that was killed hard (trap never ran).
  for old in "$LAB_CACHE"/build.*; do
    [[ -d $old ]] || continue
    lab_unmount_under "$old"
    [[ -z $(lab_mounts_under "$old") ]] && rm -rf --one-file-system "$old"
  done
  mirror=$(debian_mirror)
  BUILD_DIR=$(mktemp -d "$LAB_CACHE/build.XXXXXX")
  if command -v mmdebstrap >/dev/null 2>&1; then
    # mmdebstrap (apt's parallel downloads, no packing step) took 55 s where debootstrap took 75.
    lab_log "building the lab/debian:bookworm root filesystem with mmdebstrap from $mirror"
    lab_log "(one-off, about a minute; cached as $DEBIAN_TAR; full log in $LAB_CACHE/debootstrap.log)"
    if ! mmdebstrap --variant=minbase --include=git,ca-certificates --mode=root bookworm \
      "$BUILD_DIR/debian.tar" "$mirror" 2>&1 | tee "$LAB_CACHE/debootstrap.log" | sed 's/^/  mmdebstrap: /'; then
      lab_die "mmdebstrap failed; see $LAB_CACHE/debootstrap.log (last lines above)"
    fi
    # (grep reads it all: with -q it stops early, and tar fails on SIGPIPE under pipefail.)
    tar -tf "$BUILD_DIR/debian.tar" | grep -x './usr/bin/git' >/dev/null ||
      lab_die "mmdebstrap finished but git is missing from the root filesystem"
    mv "$BUILD_DIR/debian.tar" "$DEBIAN_TAR"
    cleanup_build
    BUILD_DIR=""
    lab_log "debian root filesystem ready: $(du -h "$DEBIAN_TAR" | cut -f1) in $((SECONDS - t0))s"
    return 0
  fi
  lab_log "building the lab/debian:bookworm root filesystem with debootstrap from $mirror"
  lab_log "(one-off, about a minute; cached as $DEBIAN_TAR; full log in $LAB_CACHE/debootstrap.log)"
  if ! debootstrap --variant=minbase --include=git,ca-certificates bookworm "$BUILD_DIR/rootfs" "$mirror" 2>&1 |
    tee "$LAB_CACHE/debootstrap.log" | debootstrap_progress; then
    lab_die "debootstrap failed; see $LAB_CACHE/debootstrap.log (last lines above)"
  fi
  lab_unmount_under "$BUILD_DIR/rootfs"
  [[ -x $BUILD_DIR/rootfs/bin/bash && -x $BUILD_DIR/rootfs/usr/bin/git ]] ||
    lab_die "debootstrap finished but bash or git is missing from the root filesystem"
  # Package downloads and index files are not needed in the image.
  rm -rf "$BUILD_DIR/rootfs/var/cache/apt/archives/"*.deb "$BUILD_DIR/rootfs/var/lib/apt/lists/"*
  lab_log "packing root filesystem"
  tar --numeric-owner -C "$BUILD_DIR/rootfs" -cf "$BUILD_DIR/debian.tar" .
  mv "$BUILD_DIR/debian.tar" "$DEBIAN_TAR"
  cleanup_build
  BUILD_DIR=""
  lab_log "debian root filesystem ready: $(du -h "$DEBIAN_TAR" | cut -f1) in $((SECONDS - t0))s"
}

import_debian() {
  host_docker "$1" import \
    --change 'CMD ["/bin/bash"]' \
    --change "ENV PATH=$IMAGE_PATH" \
    --change "LABEL yardmaster.lab.rev=$LAB_IMAGE_REV" \
    - "$LAB_DEFAULT_IMAGE" <"$DEBIAN_TAR" >/dev/null
}

import_missing() {
  local name=$1
  if ! have_image "$name" lab/busybox:1; then
    lab_log "$name: importing lab/busybox:1"
    import_busybox "$name"
  fi
  if ! have_image "$name" "$LAB_DEFAULT_IMAGE"; then
    lab_log "$name: importing $LAB_DEFAULT_IMAGE"
    import_debian "$name"
  fi
}

# The Debian root filesystem is built once (it is the long part of a cold
# start), before the imports, which then run at once.
if [[ ! -s $DEBIAN_TAR ]]; then
  for name in "${LAB_HOSTS[@]}"; do
    if ! have_image "$name" "$LAB_DEFAULT_IMAGE"; then
      build_debian_tarball
      break
    fi
  done
fi
HOSTS_TODO=("${LAB_HOSTS[@]}")
each_host import_missing || lab_die "importing the lab images failed (see above)"

# A real container on each freshly started engine: catches runc/cgroup/
# storage problems here, with a clear message, rather than in the app's tests.
run_check() {
  local out
  if ! out=$(host_docker "$1" run --rm lab/busybox:1 echo lab-ok 2>&1) || [[ $out != *lab-ok* ]]; then
    printf '[lab] ERROR: %s: could not run a container: %s\n' "$1" "$out" >&2
    return 1
  fi
}
HOSTS_TODO=("${STARTED[@]}")
((${#HOSTS_TODO[@]} == 0)) || each_host run_check || exit 1
lab_log "images ready ($(elapsed))"

# --------------------------------------------- known_hosts, farm, lab.json --

# Regenerated from the host keys each time (written atomically: the app may
# be reading it).
for name in "${LAB_HOSTS[@]}"; do
  printf '[%s]:%s %s\n' "${HOST_ADDR[$name]}" "$LAB_PORT" "$(cut -d' ' -f1,2 "$(host_dir "$name")/hostkey.pub")"
done >"$KNOWN_HOSTS.tmp"
chmod 644 "$KNOWN_HOSTS.tmp"
mv "$KNOWN_HOSTS.tmp" "$KNOWN_HOSTS"

FARM=$LAB/farm.yml
{
  printf '# Yardmaster farm file for the local test lab (generated by test/lab/up.sh)\n'
  printf 'knownHosts: %s\n' "$KNOWN_HOSTS"
  printf '# The three lab hosts share one machine, whose load each of them reports as its own:\n'
  printf '# other work on that machine (a busy CI runner) must not make them all degraded.\n'
  printf 'health:\n'
  printf '  loadPerCore: 1000\n'
  printf 'nodes:\n'
  for name in "${LAB_HOSTS[@]}"; do
    cat <<EOF
  - name: $name
    host: ${HOST_ADDR[$name]}
    port: $LAB_PORT
    user: $LAB_USER
    identityFile: $CLIENT_KEY
    executor: docker
    labels: [${HOST_FARM_LABELS[$name]}]
    slots: ${HOST_SLOTS[$name]}
    defaultImage: $LAB_DEFAULT_IMAGE
EOF
  done
} >"$FARM.tmp"
mv "$FARM.tmp" "$FARM"

json_str() { # minimal JSON string quoting (our values are paths and labels)
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}
{
  printf '{\n'
  printf '  "dir": %s,\n' "$(json_str "$LAB")"
  printf '  "farmFile": %s,\n' "$(json_str "$FARM")"
  printf '  "knownHosts": %s,\n' "$(json_str "$KNOWN_HOSTS")"
  printf '  "identityFile": %s,\n' "$(json_str "$CLIENT_KEY")"
  printf '  "sshConfig": %s,\n' "$(json_str "$SSH_CONFIG")"
  printf '  "sshWrapperDir": %s,\n' "$(json_str "$LAB/client/bin")"
  printf '  "user": %s,\n' "$(json_str "$LAB_USER")"
  printf '  "storageDriver": %s,\n' "$(json_str "$DRIVER")"
  printf '  "images": [%s, %s],\n' "$(json_str lab/busybox:1)" "$(json_str "$LAB_DEFAULT_IMAGE")"
  printf '  "hosts": [\n'
  sep=""
  for name in "${LAB_HOSTS[@]}"; do
    d=$(host_dir "$name")
    labels=""
    for kv in ${HOST_ENGINE_LABELS[$name]}; do
      labels+="${labels:+, }$(json_str "${kv%%=*}"): $(json_str "${kv#*=}")"
    done
    printf '%s    {\n' "$sep"
    printf '      "name": %s,\n' "$(json_str "$name")"
    printf '      "address": %s,\n' "$(json_str "${HOST_ADDR[$name]}")"
    printf '      "port": %s,\n' "$LAB_PORT"
    printf '      "dockerSocket": %s,\n' "$(json_str "$d/docker.sock")"
    printf '      "dockerdPidFile": %s,\n' "$(json_str "$d/docker.pid")"
    printf '      "sshdPidFile": %s,\n' "$(json_str "$d/sshd.pid")"
    printf '      "sshdConfig": %s,\n' "$(json_str "$d/sshd_config")"
    printf '      "hostKeyPub": %s,\n' "$(json_str "$d/hostkey.pub")"
    printf '      "dockerdLog": %s,\n' "$(json_str "$d/dockerd.log")"
    printf '      "sshdLog": %s,\n' "$(json_str "$d/sshd.log")"
    printf '      "engineLabels": { %s },\n' "$labels"
    flabels=""
    for l in ${HOST_FARM_LABELS[$name]//,/ }; do
      flabels+="${flabels:+, }$(json_str "$l")"
    done
    printf '      "farmLabels": [%s],\n' "$flabels"
    printf '      "slots": %s\n' "${HOST_SLOTS[$name]}"
    printf '    }'
    sep=$',\n'
  done
  printf '\n  ]\n}\n'
} >"$LAB/lab.json.tmp"
mv "$LAB/lab.json.tmp" "$LAB/lab.json"

# ------------------------------------------------------ end-to-end check --

# Log in as the app would (key + strict known_hosts) and ask each host's
# docker, through sshd's DOCKER_HOST, for its engine labels: proves user,
# keys, PATH, socket permissions and per-host routing in one go.
ssh_check() {
  local name=$1 out
  # (ssh joins its arguments into one string for the remote shell: quote.)
  if ! out=$(ssh -F "$SSH_CONFIG" "$name" "docker info --format '{{json .Labels}}'" 2>&1) ||
    [[ $out != *"\"farm.node=$name\""* ]]; then
    # shellcheck disable=SC2016 # backquotes are literal text here
    printf '[lab] ERROR: %s: `ssh %s@%s -p %s docker info` failed or reached the wrong engine:\n%s\n' \
      "$name" "$LAB_USER" "${HOST_ADDR[$name]}" "$LAB_PORT" "$out" >&2
    printf '[lab] last lines of %s:\n' "$(host_dir "$name")/sshd.log" >&2
    tail -n 10 "$(host_dir "$name")/sshd.log" >&2
    return 1
  fi
}
HOSTS_TODO=("${LAB_HOSTS[@]}")
each_host ssh_check || exit 1

# --------------------------------------------------------------- summary --

printf '\nYardmaster lab is up (%s, storage driver %s, docker CLI for %s: %s)\n' \
  "$(elapsed)" "$DRIVER" "$LAB_USER" "$docker_cli"
for name in "${LAB_HOSTS[@]}"; do
  printf '  %-3s %s:%s  engine labels: %-26s slots: %s  dockerd pid %s, sshd pid %s\n' \
    "$name" "${HOST_ADDR[$name]}" "$LAB_PORT" "${HOST_ENGINE_LABELS[$name]}" \
    "${HOST_SLOTS[$name]}" "$(dockerd_pid "$name")" "$(sshd_pid "$name")"
done
printf '  try:  ssh -F %s n1 docker ps\n' "$SSH_CONFIG"
# shellcheck disable=SC2016 # $PATH is meant literally
printf '        PATH=%s:$PATH docker -H ssh://%s@%s:%s run --rm lab/busybox:1 echo hi\n' \
  "$LAB/client/bin" "$LAB_USER" "${HOST_ADDR[n2]}" "$LAB_PORT"
printf '  lab.json: %s\n' "$LAB/lab.json"
printf 'Lab farm file: %s\n' "$FARM"
