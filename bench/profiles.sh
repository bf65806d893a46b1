#!/usr/bin/env bash
# Profiles side by side in one sitting, on the native contest stack: what keeping the money
# through a power cut costs under the contest's load, with and without group commit.
#
#   bench/profiles.sh OUT [NAME:ASSIGNMENTS …]
#       (ROUNDS=3, SAT_STEPS="8 12 16 20 24", SAT_DURATION_SCALE=0.2, SAT=1,
#        OFFICIAL_DURATION_SCALE=1, OFFICIAL_LOADER=k6)
#
# A variant is NAME:ASSIGNMENTS, the environment deploy/native/stack runs under ("-" for
# deploy/.env as is), as in bench/durability.sh. Default:
#   contest:CREBITO_PG_PROFILE=contest     the contest opt-in (no group commit, its default)
#   contest-batched:CREBITO_PG_PROFILE=contest CREBITO_PG_BATCH=32
#                                          the contest opt-in with group commit
#   durable:-                              the default: fsync, full-page writes, synchronous
#                                          commit on, logged tables, group commit
# 1. The official profile with k6, full length, ROUNDS rounds. Each round measures k6's floor
#    once (k6 against a constant nginx), then runs every variant against it, each on a fresh
#    stack, the order reversed every other round: OUT/official/NAME/run-N and each variant's
#    medians.txt (stress/run.sh --floor / --floor-from, report.py medians).
# 2. With SAT=1, saturation with the fast loader (stress/run.sh --saturate) for each variant,
#    SAT_STEPS, stopping at the first step that fails the SLA: OUT/saturation/NAME.
# OUT/machine.txt: the machine and the disk's flush time in this sitting (pg_test_fsync).
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(out_dir "${1:?usage: bench/profiles.sh OUT [NAME:ASSIGNMENTS …]}"); shift
[ $# -gt 0 ] || set -- "contest:CREBITO_PG_PROFILE=contest" \
  "contest-batched:CREBITO_PG_PROFILE=contest CREBITO_PG_BATCH=32" "durable:-"
export PORT="${PORT:-19992}"
build_release

variants "$@"

{
  machine "ROUNDS ${ROUNDS:-3}, SAT_STEPS ${SAT_STEPS:-8 12 16 20 24}, SAT_DURATION_SCALE ${SAT_DURATION_SCALE:-0.2}"
  disk_flush "${STACK_DIR:-/tmp}"
  for name in "${variant_names[@]}"; do echo "variant $name: ${variant_env[$name]:-deploy/.env as is}"; done
} > "$out/machine.txt"
cat "$out/machine.txt" >&2

official_rounds "$out" "${ROUNDS:-3}" with_variant "${variant_names[@]}"

if [ "${SAT:-1}" = 1 ]; then
  for name in "${variant_names[@]}"; do
    with_variant "$name" "$repo/stress/run.sh" --saturate --steps "${SAT_STEPS:-8 12 16 20 24}" \
      --duration-scale "${SAT_DURATION_SCALE:-0.2}" --out "$out/saturation/$name" ||
      echo "profiles: $name saturation stopped (see its saturation.json)" >&2
  done
fi
echo "profiles: $out/official/*/medians.txt, $out/saturation/*/saturation.json" >&2
