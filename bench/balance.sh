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
out=${1:?usage: bench/balance.sh OUT}
rounds=${ROUNDS:-3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PORT="${PORT:-19994}"
(cd "$repo" && cargo build --release --locked -q -p crebito -p crebito-loader)
export CREBITO_BIN="$repo/target/release/crebito"

methods=(round_robin least_conn)
for r in $(seq "$rounds"); do
  # Alternate which method runs first (and so right after the floor).
  if [ $((r % 2)) = 1 ]; then order=("${methods[@]}"); else order=("${methods[1]}" "${methods[0]}"); fi
  floor_args=(--floor)
  for m in "${order[@]}"; do
    NGINX_BALANCE=$m "$repo/stress/run.sh" "${floor_args[@]}" --out "$out/official/$m/run-$r" ||
      echo "balance: $m run $r failed (see its summary.txt)" >&2
    floor_args=(--floor-from "$out/official/$m/run-$r/floor.json")
  done
done
for m in "${methods[@]}"; do
  python3 "$repo/stress/report.py" medians --out "$out/official/$m" "$out/official/$m"/run-*/summary.json >&2
done

: > "$out/fast.md"
for s in ${FAST_SCALES:-12 24}; do
  echo "### SCALE $s" >> "$out/fast.md"
  SCALE=$s DURATION_SCALE=${FAST_DURATION_SCALE:-0.15} ROUNDS=$rounds \
    "$here/topology.sh" "NGINX_BALANCE=round_robin" "NGINX_BALANCE=least_conn" >> "$out/fast.md"
done
echo "balance: $out/official/*/medians.txt, $out/fast.md" >&2
