#!/usr/bin/env bash
# One crebito instance on the embedded SQLite store: credits (bench/credit.lua) then
# statements, wrk with 32 keep-alive connections, 8 s each; requests/s and server CPU per
# request. Give two binaries (e.g. built from two commits), or one binary under two settings,
# to compare them; run it a few times and compare medians. The disk's flush time of the
# sitting heads the table (a durable commit waits for one).
#
#   bench/sqlite.sh [BIN LABEL[:ASSIGNMENTS]] …   (default: target/release/crebito, as
#                                                 crebito under --sqlite-sync full and normal;
#                                                 SECONDS_EACH=8)
# e.g. bench/sqlite.sh target/release/crebito "full:CREBITO_SQLITE_SYNC=full" \
#                      target/release/crebito "normal:CREBITO_SQLITE_SYNC=normal"
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need wrk wrk
export SECONDS_EACH="${SECONDS_EACH:-8}"
[ $# -gt 0 ] || set -- "$repo/target/release/crebito" "full:CREBITO_SQLITE_SYNC=full" \
  "$repo/target/release/crebito" "normal:CREBITO_SQLITE_SYNC=normal"
work=$(mktemp -d)
pid=""
stop_server() { [ -z "$pid" ] || kill "$pid" 2>/dev/null; }
on_exit stop_server
on_exit "rm -rf '$work'"
machine "${SECONDS_EACH}s each"
disk_flush "$work"
echo "| binary | requests | req/s | server CPU/req |"
echo "|---|---|---|---|"
while [ $# -ge 2 ]; do
  bin=$1 label=${2%%:*} settings=""; [ "$2" = "$label" ] || settings=${2#*:}; shift 2
  rm -f "$work"/db*
  eval "exec env $settings \"\$bin\" serve --listen 127.0.0.1:19930 --database-url \"sqlite://\$work/db\"" 2>/dev/null &
  pid=$!
  wait_http http://127.0.0.1:19930/healthz
  measure_server "$label" "$pid" 19930
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
