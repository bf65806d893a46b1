#!/usr/bin/env bash
# The durable profile against the contest profile, side by side in one sitting, on the native
# contest stack: what keeping the money through a power cut costs under the contest's load.
#
#   bench/profiles.sh OUT     (ROUNDS=3, SAT_STEPS="8 12 16 20 24", SAT_DURATION_SCALE=0.2)
#
# 1. The official profile with k6, full length, ROUNDS rounds. Each round measures k6's floor
#    once (k6 against a constant nginx), then runs both profiles against it, each on a fresh
#    stack, the order alternating between rounds: OUT/official/{contest,durable}/run-N and
#    each profile's medians.txt (stress/run.sh --floor / --floor-from, report.py medians).
# 2. Saturation with the fast loader (stress/run.sh --saturate) for each profile, SAT_STEPS,
#    stopping at the first step that fails the SLA: OUT/saturation/{contest,durable}.
# The profiles: "contest" is deploy/.env as is (PG_CONTEST_FLAGS, UNLOGGED tables);
# "durable" is PG_DURABLE=1 CREBITO_PG_PROFILE=durable (PG_DURABLE_FLAGS, logged tables).
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(out_dir "${1:?usage: bench/profiles.sh OUT}")
export PORT="${PORT:-19992}"
build_release

with_profile() { # PROFILE COMMAND…
  local p=$1; shift
  case "$p" in
    contest) env -u PG_DURABLE CREBITO_PG_PROFILE=contest "$@" ;;
    durable) env PG_DURABLE=1 CREBITO_PG_PROFILE=durable "$@" ;;
  esac
}

profiles=(contest durable)
official_rounds "$out" "${ROUNDS:-3}" with_profile "${profiles[@]}"

for p in "${profiles[@]}"; do
  with_profile "$p" "$repo/stress/run.sh" --saturate --steps "${SAT_STEPS:-8 12 16 20 24}" \
    --duration-scale "${SAT_DURATION_SCALE:-0.2}" --out "$out/saturation/$p" ||
    echo "profiles: $p saturation stopped (see its saturation.json)" >&2
done
echo "profiles: $out/official/*/medians.txt, $out/saturation/*/saturation.json" >&2
