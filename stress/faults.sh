#!/usr/bin/env bash
# Faults under load, nothing lost: for each scenario a fresh native stack, open-model load from
# the fast loader (every POST with an Idempotency-Key, ambiguous answers retried with it), a
# scheduled fault, then a ledger audit against the client's own log of every POST.
#
#   stress/faults.sh [--scenarios "pg-restart pg-crash api-kill api-term nginx-reload pg-freeze all"]
#                    [--scale S] [--duration-scale D] [--at SECONDS] [--out DIR]
#
# Scenarios (the fault fires --at seconds into the load; "all" spreads every fault over the run):
#   pg-restart    PostgreSQL fast shutdown (SIGINT to the postmaster); the supervisor restarts it
#   pg-crash      PostgreSQL postmaster SIGKILLed, durable profile: every 200 must survive
#   api-kill      one crebito instance SIGKILLed; the supervisor restarts it
#   api-term      one crebito instance SIGTERMed: in-flight requests finish, then it restarts
#   nginx-reload  nginx -s reload (SIGHUP) under load
#   pg-freeze     every PostgreSQL process SIGSTOPped for 5 s, then SIGCONT
# Per scenario DIR/SCENARIO/faults.json; DIR/faults.md is the table. Exit 1 on any lost,
# duplicated or refused-but-stored transaction, or a balance violation (ambiguous answers
# are reported, not failed: they are what the retries are for).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
stack="$repo/deploy/native/stack"
scenarios="pg-restart pg-crash api-kill api-term nginx-reload pg-freeze all"
scale=2
dscale=0.375   # 45 s ramp + 45 s plateau: ~90 s of load
at=40
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) scenarios=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --duration-scale) dscale=$2; shift 2 ;;
    --at) at=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "stress/faults.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out="${out:-$repo/stress/out/faults-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"; out="$(cd "$out" && pwd)"
export PORT="${PORT:-9999}"
say() { printf 'faults: %s\n' "$*" >&2; }

if [ -z "${CREBITO_BIN:-}" ]; then
  (cd "$repo" && cargo build --release --locked -q)
  export CREBITO_BIN="$repo/target/release/crebito"
fi
loader="${LOADER_BIN:-$repo/target/release/crebito-loader}"
check_bin="$(dirname "$loader")/crebito-check"
[ -n "${LOADER_BIN:-}" ] || (cd "$repo" && cargo build --release --locked -q -p crebito-loader)

stack_up=0
trap '[ "$stack_up" = 0 ] || "$stack" down >/dev/null 2>&1 || true' EXIT
trap 'exit 143' INT TERM

# nginx's worker processes (a reload replaces them: the evidence that it happened).
lb_workers() { pgrep -P "$(cat "$("$stack" dir)/pid/lb")" | sort | tr '\n' ' '; }

fault() { # name dir: inject it now; DIR/fired.txt gets its name once it has had its effect
  local before
  say "  $(date -u +%T) fault: $1"
  case "$1" in
    pg-restart) "$stack" signal db INT ;;
    pg-crash) "$stack" signal db KILL ;;
    api-kill) "$stack" signal api1 KILL ;;
    api-term) "$stack" signal api2 TERM ;;
    nginx-reload)
      before=$(lb_workers)
      "$stack" signal lb HUP
      local _; for _ in $(seq 100); do [ "$(lb_workers)" != "$before" ] && break; sleep 0.05; done
      [ "$(lb_workers)" != "$before" ] || { say "nginx did not reload"; return 1; } ;;
    pg-freeze) "$stack" signal db STOP all; sleep 5; "$stack" signal db CONT all ;;
    *) say "unknown fault $1"; return 1 ;;
  esac
  echo "$1" >> "$2/fired.txt"
}

schedule() { # scenario dir: the faults, at their times, in the background of the load
  local s=$1 dir=$2
  if [ "$s" = all ]; then
    # Spread over the load, each given time to heal before the next.
    local total step t=0 f
    total=$(awk -v d="$dscale" 'BEGIN { print 2 * int(120 * d + 0.5) }')
    step=$(( total / 7 ))
    for f in $ALL_FAULTS; do
      t=$(( t + step )); sleep "$step"; fault "$f" "$dir"
    done
  else
    sleep "$at"; fault "$s" "$dir"
  fi
}
ALL_FAULTS="pg-restart api-kill api-term nginx-reload pg-freeze pg-crash"

summaries=()
verdict=0
for s in $scenarios; do
  dir="$out/$s"; mkdir -p "$dir"
  # A crash must not lose what was answered 200: the durable profile (logged tables, fsync).
  if [ "$s" = pg-crash ] || [ "$s" = all ]; then export PG_DURABLE=1 CREBITO_PG_PROFILE=durable
  else unset PG_DURABLE; export CREBITO_PG_PROFILE=contest; fi
  say "$s: fresh stack (profile $CREBITO_PG_PROFILE), SCALE=$scale DURATION_SCALE=$dscale"
  "$stack" up >/dev/null; stack_up=1
  : > "$dir/fired.txt"
  schedule "$s" "$dir" & faults_pid=$!
  "$loader" --target "127.0.0.1:$PORT" --scale "$scale" --duration-scale "$dscale" --idempotent --retries 6 \
    --out "$dir/loader.json" --post-log "$dir/posts.csv" --history "$dir/history.jsonl" > /dev/null
  # A fault that did not fire (or had no effect) fails the scenario: report.py compares
  # fired.txt with what was scheduled.
  wait "$faults_pid" || say "$s: a fault failed to fire"
  if [ "$s" = all ]; then expected=$ALL_FAULTS; else expected=$s; fi
  "$stack" status > "$dir/stack-status.txt" || true
  # The restarts column, found by its header's name.
  restarts=$(awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "restarts") c = i; next }
    c && $c > 0 { printf "%s%s %s", sep, $1, $c; sep = ", " }' "$dir/stack-status.txt")
  "$stack" psql -Atq -c "COPY (SELECT descricao, count(*) FROM transacoes GROUP BY descricao) TO STDOUT WITH CSV" > "$dir/ledger.csv"
  "$stack" psql -Atq -c "SELECT COALESCE(json_agg(row_to_json(a)), '[]') FROM ($(grep -v '^--' "$repo/sql/audit.sql")) a" > "$dir/audit.json"
  "$stack" psql -Atq -c "$(grep -v '^--' "$here/ledger.sql")" > "$dir/ledger.json"
  "$stack" down >/dev/null; stack_up=0
  # What every client saw while the fault happened, against one serial order in real time.
  "$check_bin" --history "$dir/history.jsonl" --ledger "$dir/ledger.json" --out "$dir/check.json" 2>"$dir/check.log" >&2 || true
  python3 "$here/report.py" faults --scenario "$s" --posts "$dir/posts.csv" --ledger "$dir/ledger.csv" \
    --audit "$dir/audit.json" --loader "$dir/loader.json" --restarts "${restarts:-none}" --check "$dir/check.json" \
    --profile "$CREBITO_PG_PROFILE" --fired "$dir/fired.txt" --expected "$expected" --out "$dir/faults.json" || verdict=1
  summaries+=("$dir/faults.json")
done
python3 "$here/report.py" faults-table --out "$out/faults.md" "${summaries[@]}"
exit "$verdict"
