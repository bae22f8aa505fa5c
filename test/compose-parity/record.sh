#!/bin/bash
# test/compose-parity/record.sh: record what real Docker does with each case of the corpus.
#
# Starts its own single-node Docker swarm (Debian's dockerd 20.10 with its own containerd, in a
# network namespace of its own, every path under one temp dir), then for each case and each
# docker CLI found (CLI 28 at $CLI28, CLI 20.10 at $CLI20; the 20.10 daemon negotiates API 1.41
# with both) runs `docker stack deploy --resolve-image never -c … <stack>` with only case.json's
# environment, captures the exit status, stdout and stderr, dumps `service inspect`,
# `network inspect`, `secret inspect` and `config inspect` of the stack's objects, removes the
# stack and waits until it is gone. The raw answers go to $RAW/<case>/<cli>.json; the normaliser
# (packages/compose/dist/test/parity-golden.js, from `npm run build`) turns them into
# golden.json (CLI 28) and golden-cli20.json (CLI 20.10) beside case.json.
#
# usage: record.sh [CASE...]     (default: every directory with a case.json)
# env:   CLI28=/usr/local/bin/docker CLI20=/usr/bin/docker KEEP_RAW=<dir> (copy the raw answers
#        there) RAW_ONLY=1 (do not normalise: only with KEEP_RAW)
# Needs root, dockerd + containerd (apt-get install docker.io), iproute2, nsenter, setsid, jq.
# Every address is in 198.18.0.0/15: the namespace's eth0 198.18.250.1/24, docker0 from --bip,
# docker_gwbridge from default-address-pools, overlays and ingress from swarm init's
# --default-addr-pool 198.19.0.0/16. Docker's iptables chains live in the namespace and go with
# it. Everything is torn down on exit, also on failure or Ctrl-C.
set -u
set +m

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CLI28=${CLI28:-/usr/local/bin/docker}
CLI20=${CLI20:-/usr/bin/docker}
NORMALISE=$REPO/packages/compose/dist/test/parity-golden.js
TMP=$(mktemp -d /tmp/shoal-parity.XXXXXX)
NS=shoal-parity-$$
CG=shoal-parity-$$
SOCK=$TMP/docker.sock
RAW=$TMP/raw
DPID=""
CPID=""

