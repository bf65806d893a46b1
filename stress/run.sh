#!/usr/bin/env bash
# The official Rinha load test against a fresh native contest stack, with a database audit,
# an HTML report and the contest's own score.
#
#   stress/run.sh [--scale S] [--duration-scale D] [--loader k6|fast] [--floor | --floor-from F] [--out DIR]
#   stress/run.sh --saturate [--duration-scale D] [--steps "6 8 10 …"] [--loader fast|k6] [--out DIR]
#   … [--cluster] [--clients N] [--repeat N]
#
# One run: brings up deploy/native/stack (PORT, default 9999), replays the official
# simulation, audits the database (saldo = credits − debits and saldo ≥ −limite for every
# client; stored rows = POSTs answered 200), takes the stack down, and writes
# DIR/report.html, DIR/summary.json and DIR/summary.txt.
# Exit code 0 only with 0 KO, 0 inconsistencies and a clean audit (latency never fails it).
#
# --loader k6 (default for one run): stress/rinha.js, every scenario of the simulation, and
#   k6's HTML dashboard. --loader fast: stress/loader (crebito-loader), the three load
#   scenarios as an open model at ≤ 100 µs of CPU per request, KOs by cause, start lag, the
#   loader's own CPU, and a timeline report.
# --floor: first runs the same loader, same SCALE, against an nginx answering constant valid
#   bodies (the instrument's own floor, same sitting); the summary reads "stack vs floor".
# --floor-from FILE: a floor.json already measured in this sitting with the same loader and
#   SCALE (bench/balance.sh measures one per round and compares two stacks against it).
# --saturate (fast loader by default): one fresh stack per SCALE step, until the SLA (98 %
#   OK under 250 ms) or consistency breaks; writes DIR/saturation.json, DIR/saturation.svg
#   and one folder a step.
# --cluster: the same against deploy/native/cluster (a Citus coordinator and CITUS_WORKERS
#   workers, default 2) instead of the contest stack.
# --repeat N: N runs in a row (DIR/run-1 … run-N, each with its floor if --floor), and
#   DIR/medians.txt / medians.json: the median of each figure over the runs (one run on a
#   noisy VM ranks nothing; medians next to the floor can).
# --no-sample: do not sample the server's side (stress/sample.py) — it shares the cores, and
#   at 6x it added ~0.3 ms to the p99 (docs/src/stress.md): for ranking tails, leave it out.
#   STRESS_SAMPLE=0 in the environment does the same (for a bench variant).
# --clients N: seed N − 5 extra clients (CREBITO_EXTRA_CLIENTS) and spread the fast loader's
#   requests over clients 1…N (k6 keeps the contest's five).
# LOADER_NEIGHBOUR=k6 (environment; default unset): a second k6 runs the same simulation at
#   the same time against a constant nginx on the stack's spare port: k6's use of the cores beside whichever
#   loader measures (DIR/neighbour/k6-cpu.json), to tell k6's CPU from k6's way of loading.
# STRESS_TRACE_PG=1 (environment; default unset): stress/pgtrace.sh records PostgreSQL's system
#   calls during the load (perf, root): DIR/pgtrace.json, each request's time inside the
#   database and each WAL flush as the commits met it, and the instances' /metrics beside it.
# LOADER_CPUS=LIST (environment; default unset: any core): the loader, k6 or fast, the
#   floor's too, runs pinned to those cores (`taskset -c LIST`). With the stack pinned away
#   from them (CPUSET, deploy/native/lib/config.sh) the loader and the stack stop sharing
#   cores: a diagnostic for a machine with few of them (docs/src/performance.md, "k6 sharing
#   the cores").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
scale=1
dscale=1
out=""
saturate=0
steps="6 8 10 12 15 18 24"
loader=""
floor=0
floor_from=""
launcher=stack
clients=5
repeat=1
sample=${STRESS_SAMPLE:-1}
trace_pg=${STRESS_TRACE_PG:-0}

while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --duration-scale) dscale=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --saturate) saturate=1; shift ;;
    --steps) steps=$2; shift 2 ;;
    --loader) loader=$2; shift 2 ;;
    --floor) floor=1; shift ;;
    --floor-from) floor_from=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --cluster) launcher=cluster; shift ;;
    --clients) clients=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --no-sample) sample=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "stress/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$loader" ] || { if [ "$saturate" = 1 ]; then loader=fast; else loader=k6; fi; }
