#!/usr/bin/env bash
# nginx → crebito over Unix sockets (what deploy/nginx.conf uses) versus loopback TCP.
#
#   bench/upstream.sh       (PORT, SECONDS_EACH=10, ROUNDS=3)
#
# Alternates fresh native stacks (no CPU limits, cgroups still account CPU) with
# UPSTREAM=unix and UPSTREAM=tcp, and runs wrk through nginx against each: once with a new
# client connection per request (as in the contest), once with keep-alive. Prints
# requests/s and the CPU per request of nginx + both instances; compare medians.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need wrk wrk
export PORT="${PORT:-19975}" STACK_LIMITS=off
secs="${SECONDS_EACH:-10}"
on_exit "\"$stack\" down >/dev/null 2>&1"

front_cpu() { "$stack" cpu | awk '$1 != "db" { s += $2 } END { print s }'; }

run() { # mode, label, wrk args...
  local mode=$1 label=$2; shift 2
  local c0 c1 out
  c0=$(front_cpu)
  out=$(wrk -t1 -c 16 -d "${secs}s" "$@" -s "$here/credit.lua" "http://127.0.0.1:$PORT")
  c1=$(front_cpu)
  wrk_stats "$out"
  printf '| %s | %s | %s | %s µs |\n' "$mode" "$label" "$rps" "$(usec_per "$c0" "$c1" "$reqs")"
}

machine "${secs}s each"
echo "| upstream | client connections | req/s | nginx + crebito CPU/req |"
echo "|---|---|---|---|"
for _ in $(seq "${ROUNDS:-3}"); do
  for mode in unix tcp; do
    UPSTREAM=$mode "$stack" up >/dev/null 2>&1
    run "$mode" "new per request" -H "Connection: close"
    run "$mode" "keep-alive"
    "$stack" down >/dev/null 2>&1
  done
done
