#!/usr/bin/env bash
# Capacity and tail latency of the native contest stack, limits ON, for several variants of
# its settings: CPU splits, PostgreSQL connections per instance, durability, CFS period…
#
#   bench/envelope.sh [VARIANT …]        (PORT, SECONDS_EACH=10, ROUNDS=2)
#
# A VARIANT is a space-separated list of environment assignments for deploy/native/stack,
# e.g. "DB_CPUS=0.9 API_CPUS=0.2 LB_CPUS=0.2" or "CREBITO_PG_CONNECTIONS=1". Without
# arguments it compares CPU splits. For each variant and round: a fresh stack, then wrk
# through nginx with a new connection per request (as in the contest), 32 connections,
# `bench/post.lua`. Prints requests/s, wrk's latency percentiles and how many 100 ms
# periods each service was throttled in. wrk shares the machine's two cores with the stack.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need wrk wrk
export PORT="${PORT:-19960}"
secs="${SECONDS_EACH:-10}"
if [ $# -eq 0 ]; then
  set -- "DB_CPUS=0.9 API_CPUS=0.2 LB_CPUS=0.2" "DB_CPUS=0.7 API_CPUS=0.2 LB_CPUS=0.4" \
         "DB_CPUS=0.6 API_CPUS=0.2 LB_CPUS=0.5" "DB_CPUS=0.65 API_CPUS=0.2 LB_CPUS=0.45"
fi
on_exit "\"$stack\" down >/dev/null 2>&1"

machine "${secs}s each"
echo "| variant | req/s | p50 | p99 | max | throttled periods db / api1 / api2 / lb |"
echo "|---|---|---|---|---|---|"
for _ in $(seq "${ROUNDS:-2}"); do
  for variant in "$@"; do
    # shellcheck disable=SC2086
    env $variant "$stack" up >/dev/null 2>&1
    out=$(wrk -t1 -c 32 -d "${secs}s" --latency -H "Connection: close" -s "$here/post.lua" "http://127.0.0.1:$PORT")
    thr=$(status_field throttled_periods | awk '{ printf "%s%s", sep, $2; sep = " / " }')
    "$stack" down >/dev/null 2>&1
    wrk_stats "$out"
    echo "| $variant | $rps | $p50 | $p99 | $max | $thr |"
  done
done
