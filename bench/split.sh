#!/usr/bin/env bash
# How the 1.5 CPU envelope is best divided: capacity and tail latency of the native stack,
# limits ON, for several CPU splits.
#
#   bench/split.sh      (PORT, SECONDS_EACH=10, ROUNDS=2, RATE=0 for "as fast as possible")
#
# For each split "DB API LB" (API is per instance), a fresh stack with those quotas, then
# wrk through nginx with a new connection per request (as in the contest), 32 connections.
# Prints requests/s, wrk's latency percentiles and how many 100 ms periods each service was
# throttled in. wrk shares the machine's two cores with the stack.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export PORT="${PORT:-19960}"
secs="${SECONDS_EACH:-10}"
stack="$repo/deploy/native/stack"
splits=${SPLITS:-"0.9:0.2:0.2 0.7:0.2:0.4 0.6:0.2:0.5 0.5:0.25:0.5"}
trap '"$stack" down >/dev/null 2>&1 || true' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; ${secs}s each"
echo "| DB / API×2 / LB CPUs | req/s | p50 | p99 | max | throttled periods db / api1 / api2 / lb |"
echo "|---|---|---|---|---|---|"
for _ in $(seq "${ROUNDS:-2}"); do
  for split in $splits; do
    IFS=: read -r db api lb <<<"$split"
    DB_CPUS=$db API_CPUS=$api LB_CPUS=$lb "$stack" up >/dev/null 2>&1
    out=$(wrk -t1 -c 32 -d "${secs}s" --latency -H "Connection: close" -s "$here/post.lua" "http://127.0.0.1:$PORT")
    thr=$("$stack" status | awk 'NR > 1 { split($NF, a, "/"); printf "%s%s", sep, a[1]; sep = " / " }')
    "$stack" down >/dev/null 2>&1
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    max=$(awk '/Latency/ { print $4; exit }' <<<"$out")
    echo "| $db / $api / $lb | ${rps%.*} | $p50 | $p99 | $max | $thr |"
  done
done
