#!/usr/bin/env bash
# One crebito instance on the embedded SQLite store: credits (bench/credit.lua) then
# statements, wrk with 32 keep-alive connections, 8 s each; requests/s and server CPU per
# request. Give two binaries (e.g. built from two commits) to compare them; run it a few
# times and compare medians.
#
#   bench/sqlite.sh [BIN LABEL] …        (default: target/release/crebito)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -gt 0 ] || set -- "$here/../target/release/crebito" crebito
echo "| binary | requests | req/s | server CPU/req |"
echo "|---|---|---|---|"
while [ $# -ge 2 ]; do
bin=$1; label=$2; shift 2
rm -rf /tmp/sqlb && mkdir /tmp/sqlb
"$bin" serve --listen 127.0.0.1:19930 --database-url sqlite:///tmp/sqlb/db 2>/dev/null &
pid=$!
sleep 0.5
for kind in credit extrato; do
  c0=$(awk '{ print ($14 + $15) / 100 }' /proc/$pid/stat)
  if [ $kind = credit ]; then out=$(wrk -t1 -c32 -d8s -s $here/credit.lua http://127.0.0.1:19930); else out=$(wrk -t1 -c32 -d8s http://127.0.0.1:19930/clientes/1/extrato); fi
  c1=$(awk '{ print ($14 + $15) / 100 }' /proc/$pid/stat)
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out"); rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  printf '| %s | %s | %s | %.1f µs |\n' "$label" "$kind" "${rps%.*}" "$(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN { print (b - a) * 1e6 / n }')"
done
kill $pid; wait $pid 2>/dev/null || true
done
rm -rf /tmp/sqlb