case "$loader" in k6|fast) ;; *) echo "stress/run.sh: --loader k6 or fast" >&2; exit 2 ;; esac
out="${out:-$repo/stress/out/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
export PORT="${PORT:-9999}"
stack="$repo/deploy/native/$launcher"
[ "$clients" -ge 5 ] 2>/dev/null || { echo "stress/run.sh: --clients needs a number >= 5" >&2; exit 2; }
export CREBITO_EXTRA_CLIENTS=$((clients - 5))

say() { printf 'stress: %s\n' "$*" >&2; }

# The loader's cores (LOADER_CPUS above): a prefix for every loader command.
loader_sched=()
[ -z "${LOADER_CPUS:-}" ] || loader_sched=(taskset -c "$LOADER_CPUS")

if { [ "$loader" = k6 ] || [ -n "${LOADER_NEIGHBOUR:-}" ]; } && ! command -v k6 >/dev/null 2>&1; then
  PATH="$("$repo/scripts/pytools"):$PATH"  # k6 in the project's .venv
fi
# A server binary the caller chose is named in each summary (its version and sha256): the
# summary's commit is this tree's, which need not be the binary's.
given_bin=()
[ -z "${CREBITO_BIN:-}" ] || given_bin=(--crebito-bin "$CREBITO_BIN")
if [ -z "${CREBITO_BIN:-}" ]; then
  say "building crebito (cargo build --release)"
  (cd "$repo" && cargo build --release --locked -q)
  export CREBITO_BIN="$repo/target/release/crebito"
fi
fast="${LOADER_BIN:-$repo/target/release/crebito-loader}"
# The history checker, built beside the loader (the same package).
check_bin="$(dirname "$fast")/crebito-check"
if [ "$loader" = fast ] || [ "$floor" = 1 ]; then
  if [ -z "${LOADER_BIN:-}" ]; then
    say "building the fast loader (cargo build --release -p crebito-loader)"
    (cd "$repo" && cargo build --release --locked -q -p crebito-loader)
  fi
fi

stack_up=0
floor_pid=""
sampler_pid=""
pgtrace_pid=""
pgtrace_dir=""
neighbour_k6=""
neighbour_nginx=""
neighbour_dir=""
cleanup() {
  if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
  if [ -n "$pgtrace_pid" ]; then
    kill -INT "$pgtrace_pid" 2>/dev/null || true; wait "$pgtrace_pid" 2>/dev/null || true
  fi
  # The recording, on a tmpfs, when the run stopped before pgtrace.sh summarize removed it.
  if [ -n "$pgtrace_dir" ] && [ -f "$pgtrace_dir/pgtrace.path" ]; then
    rm -f "$(cat "$pgtrace_dir/pgtrace.path")" "$pgtrace_dir/pgtrace.path" || true
  fi
  if [ "$stack_up" = 1 ]; then "$stack" down >/dev/null 2>&1 || true; fi
  if [ -n "$floor_pid" ]; then kill -QUIT "$floor_pid" 2>/dev/null || true; fi
  neighbour_stop now
}
trap cleanup EXIT
# Interrupted: clean up and stop (a trap alone would clean up and carry on with the next step).
trap 'exit 143' INT TERM

# constant_nginx PORT DIR: an nginx on 127.0.0.1:PORT answering every route with a constant,
# valid body (DIR/nginx.conf, DIR/nginx.log), started in the background, its pid in
# $constant_pid; returns once it answers.
constant_nginx() {
  local port=$1 dir=$2 conf
  mkdir -p "$dir"
  conf="$dir/nginx.conf"
  cat > "$conf" <<NGINX
worker_processes 1;
error_log stderr warn;
pid nginx.pid;
events { worker_connections 10240; multi_accept on; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port backlog=4096 reuseport;
    default_type application/json;
    location ~ /extrato\$ { return 200 '{"saldo":{"total":0,"data_extrato":"2024-01-17T02:34:41.217753Z","limite":100000},"ultimas_transacoes":[]}'; }
    location / { return 200 '{"limite":100000,"saldo":0}'; }
  }
}
NGINX
  "$(command -v nginx || echo /usr/sbin/nginx)" -p "$dir" -c "$conf" -g "daemon off;" 2>"$dir/nginx.log" &
  constant_pid=$!
  local _; for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/clientes/1/extrato" 2>/dev/null && break; sleep 0.1; done
}

