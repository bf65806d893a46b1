#!/usr/bin/env bash
# Another split of the contest envelope against deploy/.env's, side by side in one sitting,
# on everything the split is a contest deliverable for:
#
#   bench/split.sh OUT "DB_CPUS=0.6 LB_CPUS=0.5"   (ROUNDS=2, FAST_SCALES="16 18",
#                                                   FAST_DURATION_SCALE=0.2, DURABLE_SCALE=12)
#
# 1. The official profile with k6, full length, ROUNDS rounds, one k6 floor per round, the
#    order alternating: OUT/official/{env,candidate}/run-N and each one's medians.txt.
# 2. The fast loader at each of FAST_SCALES (the knee), both alternating: OUT/fast.md.
# 3. The durable profile (deploy/.env's default, logged tables) at DURABLE_SCALE, both: OUT/durable.md.
# The candidate's assignments must keep the totals within 1.5 CPU (tests/deploy.rs checks
# deploy/.env's, not this).
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(out_dir "${1:?usage: bench/split.sh OUT ASSIGNMENTS}")
split="${2:?usage: bench/split.sh OUT ASSIGNMENTS}"
export PORT="${PORT:-19993}"
build_release
echo "candidate: $split" > "$out/candidate.txt"

# with_split NAME CMD…: CMD with deploy/.env's split (env) or the candidate's.
with_split() {
  local v=$1; shift
  # shellcheck disable=SC2086 # the candidate is a list of assignments
  if [ "$v" = candidate ]; then env $split "$@"; else "$@"; fi
}
official_rounds "$out" "${ROUNDS:-2}" with_split env candidate

: > "$out/fast.md"
for s in ${FAST_SCALES:-16 18}; do
  echo "### SCALE $s" >> "$out/fast.md"
  SCALE=$s DURATION_SCALE=${FAST_DURATION_SCALE:-0.2} ROUNDS=${ROUNDS:-2} \
    "$here/topology.sh" - "$split" >> "$out/fast.md"
done
durable="CREBITO_PG_PROFILE=durable"
SCALE=${DURABLE_SCALE:-12} DURATION_SCALE=${FAST_DURATION_SCALE:-0.2} ROUNDS=${ROUNDS:-2} \
  "$here/topology.sh" "$durable" "$durable $split" > "$out/durable.md"
