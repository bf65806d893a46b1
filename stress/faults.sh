#!/usr/bin/env bash
# Faults under load, nothing lost: for each scenario a fresh native stack, open-model load from
# the fast loader (every POST with an Idempotency-Key, ambiguous answers retried with it), a
# scheduled fault, then a ledger audit against the client's own log of every POST.
#
#   stress/faults.sh [--scenarios "pg-restart pg-crash pg-kill-batches api-kill api-term nginx-reload
#                                  pg-freeze all power-loss disk-full"]
#                    [--scale S] [--duration-scale D] [--at SECONDS] [--cuts N] [--freeze SECONDS]
#                    [--out DIR]
#
# Every scenario runs the stack as a user gets it (deploy/.env: the durable profile), but the
# contest opt-in's power cut. Scenarios (the fault fires --at seconds into the load; "all"
# spreads every fault over the run; the default is every scenario but power-loss and disk-full):
#   pg-restart    PostgreSQL fast shutdown (SIGINT to the postmaster); the supervisor restarts it
#   pg-crash      PostgreSQL postmaster SIGKILLed: every 200 must survive
#   pg-kill-batches  every PostgreSQL process SIGKILLed at a moment the instances are sending
#                 group commits (batches of several writes seen on /metrics just before),
#                 each member's answer must hold
#   api-kill      one crebito instance SIGKILLed; the supervisor restarts it
#   api-term      one crebito instance SIGTERMed: in-flight requests finish, then it restarts
#   nginx-reload  nginx -s reload (SIGHUP) under load
#   pg-freeze     every PostgreSQL process SIGSTOPped for --freeze seconds (default 5), then SIGCONT;
#                 durable profile (group commit on): faults.json's after_thaw is how soon after
#                 the thaw new requests were served normally again, from the loader's own records
#                 (stress/reporting/faults.py, `recovery`), and queue the group commit queue's
#                 high-water mark (crebito_pg_batch_waiting_max)
#   power-loss    PostgreSQL's data on LazyFS, --cuts power cuts (default 3, every --at/2 s):
#                 every write not fsynced is dropped, PostgreSQL restarts on what reached the
#                 "disk". Runs four times: power-loss-default (the default stack: must lose
#                 nothing answered 200), power-loss-contest (CREBITO_PG_PROFILE=contest: its
#                 loss is measured, not failed), power-loss-sqlite (the embedded store, one crebito on its SQLite
#                 file on LazyFS, deploy/native/embedded, synchronous = FULL: must lose
#                 nothing) and power-loss-sqlite-normal (synchronous = NORMAL: its loss is
#                 measured, the evidence that the cut bites SQLite too); each can be asked
#                 for alone
#   disk-full     PostgreSQL's data on a small ext4 image, filled to the last byte --at seconds
#                 in, freed 10 s later: quick 503/504s, nothing lost, 200s again
# RETRY_BUDGET=SHARE|off: the clients' retry budget (crebito-loader --retry-budget; unset, its
# default): refused POSTs are retried only within it, unknown outcomes always.
# Per scenario DIR/SCENARIO/faults.json; DIR/faults.md is the table. Exit 1 on any lost,
# duplicated or refused-but-stored transaction, or a balance violation (ambiguous answers
# are reported, not failed: they are what the retries are for).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
stack="$repo/deploy/native/stack"
embedded="$repo/deploy/native/embedded"
scenarios="pg-restart pg-crash pg-kill-batches api-kill api-term nginx-reload pg-freeze all"
scale=2
dscale=0.375   # 45 s ramp + 45 s plateau: ~90 s of load
at=40
cuts=3
freeze=5
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) scenarios=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --duration-scale) dscale=$2; shift 2 ;;
    --at) at=$2; shift 2 ;;
    --cuts) cuts=$2; shift 2 ;;
    --freeze) freeze=$2; shift 2 ;;
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

