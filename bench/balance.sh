#!/usr/bin/env bash
# Round robin (what the contest rules ask, deploy/nginx.conf) against least_conn (the Python
# reference's choice), measured side by side in one sitting on the native contest stack.
#
#   bench/balance.sh OUT        (ROUNDS=3, FAST_SCALES="12 24", FAST_DURATION_SCALE=0.15)
#
# 1. The official profile with k6, full length, ROUNDS rounds. Each round measures k6's floor
#    once (k6 against a constant nginx) and then runs both methods against it, each on a fresh
#    stack, the order alternating between rounds: OUT/official/{round_robin,least_conn}/run-N
#    and each method's medians.txt (stress/run.sh --floor / --floor-from, report.py medians).
# 2. The fast loader at each of FAST_SCALES, both methods alternating, ROUNDS times
#    (bench/topology.sh's table): OUT/fast.md.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(out_dir "${1:?usage: bench/balance.sh OUT}")
export PORT="${PORT:-19994}"
build_release

with_balance() { local m=$1; shift; NGINX_BALANCE=$m "$@"; }
official_rounds "$out" "${ROUNDS:-3}" with_balance round_robin least_conn

: > "$out/fast.md"
for s in ${FAST_SCALES:-12 24}; do
  echo "### SCALE $s" >> "$out/fast.md"
  SCALE=$s DURATION_SCALE=${FAST_DURATION_SCALE:-0.15} ROUNDS=${ROUNDS:-3} \
    "$here/topology.sh" "NGINX_BALANCE=round_robin" "NGINX_BALANCE=least_conn" >> "$out/fast.md"
done
echo "balance: $out/official/*/medians.txt, $out/fast.md" >&2
