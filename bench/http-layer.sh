#!/usr/bin/env bash
# crebito's own hyper connection loop versus axum, same domain and SQLite ledger, both on a
# single-threaded runtime, each against a fresh database.
#
#   bench/http-layer.sh        (SECONDS_EACH=10, ROUNDS=3)
#
# wrk (1 thread, 32 keep-alive connections) sends credits (bench/credit.lua), then statements;
# prints requests/s and the server's CPU per request (from /proc/PID/stat); compare medians.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
secs="${SECONDS_EACH:-10}"
(cd "$repo" && cargo build --release --locked -q)
(cd "$here/axum-baseline" && cargo build --release -q)
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

cpu_of() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }

measure() { # label, then the server command
  local label=$1; shift
  rm -f "$work"/db*
  "$@" 2>/dev/null &
  pid=$!
  for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:19950/clientes/1/extrato 2>/dev/null && break; sleep 0.1; done
  for kind in credit extrato; do
    local c0 out c1 reqs rps
    c0=$(cpu_of "$pid")
    if [ "$kind" = credit ]; then
      out=$(wrk -t1 -c32 -d "${secs}s" -s "$here/credit.lua" http://127.0.0.1:19950)
    else
      out=$(wrk -t1 -c32 -d "${secs}s" http://127.0.0.1:19950/clientes/1/extrato)
    fi
    c1=$(cpu_of "$pid")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    printf '| %s | %s | %s | %.1f µs |\n' "$label" "$kind" "${rps%.*}" "$(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN { print (b - a) * 1e6 / n }')"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; ${secs}s each"
echo "| server | requests | req/s | server CPU/req |"
echo "|---|---|---|---|"
for _ in $(seq "${ROUNDS:-3}"); do
  measure "crebito (hyper)" "$repo/target/release/crebito" serve --workers 1 --listen 127.0.0.1:19950 --database-url "sqlite://$work/db"
  measure "axum 0.8" "$here/axum-baseline/target/release/axum-baseline" 127.0.0.1:19950 "$work/db"
done
