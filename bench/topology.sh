#!/usr/bin/env bash
# Choose the topology by measurement: the native contest stack (limits on) under the fast
# loader at one SCALE, for each VARIANT of its settings, ROUNDS times, alternating.
#
#   bench/topology.sh [VARIANT …]     (SCALE=18, DURATION_SCALE=0.15, ROUNDS=2, PORT=19995)
#
# A VARIANT is a space-separated list of environment assignments for deploy/native/stack
# ("-" for the defaults of deploy/.env), e.g. "LB_PROCESSES=2", "UPSTREAM=tcp",
# "CREBITO_PG_CONNECTIONS=2", "CPU_PERIOD_US=10000", "CPUSET=db=1 api1=0 api2=0 lb=0" (quote a
# value with spaces as VAR='…'), "DB_CPUS=0.9 LB_CPUS=0.2 API_CPUS=0.2". Prints, per run: SLA
# (OK under 250 ms), KOs by cause, p50/p99/max, achieved throughput, the stack's CPU seconds,
# the balancer's CPU per request, and the periods each service was throttled.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PORT="${PORT:-19995}"
scale="${SCALE:-18}"
dscale="${DURATION_SCALE:-0.15}"
[ $# -gt 0 ] || set -- "-" "LB_PROCESSES=2" "UPSTREAM=tcp" "CREBITO_PG_CONNECTIONS=2" "CPU_PERIOD_US=10000" \
  "DB_CPUS=0.9 API_CPUS=0.2 LB_CPUS=0.2" "DB_CPUS=0.75 API_CPUS=0.2 LB_CPUS=0.35" "CPUSET='db=1 api1=0 api2=0 lb=0'"
build_release
loader="$repo/target/release/crebito-loader"
out=$(mktemp)
on_exit "\"$stack\" down >/dev/null 2>&1"
on_exit "rm -f '$out'"

machine "SCALE $scale, DURATION_SCALE $dscale"
echo "| variant | SLA | KO (by cause) | p50 | p99 | max | req/s | stack CPU s | lb CPU µs/req | throttled db / api1 / api2 / lb |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for _ in $(seq "${ROUNDS:-2}"); do
  for variant in "$@"; do
    [ "$variant" = - ] && v="" || v="$variant"
    eval "env $v \"\$stack\" up" >/dev/null 2>&1
    c0=$(for s in db api1 api2 lb; do stack_cpu "$s"; done | awk '{ t += $1 } END { print t }')
    lb0=$(stack_cpu lb)
    "$loader" --target "127.0.0.1:$PORT" --scale "$scale" --duration-scale "$dscale" --out "$out" >/dev/null
    c1=$(for s in db api1 api2 lb; do stack_cpu "$s"; done | awk '{ t += $1 } END { print t }')
    lb1=$(stack_cpu lb)
    thr=$(status_field throttled_periods | awk '{ printf "%s%s", sep, $2; sep = " / " }')
    "$stack" down >/dev/null 2>&1
    python3 "$repo/stress/report.py" row --loader "$out" --label "$variant" \
      --cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }')" --throttled "$thr" \
      --lb-cpu "$(awk -v a="$lb0" -v b="$lb1" 'BEGIN { print b - a }')"
  done
done