# floor SCALE DURATION_SCALE DIR: the loader against a constant nginx (constant_nginx) on the
# same port: what the instrument and one nginx hop cost.
floor() {
  local s=$1 d=$2 dir=$3
  constant_nginx "$PORT" "$dir/floor"
  floor_pid=$constant_pid
  say "floor: $loader against a constant nginx, SCALE=$s"
  if [ "$loader" = fast ]; then
    "${loader_sched[@]}" "$fast" --target "127.0.0.1:$PORT" --scale "$s" --duration-scale "$d" --out "$dir/floor.json" > /dev/null
  else
    # The validations expect a real ledger and fail here; only the latency is the floor. k6
    # runs as it does against the stack (its dashboard on: ~10 % more of its CPU), so that the
    # floor is the same instrument's.
    (cd "$repo" && env "${k6_dashboard[@]}" K6_WEB_DASHBOARD_EXPORT="$dir/floor/k6-report.html" \
      SUMMARY_JSON="$dir/floor.json" "${loader_sched[@]}" k6 run --no-color -q -e BASE_URL="http://127.0.0.1:$PORT" \
      -e SCALE="$s" -e DURATION_SCALE="$d" stress/rinha.js > "$dir/floor/k6.log" 2>&1) || true
    rm -f "$dir/floor/k6-report.html" # the instrument's page against a constant: nothing to read
  fi
  kill -QUIT "$floor_pid"; wait "$floor_pid" 2>/dev/null || true; floor_pid=""
}

# k6's HTML dashboard, exported once the run ends (no server: port -1), a point a second; the
# floor runs k6 with it too.
k6_dashboard=(K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_PORT=-1 K6_WEB_DASHBOARD_PERIOD=1s)

# k6_recorded PORT SCALE DURATION_SCALE DIR [K6_FLAG…]: stress/rinha.js against
# 127.0.0.1:PORT, run from the repository with a relative script path (its log names no
# absolute path), its dashboard exported to DIR/k6-report.html, its summary, log and CPU
# seconds in DIR (report.py k6). Replaces the calling subshell.
k6_recorded() {
  local port=$1 s=$2 d=$3 dir=$4; shift 4
  cd "$repo"
  exec env "${k6_dashboard[@]}" K6_WEB_DASHBOARD_EXPORT="$dir/k6-report.html" SUMMARY_JSON="$dir/k6-summary.json" \
    python3 "$here/report.py" k6 --log "$dir/k6.log" --cpu-out "$dir/k6-cpu.json" -- \
    "${loader_sched[@]}" k6 run --no-color "$@" -e BASE_URL="http://127.0.0.1:$port" -e SCALE="$s" \
    -e DURATION_SCALE="$d" stress/rinha.js
}

# run_k6 SCALE DURATION_SCALE DIR SECONDS: stress/rinha.js with k6's HTML dashboard export.
run_k6() {
  local s=$1 d=$2 dir=$3 load_s=$4
  say "running k6 for ~${load_s}s (log: $dir/k6.log)"
  (k6_recorded "$PORT" "$s" "$d" "$dir") &
  local k6pid=$! start=$SECONDS
  while kill -0 "$k6pid" 2>/dev/null; do
    sleep 5
    kill -0 "$k6pid" 2>/dev/null || break
    local line
    line=$(grep -a 'running (' "$dir/k6.log" 2>/dev/null | tail -n1 | sed 's/^ *//' || true)
    printf 'stress: %3ss/%ss %s\n' "$((SECONDS - start))" "$load_s" "${line:-starting}" >&2
  done
  wait "$k6pid" || say "k6 exited with an error (see $dir/k6.log)"
}

