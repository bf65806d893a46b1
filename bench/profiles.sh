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
out=${1:?usage: bench/profiles.sh OUT}
rounds=${ROUNDS:-3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PORT="${PORT:-19992}"
(cd "$repo" && cargo build --release --locked -q -p crebito -p crebito-loader)
export CREBITO_BIN="$repo/target/release/crebito"

with_profile() { # PROFILE COMMAND…
  local p=$1; shift
  case "$p" in
    contest) env -u PG_DURABLE CREBITO_PG_PROFILE=contest "$@" ;;
    durable) env PG_DURABLE=1 CREBITO_PG_PROFILE=durable "$@" ;;
  esac
}

profiles=(contest durable)
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order=("${profiles[@]}"); else order=("${profiles[1]}" "${profiles[0]}"); fi
  floor_args=(--floor)
  for p in "${order[@]}"; do
    with_profile "$p" "$repo/stress/run.sh" "${floor_args[@]}" --out "$out/official/$p/run-$r" ||
      echo "profiles: $p run $r failed (see its summary.txt)" >&2
    floor_args=(--floor-from "$out/official/$p/run-$r/floor.json")
  done
done
for p in "${profiles[@]}"; do
  python3 "$repo/stress/report.py" medians --out "$out/official/$p" "$out/official/$p"/run-*/summary.json >&2
done

for p in "${profiles[@]}"; do
  with_profile "$p" "$repo/stress/run.sh" --saturate --steps "${SAT_STEPS:-8 12 16 20 24}" \
    --duration-scale "${SAT_DURATION_SCALE:-0.2}" --out "$out/saturation/$p" ||
    echo "profiles: $p saturation stopped (see its saturation.json)" >&2
done
echo "profiles: $out/official/*/medians.txt, $out/saturation/*/saturation.json" >&2