log() { echo "[record $(date +%T)] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
d() { "$CLI28" -H "unix://$SOCK" "$@"; }

stop_pid() { # TERM, wait up to 20 s, then KILL
  local pid=$1 t
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  for t in $(seq 100); do
    alive "$pid" || return 0
    sleep 0.2
  done
  log "kill -9 $pid"
  kill -9 "$pid" 2>/dev/null
}

cleanup() {
  local p m pids t
  trap - EXIT INT TERM
  log "tearing down"
  if alive "$DPID"; then
    for s in $(d service ls -q 2>/dev/null); do d service rm "$s" >/dev/null 2>&1; done
    d swarm leave --force >/dev/null 2>&1
  fi
  stop_pid "$DPID"
  stop_pid "$CPID"
  # shims of our containerd (found by their -address), then anything left in our cgroups
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "containerd-shim.* -address $TMP/containerd.sock" &&
      kill -9 "${p#/proc/}" 2>/dev/null
  done
  for m in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG"; do
    [ -d "$m" ] || continue
    pids=$(find "$m" -name cgroup.procs -exec cat {} + 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null && sleep 0.3
    find "$m" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  for t in 1 2 3; do
    m=$(findmnt -rn -o TARGET | grep -E "^$TMP(/|$)" | sort -r)
    [ -z "$m" ] && break
    for p in $m; do umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null; done
  done
  ip netns list | grep -qw "$NS" && ip netns del "$NS"
  if [ -n "${KEEP_RAW:-}" ] && [ -d "$RAW" ]; then
    mkdir -p "$KEEP_RAW" && cp -r "$RAW/." "$KEEP_RAW/" && log "raw answers kept in $KEEP_RAW"
  fi
  rm -rf --one-file-system "$TMP"
  # check
  local left=0
  alive "$DPID" && { log "left: dockerd $DPID"; left=1; }
  alive "$CPID" && { log "left: containerd $CPID"; left=1; }
  ip netns list | grep -qw "$NS" && { log "left: netns $NS"; left=1; }
  ls -d /sys/fs/cgroup/*/"$CG" >/dev/null 2>&1 && { log "left: cgroups $CG"; left=1; }
  [ -e "$TMP" ] && { log "left: $TMP"; left=1; }
  [ "$left" = 0 ] && log "down: nothing left"
}

start() {
  [ "$(id -u)" = 0 ] || die "needs root"
  for b in containerd dockerd nsenter setsid jq node ip; do command -v $b >/dev/null || die "missing $b"; done
  [ -x "$CLI28" ] || [ -x "$CLI20" ] || die "no docker CLI ($CLI28, $CLI20)"
  [ -n "${RAW_ONLY:-}" ] || [ -f "$NORMALISE" ] || die "missing $NORMALISE: run npm run build first"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$TMP/home/.docker" "$RAW"
  ip netns add "$NS" || die "cannot create netns $NS"
  ip -n "$NS" link set lo up
  # a veth pair inside the namespace: an interface to advertise (no dummy module here)
  ip -n "$NS" link add eth0 type veth peer name eth1 || die "cannot create veth in $NS"
  ip -n "$NS" addr add 198.18.250.1/24 dev eth0
  ip -n "$NS" link set eth1 up
  ip -n "$NS" link set eth0 up
  cat >"$TMP/containerd.toml" <<EOF
version = 2
root = "$TMP/containerd-root"
state = "$TMP/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$TMP/containerd.sock"
[ttrpc]
  address = "$TMP/containerd.sock.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$TMP/containerd-opt"
EOF
  echo '{"default-address-pools":[{"base":"198.18.252.0/22","size":24}]}' >"$TMP/daemon.json"
  setsid nsenter --net="/run/netns/$NS" containerd --config "$TMP/containerd.toml" \
    </dev/null >>"$TMP/containerd.log" 2>&1 &
  CPID=$!
  local t
  for t in $(seq 100); do
    ctr --address "$TMP/containerd.sock" version >/dev/null 2>&1 && break
    alive "$CPID" || die "containerd exited: $(tail -5 "$TMP/containerd.log")"
    sleep 0.2
  done
  setsid nsenter --net="/run/netns/$NS" dockerd --config-file "$TMP/daemon.json" \
    --data-root "$TMP/docker" --exec-root "$TMP/exec" --pidfile "$TMP/dockerd.pid" \
    -H "unix://$SOCK" --containerd "$TMP/containerd.sock" --cgroup-parent "/$CG" \
    --bip 198.18.251.1/24 --storage-driver vfs --log-level warn </dev/null >>"$TMP/dockerd.log" 2>&1 &
  DPID=$!
  for t in $(seq 150); do
    d version >/dev/null 2>&1 && break
    alive "$DPID" || die "dockerd exited: $(tail -5 "$TMP/dockerd.log")"
    sleep 0.2
  done
  d swarm init --advertise-addr 198.18.250.1 --listen-addr 198.18.250.1:2377 \
    --default-addr-pool 198.19.0.0/16 --default-addr-pool-mask-length 24 >/dev/null || die "swarm init"
  DAEMON_VERSION=$(d version --format '{{.Server.Version}}')
  log "swarm up: dockerd $DAEMON_VERSION (pid $DPID) in netns $NS"
}

# objects of a stack, by its label
ids() { d "$1" ls -q --filter "label=com.docker.stack.namespace=$2" 2>/dev/null; }

wait_gone() {
  local st=$1 t
  for t in $(seq 300); do
    [ -z "$(ids service "$st")$(ids network "$st")$(ids secret "$st")$(ids config "$st")" ] && return 0
    sleep 0.2
  done
  log "stack $st still has objects after 60 s"
  return 1
}

# setup.networks / setup.secrets / setup.configs of case.json: external objects made beforehand
setup_externals() {
  local c=$1 n
  for n in $(jq -r '.setup.networks[]? // empty' "$c"); do
    d network create -d overlay "$n" >/dev/null || die "setup: network $n"
  done
  for n in $(jq -r '.setup.secrets[]? // empty' "$c"); do
    printf 'external' | d secret create "$n" - >/dev/null || die "setup: secret $n"
  done
  for n in $(jq -r '.setup.configs[]? // empty' "$c"); do
    printf 'external' | d config create "$n" - >/dev/null || die "setup: config $n"
  done
}
remove_externals() { # a network stays busy until the removed tasks have left it: retry
  local c=$1 n t
  for n in $(jq -r '.setup.networks[]? // empty' "$c"); do
    for t in $(seq 150); do
      d network rm "$n" >/dev/null 2>&1 || ! d network inspect "$n" >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
  for n in $(jq -r '.setup.secrets[]? // empty' "$c"); do d secret rm "$n" >/dev/null 2>&1; done
  for n in $(jq -r '.setup.configs[]? // empty' "$c"); do d config rm "$n" >/dev/null 2>&1; done
}

inspect_json() { # kind stack -> JSON array
  local l
  l=$(ids "$1" "$2")
  if [ -z "$l" ]; then echo '[]'; else d "$1" inspect $l; fi
}

record_case() {
  local name=$1 cli=$2 tag=$3
  local dir=$HERE/$name c=$HERE/$name/case.json st files=() envs=() rc out err
  st=$(jq -r .stack "$c")
  while IFS= read -r f; do files+=(-c "$f"); done < <(jq -r '.files[]' "$c")
  while IFS= read -r e; do envs+=("$e"); done < <(jq -r '(.env // {}) | to_entries[] | "\(.key)=\(.value)"' "$c")
  setup_externals "$c"
  out=$TMP/out err=$TMP/err
  (cd "$dir" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$TMP/home" DOCKER_CONFIG="$TMP/home/.docker" \
    DOCKER_HOST="unix://$SOCK" "${envs[@]}" \
    "$cli" stack deploy --resolve-image never "${files[@]}" "$st" >"$out" 2>"$err")
  rc=$?
  local clv
  clv=$("$cli" version --format '{{.Client.Version}}' 2>/dev/null)
  # every network, to turn the IDs in service specs into names
  local nets
  nets=$(d network ls --no-trunc --format '{{json .}}' | jq -s 'map({(.ID): .Name}) | add')
  mkdir -p "$RAW/$name"
  jq -n --arg cli "$clv" --arg daemon "$DAEMON_VERSION" --arg dir "$dir" --argjson rc "$rc" \
    --rawfile stdout "$out" --rawfile stderr "$err" --argjson names "$nets" \
    --argjson services "$(inspect_json service "$st")" --argjson networks "$(inspect_json network "$st")" \
    --argjson secrets "$(inspect_json secret "$st")" --argjson configs "$(inspect_json config "$st")" \
    '{cli: $cli, daemon: $daemon, caseDir: $dir, exitCode: $rc, stdout: $stdout, stderr: $stderr,
      networkNames: $names, services: $services, networks: $networks, secrets: $secrets, configs: $configs}' \
    >"$RAW/$name/$tag.json"
  log "$name [$tag $clv]: exit $rc $(head -c 200 "$err" | tr '\n' ' ')"
  d stack rm "$st" >/dev/null 2>&1
  wait_gone "$st"
  remove_externals "$c"
}

main() {
  local cases=("$@") name
  if [ ${#cases[@]} = 0 ]; then
    for c in "$HERE"/*/case.json; do
      name=$(basename "$(dirname "$c")")
      cases+=("$name")
    done
  fi
  start
  for name in "${cases[@]}"; do
    [ -f "$HERE/$name/case.json" ] || die "no case $name"
    [ -x "$CLI28" ] && record_case "$name" "$CLI28" cli28
    [ -x "$CLI20" ] && record_case "$name" "$CLI20" cli20
    if [ -z "${RAW_ONLY:-}" ]; then
      node "$NORMALISE" "$RAW/$name" "$HERE/$name" || die "normalising $name"
      # the repository's formatting, so that a re-recording only shows real changes
      "$REPO/node_modules/.bin/prettier" --log-level warn --write "$HERE/$name"/golden*.json || die "prettier $name"
    fi
  done
  log "recorded ${#cases[@]} cases"
}

main "$@"