# neighbour_start SCALE DURATION_SCALE DIR: with LOADER_NEIGHBOUR=k6, a second k6 runs the
# same simulation at the same time against a constant nginx on the stack's spare port
# (STACK_SPARE_PORT, deploy/native/lib/config.sh's port table; DIR/neighbour: its
# log and its CPU, k6-cpu.json): k6's use of the cores without its measurements, beside
# whichever loader measures. Nothing without it.
neighbour_start() {
  local s=$1 d=$2 dir=$3/neighbour port
  case "${LOADER_NEIGHBOUR:-}" in
    "") return 0 ;;
    k6) ;;
    *) echo "stress/run.sh: LOADER_NEIGHBOUR is k6 or unset" >&2; exit 2 ;;
  esac
  port=$("$stack" env STACK_SPARE_PORT)
  constant_nginx "$port" "$dir"
  neighbour_nginx=$constant_pid
  say "neighbour: k6 against a constant nginx on port $port, SCALE=$s"
  (k6_recorded "$port" "$s" "$d" "$dir" -q) > /dev/null 2>&1 &
  neighbour_k6=$!  # report.py's pid; k6 is its child
  neighbour_dir=$dir
}

# neighbour_stop [now]: waits for the neighbour's k6 (it runs as long as the load; with `now`,
# interrupted, it is stopped first) and stops its nginx.
neighbour_stop() {
  if [ -n "$neighbour_k6" ]; then
    [ "${1:-}" != now ] || pkill -TERM -P "$neighbour_k6" 2>/dev/null || true
    wait "$neighbour_k6" 2>/dev/null || true; neighbour_k6=""
    rm -f "$neighbour_dir/k6-report.html" # the neighbour's page against a constant: nothing to read
  fi
  if [ -n "$neighbour_nginx" ]; then
    kill -QUIT "$neighbour_nginx" 2>/dev/null || true; wait "$neighbour_nginx" 2>/dev/null || true
    neighbour_nginx=""
  fi
}

