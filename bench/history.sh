#!/usr/bin/env bash
# What recording the history costs the fast loader: the same run with and without
# --history, alternating, ROUNDS times, each on a fresh native contest stack.
#
#   bench/history.sh        (SCALE=6, DURATION_SCALE=0.15, ROUNDS=3, PORT=19993)
#
# Prints, per run: the loader's CPU per request (its own getrusage), p99, max, KOs and the
# history's size. The history is kept in memory during the load and written after it, so
# the difference should be the write, outside the load.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PORT="${PORT:-19993}"
scale="${SCALE:-6}"
dscale="${DURATION_SCALE:-0.15}"
build_release
loader="$repo/target/release/crebito-loader"
work=$(mktemp -d)
on_exit "\"$stack\" down >/dev/null 2>&1"
on_exit "rm -rf '$work'"

machine "SCALE $scale, DURATION_SCALE $dscale"
echo "| history | loader CPU µs / request | p99 | max | KO | history file |"
echo "|---|---|---|---|---|---|"
for _ in $(seq "${ROUNDS:-3}"); do
  for with in no yes; do
    "$stack" up >/dev/null 2>&1
    args=()
    [ "$with" = no ] || args=(--history "$work/history.jsonl")
    "$loader" --target "127.0.0.1:$PORT" --scale "$scale" --duration-scale "$dscale" \
      --out "$work/summary.json" "${args[@]}" >/dev/null
    "$stack" down >/dev/null 2>&1
    size=–
    [ "$with" = no ] || size=$(du -h "$work/history.jsonl" | cut -f1)
    python3 - "$work/summary.json" "$with" "$size" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {s['loader_cpu_us_per_request']} | {s['latency_ms']['p99']} ms | {s['latency_ms']['max']} ms | {s['ko']} | {sys.argv[3]} |")
PY
    rm -f "$work/history.jsonl"
  done
done