# The store under test: the contest stack (PostgreSQL), or the embedded store alone; both
# launchers answer up, down and power-cut.
store=stack
launcher=$stack
stack_up=0
trap '[ "$stack_up" = 0 ] || store_down >/dev/null 2>&1 || true' EXIT
store_up() { "$launcher" up >/dev/null; stack_up=1; }
store_down() { "$launcher" down >/dev/null; stack_up=0; }
trap 'exit 143' INT TERM

# nginx's worker processes (a reload replaces them: the evidence that it happened).
# A service's pid, from `stack status --json` (the stack's facts are read by name).
svc_pid() { "$stack" status --json | python3 -c 'import json, sys; print(next(s["pid"] for s in json.load(sys.stdin)["services"] if s["name"] == sys.argv[1]))' "$1"; }
lb_processes() { pgrep -P "$1" | sort | tr '\n' ' '; }  # nginx's worker processes, by its master's pid

fault() { # name dir: inject it now; DIR/fired.txt gets its name once it has had its effect
  local before
  say "  $(date -u +%T) fault: $1"
  case "$1" in
    pg-restart) "$stack" signal db INT ;;
    pg-crash) "$stack" signal db KILL ;;
    pg-kill-batches) batches_in_flight || { say "no group commit seen in 10 s"; return 1; }
      "$stack" signal db KILL all ;;
    api-kill) "$stack" signal api1 KILL ;;
    api-term) "$stack" signal api2 TERM ;;
    nginx-reload)
      local lb; lb=$(svc_pid lb)
      before=$(lb_processes "$lb")
      "$stack" signal lb HUP
      local _; for _ in $(seq 100); do [ "$(lb_processes "$lb")" != "$before" ] && break; sleep 0.05; done
      [ "$(lb_processes "$lb")" != "$before" ] || { say "nginx did not reload"; return 1; } ;;
    pg-freeze) date +%s%3N > "$2/freeze-unix-ms"; "$stack" signal db STOP all; sleep "$freeze"
      "$stack" signal db CONT all; date +%s%3N >> "$2/freeze-unix-ms" ;;
    power-loss) "$launcher" power-cut ;;
    disk-full)
      say "    free bytes after the fill: $("$stack" disk-fill)"; sleep 10; "$stack" disk-free ;;
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
  elif [ "$(fault_of "$s")" = power-loss ]; then
    local _; for _ in $(seq "$cuts"); do sleep $(( at / 2 )); fault power-loss "$dir"; done
  else
    sleep "$at"; fault "$(fault_of "$s")" "$dir"
  fi
}
DB_BACK_S=30
RETRY_FOR_S=30
# Transactions of more than one write the instances have sent so far (crebito_pg_batch_size).
batched() {
  local ops; ops=$("$stack" env STACK_OPS_URL)
  { curl -fsS "$ops/metrics/api1"; curl -fsS "$ops/metrics/api2"; } 2>/dev/null | awk '
    /^crebito_pg_batch_size_bucket\{.*le="1"\}/ { one += $NF } /^crebito_pg_batch_size_count/ { all += $NF }
    END { print all - one }'
}
# Returns once the instances were seen sending batches within the last 50 ms (10 s at most).
batches_in_flight() {
  local before now _
  before=$(batched)
  for _ in $(seq 200); do
    sleep 0.05; now=$(batched)
    [ "$now" -gt "$before" ] && { say "    group commits seen: $now so far"; return 0; }
    before=$now
  done
  return 1
}
db_back() {
  local _ probe=("$stack" psql -Atqc "SELECT 1")
  [ "$store" = stack ] || probe=(curl -fsS -o /dev/null "$("$embedded" url)/healthz")
  for _ in $(seq $(( DB_BACK_S * 10 ))); do "${probe[@]}" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1
}
# export_store DIR: the audit's files from the store, as `embedded export` writes them:
# ledger.csv (descricao,count), audit.json (sql/audit.sql's rows), ledger.json (crebito-check's).
export_store() {
  if [ "$store" = embedded ]; then "$embedded" export "$1"; return; fi
  "$stack" psql -Atq -c "COPY (SELECT descricao, count(*) FROM transacoes GROUP BY descricao) TO STDOUT WITH CSV" > "$1/ledger.csv"
  "$stack" psql -Atq -c "SELECT COALESCE(json_agg(row_to_json(a)), '[]') FROM ($(grep -v '^--' "$repo/sql/audit.sql")) a" > "$1/audit.json"
  "$stack" psql -Atq -c "$(grep -v '^--' "$here/ledger.sql")" > "$1/ledger.json"
}
fault_of() { case "$1" in power-loss-*) echo power-loss ;; *) echo "$1" ;; esac; }
expected_of() {
  case "$1" in
    all) echo "$ALL_FAULTS" ;;
    power-loss-*) local _; for _ in $(seq "$cuts"); do printf 'power-loss '; done ;;
    *) echo "$1" ;;
  esac
}
# (pg-kill-batches before the freeze: it waits for group commits, which need load.)
ALL_FAULTS="pg-restart api-kill api-term nginx-reload pg-kill-batches pg-freeze"