# run_once SCALE DURATION_SCALE DIR -> exit status of the verdict
run_once() {
  local s=$1 d=$2 dir=$3
  mkdir -p "$dir"
  if [ -n "$floor_from" ]; then cp "$floor_from" "$dir/floor.json"
  elif [ "$floor" = 1 ]; then floor "$s" "$d" "$dir"; fi
  say "SCALE=$s DURATION_SCALE=$d: starting a fresh stack on port $PORT"
  "$stack" up >/dev/null
  stack_up=1
  # The server's side, once a second, until the stack goes down (stress/sample.py).
  rm -f "$dir/server.jsonl" "$dir/sampler.json"
  if [ "$sample" = 1 ]; then
    python3 "$here/sample.py" --stack "$stack" \
      --psql "$("$stack" pg-bin)/psql" --out "$dir/server.jsonl" --cost-out "$dir/sampler.json" &
    sampler_pid=$!
  fi
  rm -f "$dir/pgtrace.json" "$dir/pgtrace.txt.gz" "$dir"/metrics-api*.txt
  if [ "$trace_pg" = 1 ]; then
    pgtrace_dir=$dir
    "$here/pgtrace.sh" record "$stack" "$dir" &
    pgtrace_pid=$!
    sleep 1 # perf attached (it reports nothing when it has)
    kill -0 "$pgtrace_pid" 2>/dev/null || { say "the database's trace did not start: $(tail -n 3 "$dir/pgtrace.log")"; exit 1; }
  fi
  "$stack" cpu > "$dir/cpu-before.txt"
  date +%s.%N > "$dir/load-start.txt"

  local load_s entry state
  load_s=$(awk -v d="$d" 'BEGIN { p = int(120 * d + 0.5); if (p < 1) p = 1; print 2 * p + 2 }')
  neighbour_start "$s" "$d" "$dir"
  if [ "$loader" = fast ]; then
    say "running the fast loader for ~${load_s}s"
    "${loader_sched[@]}" "$fast" --target "127.0.0.1:$PORT" --scale "$s" --duration-scale "$d" --clients "$clients" \
      --out "$dir/loader-summary.json" --post-log "$dir/posts.csv" --history "$dir/history.jsonl" --bracket > /dev/null ||
      say "the loader exited with an error"
  else
    run_k6 "$s" "$d" "$dir" "$load_s"
  fi

  "$stack" cpu > "$dir/cpu-after.txt"
  if [ -n "$pgtrace_pid" ]; then
    kill -INT "$pgtrace_pid"; wait "$pgtrace_pid" || true; pgtrace_pid=""
    "$here/pgtrace.sh" summarize "$stack" "$dir" || say "the database's trace failed (see $dir/pgtrace.log)"
  fi
  neighbour_stop
  if [ -n "$sampler_pid" ]; then
    sleep 2  # two more samples after the load
    kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
  fi
  "$stack" status > "$dir/stack-status.txt" || true
  # An entry whose ledger PostgreSQL does not hold brings its own audit and ledger (config.sh),
  # run with the stack's directory; crebito's stack.env names no directory ("crebito").
  entry=$("$stack" env STACK_ENTRY)
  [ "$entry" != crebito ] || entry=""
  state=$("$stack" env STACK_DIR)
  if [ -n "$entry" ] && [ -x "$entry/audit" ]; then STACK_DIR=$state "$entry/audit" > "$dir/audit.json"
  else
    "$stack" psql -Atq -c "SELECT COALESCE(json_agg(row_to_json(a)), '[]') FROM ($(grep -v '^--' "$repo/sql/audit.sql")) a" > "$dir/audit.json"
  fi
  if [ "$loader" = k6 ]; then :
  elif [ -n "$entry" ] && [ -x "$entry/ledger" ]; then STACK_DIR=$state "$entry/ledger" > "$dir/ledger.json"
  else "$stack" psql -Atq -c "$(grep -v '^--' "$here/ledger.sql")" > "$dir/ledger.json"; fi
  "$stack" down >/dev/null
  stack_up=0
  # Every answer the fast loader got, against one serial order consistent with real time.
  if [ "$loader" = fast ]; then
    "$check_bin" --history "$dir/history.jsonl" --ledger "$dir/ledger.json" --out "$dir/check.json" 2>"$dir/check.log" >&2 ||
      { say "the history is not strict serializable (see $dir/check.log)"; head -n 20 "$dir/check.log" >&2; }
    # And the black-box check of the same history (the order inferred from the answers, no
    # database): the two modes must agree.
    "$check_bin" --history "$dir/history.jsonl" --out "$dir/check-blackbox.json" 2>"$dir/check-blackbox.log" >&2 ||
      { say "the black-box check did not pass: $(tail -n 1 "$dir/check-blackbox.log" 2>/dev/null) (see $dir/check-blackbox.log)"; head -n 20 "$dir/check-blackbox.log" >&2; }
  fi

  local -a client
  if [ "$loader" = fast ]; then
    [ -s "$dir/loader-summary.json" ] || { say "the loader wrote no summary"; return 1; }
    client=(--loader-summary "$dir/loader-summary.json")
  else
    [ -s "$dir/k6-summary.json" ] || { say "k6 wrote no summary (see $dir/k6.log)"; return 1; }
    client=(--k6 "$dir/k6-summary.json" --k6-cpu "$dir/k6-cpu.json")
  fi
  [ ! -f "$dir/floor.json" ] || client+=(--floor "$dir/floor.json")
  # A history was recorded: its verdict is part of the run, and a missing one fails it.
  [ "$loader" != fast ] || client+=(--check "$dir/check.json" --check-blackbox "$dir/check-blackbox.json")
  python3 "$here/report.py" summarize "${client[@]}" "${given_bin[@]}" --audit "$dir/audit.json" \
    --out "$dir" --scale "$s" --duration-scale "$d" \
    --load-seconds "$load_s" --repo "$repo" --cpu-before "$dir/cpu-before.txt" --cpu-after "$dir/cpu-after.txt" \
    --server "$dir/server.jsonl" --sampler "$dir/sampler.json" --load-start "$(cat "$dir/load-start.txt")" >&2
  [ "$loader" = fast ] || [ -f "$dir/k6-report.html" ] || say "warning: no k6 dashboard (k6 exports none for very short runs)"
  python3 "$here/report.py" check "$dir/summary.json"
}

if [ "$saturate" = 0 ] && [ "$repeat" -gt 1 ]; then
  failed=0
  for i in $(seq "$repeat"); do
    run_once "$scale" "$dscale" "$out/run-$i" || failed=1
  done
  python3 "$here/report.py" medians --out "$out" "$out"/run-*/summary.json >&2
  [ "$failed" = 0 ] || { say "FAILED (at least one run) — $out/medians.txt"; exit 1; }
  say "PASSED — $out/medians.txt"
  exit 0
fi
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
say "saturation report: $out/saturation.html, $out/saturation.json, $out/saturation.svg"
