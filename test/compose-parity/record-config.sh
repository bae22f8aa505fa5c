#!/usr/bin/env bash
# Records `docker stack config` (Docker CLI 28) for every case of the parity corpus, or for the
# cases named: config-golden.json in each case directory holds the exit status, stdout and
# stderr (config-golden-skip.json the same with --skip-interpolation), with the case directory's absolute path replaced by `<CASEDIR>` and the temporary
# HOME by `<HOME>`. `stack config` is client-side only, so no daemon, root or namespace is
# needed: the CLI runs with DOCKER_HOST pointing at a socket that does not exist, with only
# case.json's environment (as record.sh does for deploy). CLI28=/path/to/docker to choose the
# binary (default /usr/local/bin/docker, 28.2.2 here).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CLI28=${CLI28:-/usr/local/bin/docker}
command -v jq >/dev/null || { echo "record-config: jq is needed" >&2; exit 1; }
[ -x "$CLI28" ] || { echo "record-config: $CLI28 not found" >&2; exit 1; }
TMP=$(mktemp -d /tmp/shoal-parity-config.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/home/.docker"
clv=$("$CLI28" version --format '{{.Client.Version}}' 2>/dev/null || true)

record() {
  local name=$1 out=$2 dir=$HERE/$1 c=$HERE/$1/case.json files=() envs=() rc
  shift 2
  while IFS= read -r f; do files+=(-c "$f"); done < <(jq -r '.files[]' "$c")
  while IFS= read -r e; do envs+=("$e"); done < <(jq -r '(.env // {}) | to_entries[] | "\(.key)=\(.value)"' "$c")
  set +e
  (cd "$dir" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$TMP/home" DOCKER_CONFIG="$TMP/home/.docker" \
    DOCKER_HOST="unix://$TMP/no-daemon.sock" "${envs[@]}" \
    "$CLI28" stack config "$@" "${files[@]}" >"$TMP/out" 2>"$TMP/err")
  rc=$?
  set -e
  for f in out err; do
    sed -e "s|$dir|<CASEDIR>|g" -e "s|$TMP/home|<HOME>|g" -e 's/^time="[^"]*" /time="<TIME>" /' "$TMP/$f" >"$TMP/$f.n"
  done
  jq -n --arg cli "$clv" --argjson rc "$rc" --rawfile stdout "$TMP/out.n" --rawfile stderr "$TMP/err.n" \
    '{cli: $cli, exitCode: $rc, stdout: $stdout, stderr: $stderr}' >"$dir/$out"
  echo "$name $*: exit $rc"
}

cases=("$@")
if [ ${#cases[@]} = 0 ]; then
  for c in "$HERE"/*/case.json; do cases+=("$(basename "$(dirname "$c")")"); done
fi
for n in "${cases[@]}"; do
  record "$n" config-golden.json
  record "$n" config-golden-skip.json --skip-interpolation
done
