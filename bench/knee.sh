#!/usr/bin/env bash
# Where each variant stops passing, as the median of repeated rounds: one saturation reaches
# a different step from one sitting (or run) to the next on a noisy VM, so a knee worth
# comparing is a median.
#
#   bench/knee.sh OUT [NAME:ASSIGNMENTS …]
#       (ROUNDS=3, STEPS="12 14 16 18 20 24", DURATION_SCALE=0.2, PORT=19994)
#
# A variant is NAME:ASSIGNMENTS, the environment deploy/native/stack runs under ("-" for
# deploy/.env as is), as in bench/durability.sh. Default: "durable:-" (the default) and
# "contest:CREBITO_PG_PROFILE=contest" (the opt-in). Every round runs one saturation per
# variant (stress/run.sh --saturate: the fast loader, a fresh stack per step, stopping at the
# first step that fails the SLA or consistency), the variants' order alternating between
# rounds: OUT/round-N/NAME/saturation.json. OUT/knee.md and OUT/knee.json: each variant's
# highest passing SCALE per round and their median (stress/report.py knee).
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(out_dir "${1:?usage: bench/knee.sh OUT [NAME:ASSIGNMENTS …]}"); shift
[ $# -gt 0 ] || set -- "durable:-" "contest:CREBITO_PG_PROFILE=contest"
export PORT="${PORT:-19994}"
rounds=${ROUNDS:-3}
steps=${STEPS:-12 14 16 18 20 24}
dscale=${DURATION_SCALE:-0.2}
build_release

variants "$@"

{
  machine "ROUNDS $rounds, STEPS $steps, DURATION_SCALE $dscale"
  for name in "${variant_names[@]}"; do echo "variant $name: ${variant_env[$name]:-deploy/.env as is}"; done
} > "$out/machine.txt"
cat "$out/machine.txt" >&2

for round in $(seq "$rounds"); do
  mapfile -t order < <(round_order "$round" "${variant_names[@]}")
  for name in "${order[@]}"; do
    echo "knee: round $round, $name" >&2
    with_variant "$name" "$repo/stress/run.sh" --saturate --steps "$steps" \
      --duration-scale "$dscale" --out "$out/round-$round/$name" ||
      echo "knee: round $round, $name: the saturation stopped (see its saturation.json)" >&2
  done
done

python3 "$repo/stress/report.py" knee --out "$out" "${variant_names[@]}"
echo "knee: $out/knee.md" >&2