summaries=()
verdict=0
runs=""
for s in $scenarios; do
  case "$s" in
    power-loss) runs="$runs power-loss-default power-loss-contest power-loss-sqlite power-loss-sqlite-normal" ;;
    pg-restart|pg-crash|pg-kill-batches|api-kill|api-term|nginx-reload|pg-freeze|all|power-loss-default|power-loss-contest|power-loss-sqlite|power-loss-sqlite-normal|disk-full) runs="$runs $s" ;;
    *) echo "stress/faults.sh: unknown scenario $s (see --help)" >&2; exit 2 ;;
  esac
done
for s in $runs; do
  dir="$out/$s"; mkdir -p "$dir"
  # Every scenario runs the stack as a user gets it (deploy/.env: durable), which must lose
  # nothing answered 200. The contest opt-in's power cut is there to measure what it loses.
  loss_expected=()
  unset CREBITO_PG_PROFILE
  case "$s" in
    power-loss-contest) export CREBITO_PG_PROFILE=contest; loss_expected=(--loss-expected) ;;
    power-loss-sqlite-normal) loss_expected=(--loss-expected) ;;
  esac
  case "$s" in power-loss-*) export PG_FS=lazyfs ;; disk-full) export PG_FS=small ;; *) unset PG_FS ;; esac
  store=stack; launcher=$stack; unset CREBITO_SQLITE_SYNC
  case "$s" in
    power-loss-sqlite) store=embedded; profile=sqlite ;;
    power-loss-sqlite-normal) store=embedded; profile=sqlite-normal; export CREBITO_SQLITE_SYNC=normal ;;
  esac
  [ "$store" = stack ] || { launcher=$embedded; export EMBEDDED_FS=lazyfs; }
  if [ "$store" = embedded ]; then
    say "$s: fresh embedded store (SQLite on LazyFS), SCALE=$scale DURATION_SCALE=$dscale"
  else
    say "$s: fresh stack (profile ${CREBITO_PG_PROFILE:-default}, data on ${PG_FS:-disk}), SCALE=$scale DURATION_SCALE=$dscale"
  fi
  store_up
  # The profile the stack says it runs (stack.env), not the one asked for.
  [ "$store" != stack ] || profile=$("$stack" env STACK_PG_PROFILE)
  : > "$dir/fired.txt"
  schedule "$s" "$dir" & faults_pid=$!
  # Keyed retries for up to RETRY_FOR_S after each POST's first attempt (each after one to one
  # and a half times the longer of the answer's Retry-After and a back-off of 200 ms doubling
  # to 4 s: crebito-loader --help): longer than the stack takes to heal, so every outcome gets
  # settled. A run that measures a loss does not wait for a database that may never come back.
  # A POST refused outright (503: not applied) is sent again only within the clients' retry
  # budget (RETRY_BUDGET: a share of first attempts, or off; unset, the loader's default):
  # without one an outage's refusals all come back at once when it ends.
  retry_for=$RETRY_FOR_S; [ ${#loss_expected[@]} -eq 0 ] || retry_for=5
  budget=(); [ -z "${RETRY_BUDGET:-}" ] || budget=(--retry-budget "$RETRY_BUDGET")
  "$loader" --target "127.0.0.1:$PORT" --scale "$scale" --duration-scale "$dscale" \
    --idempotent --retries 1000 --retry-for "$retry_for" "${budget[@]}" \
    --out "$dir/loader.json" --post-log "$dir/posts.csv" --history "$dir/history.jsonl" > /dev/null
  # A fault that did not fire (or had no effect) fails the scenario: report.py compares
  # fired.txt with what was scheduled.
  wait "$faults_pid" || say "$s: a fault failed to fire"
  expected=$(expected_of "$s")
  if [ "$store" = embedded ]; then
    n=$("$embedded" restarts); restarts=""; [ "$n" = 0 ] || restarts="crebito $n"
  else
    # The group commit's queue (its high-water mark, its refusals), as the instances saw it.
    ops=$("$stack" env STACK_OPS_URL)
    { curl -fsS "$ops/metrics/api1"; curl -fsS "$ops/metrics/api2"; } > "$dir/metrics.txt" 2>/dev/null || true
    "$stack" status > "$dir/stack-status.txt" || true
    "$stack" status --json > "$dir/stack-status.json" || true
    restarts=$(python3 -c '
import json, sys
print(", ".join(s["name"] + " " + str(s["restarts"]) for s in json.load(open(sys.argv[1]))["services"] if s["restarts"]))
' "$dir/stack-status.json" 2>/dev/null || true)
  fi
  # The database must be back by itself. If it is not (the contest profile after a power
  # cut can fail to start at all), nothing it held can be read: every answer counts as lost.
  check_args=(--check "$dir/check.json")
  if db_back; then
    export_store "$dir"
  else
    say "$s: the database did not come back within ${DB_BACK_S}s of the end of the load"
    [ "$store" = embedded ] || cp "$("$stack" env STACK_LOG_DIR)/db.log" "$dir/db.log" 2>/dev/null || true
    : > "$dir/ledger.csv"; echo '[]' > "$dir/audit.json"; check_args=(--db-down)
  fi
  store_down
  # pg-freeze: how soon after the thaw new requests were served normally (report.py).
  thaw=(); [ "$s" != pg-freeze ] || [ ! -s "$dir/freeze-unix-ms" ] || thaw=(--thaw "$dir/freeze-unix-ms")
  metrics=(); [ ! -s "$dir/metrics.txt" ] || metrics=(--metrics "$dir/metrics.txt")
  # What every client saw while the fault happened, against one serial order in real time.
  [ ! -f "$dir/ledger.json" ] ||
    "$check_bin" --history "$dir/history.jsonl" --ledger "$dir/ledger.json" --out "$dir/check.json" 2>"$dir/check.log" >&2 || true
  python3 "$here/report.py" faults --scenario "$s" --posts "$dir/posts.csv" --ledger "$dir/ledger.csv" \
    --audit "$dir/audit.json" --loader "$dir/loader.json" --restarts "${restarts:-none}" "${check_args[@]}" \
    --profile "$profile" --fired "$dir/fired.txt" --expected "$expected" ${loss_expected[@]+"${loss_expected[@]}"} \
    ${thaw[@]+"${thaw[@]}"} ${metrics[@]+"${metrics[@]}"} --out "$dir/faults.json" || verdict=1
  summaries+=("$dir/faults.json")
done
python3 "$here/report.py" faults-table --out "$out/faults.md" "${summaries[@]}"
exit "$verdict"
