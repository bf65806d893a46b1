#!/usr/bin/env bash
# Helpers shared by the bench/*.sh scripts: sourced, never run. Every script sources it as
#   # shellcheck source=lib.sh
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# and gets: $here (bench/), $repo, $stack (the native launcher), a cleanup trap that runs
# every command registered with on_exit, and the helpers below.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
stack="$repo/deploy/native/stack"
export here repo stack

_cleanup=()
on_exit() { _cleanup+=("$1"); }
_run_cleanup() { local c; for c in "${_cleanup[@]}"; do eval "$c" || true; done; }
trap _run_cleanup EXIT

# build_release: crebito and the fast loader, optimised; CREBITO_BIN names the binary the
# stacks run (unless the caller chose one).
build_release() {
  (cd "$repo" && cargo build --release --locked -q -p crebito -p crebito-loader)
  export CREBITO_BIN="${CREBITO_BIN:-$repo/target/release/crebito}"
}

# out_dir DIR: DIR created, printed as an absolute path.
out_dir() { mkdir -p "$1" && (cd "$1" && pwd); }

# need CMD PACKAGE: fail early, naming what to install.
need() { command -v "$1" >/dev/null || { echo "$1 not found: sudo apt-get install $2" >&2; exit 1; }; }

# disk_flush DIR [RATE]: the disk's flush under DIR, the way a commit meets it (one 8 kB write
# then fdatasync, as a commit flushes the WAL), three lines: pg_test_fsync's mean, then the
# distribution (p50, p90, p99, p99.9, max; bench/flush.py) paced at RATE a second (default
# FLUSH_RATE, 250: about the official test's POST rate over its run), with the writes' own
# waits as they meet it (a stalled flush holds every write due meanwhile), and back to back,
# each for FLUSH_SECONDS (default 10; a rare stall needs longer to be seen). A
# durability figure is quoted with them, as a latency figure with the loader's floor. With
# DB_WRITE_IOPS (the stack's slower disk on purpose), measured under the same throttle.
disk_flush() {
  local bin f line cg="" throttle="" rate=${2:-${FLUSH_RATE:-250}} secs=${FLUSH_SECONDS:-10}
  bin=$("$stack" pg-bin) || return 1
  mkdir -p "$1"; f=$(mktemp -p "$1" pg_test_fsync.XXXXXX)
  if [ -n "${DB_WRITE_IOPS:-}" ]; then
    # shellcheck source=../deploy/native/lib/cgroup.sh
    . "$repo/deploy/native/lib/cgroup.sh"
    cg=/sys/fs/cgroup/blkio/crebito-flush-$$; mkdir -p "$cg"
    blkio_throttle "$cg" "$1" "$DB_WRITE_IOPS"
    throttle=", writes throttled to $DB_WRITE_IOPS/s (DB_WRITE_IOPS)"
  fi
  # in_cg CMD…: CMD inside the throttled cgroup, if any.
  in_cg() { sh -c 'if [ -n "$1" ]; then echo $$ > "$1/cgroup.procs"; fi; shift; exec "$@"' - "$cg" "$@"; }
  line=$(in_cg "$bin/pg_test_fsync" -s "${FSYNC_SECONDS:-2}" -f "$f" 2>/dev/null | awk '$1 == "fdatasync" { print; exit }')
  rm -f "$f"
  echo "disk flush (pg_test_fsync, one 8 kB write + fdatasync, on the stacks' $(stat -f -c %T "$1") file system$throttle): $(awk '{ print $(NF-1) }' <<<"$line") µs"
  echo "disk flush distribution$throttle: $(in_cg python3 "$repo/bench/flush.py" "$1" --rate "$rate" --seconds "$secs")"
  echo "disk flush distribution$throttle: $(in_cg python3 "$repo/bench/flush.py" "$1" --seconds "$secs")"
  [ -z "$cg" ] || rmdir "$cg"
}

# The first line of every table: which machine produced it.
machine() { echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores${1:+; $1}"; }

# shellcheck disable=SC2034 # these globals are read by the scripts that source this file
# wrk_stats OUTPUT: sets reqs, rps (integer), p50, p99, max and non2xx from wrk's report
# (p50/p99 need wrk --latency).
wrk_stats() {
  reqs=$(awk '/requests in/ { print $1 }' <<<"$1")
  rps=$(awk '/Requests\/sec/ { printf "%d", $2 }' <<<"$1")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$1")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$1")
  max=$(awk '/Latency/ { print $4; exit }' <<<"$1")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$1")
}

# usec_per BEFORE AFTER N: CPU seconds spent between two readings, in µs per request.
usec_per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }'; }

# CPU seconds (user + system) a process has used.
proc_cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }

# ticks SVC: "user system" clock ticks (USER_HZ) of a running stack's service's cgroup so far
# (cpuacct.stat): where its CPU went, its own code or the kernel's.
ticks() { awk '{ t[$1] = $2 } END { print t["user"], t["system"] }' "$(status_field cgroups.cpuacct "$1")/cpuacct.stat"; }

# What the running stack is, from its own contract (deploy/native/lib/config.sh, status.sh):
# stack_env KEY: one fact of its stack.env (ports, paths, URLs written once at `up`).
stack_env() { "$stack" env "$1"; }
# status_field FIELD [SVC]: "svc value" for each service (or the value for SVC) of
# `stack status --json`, e.g. throttled_periods, restarts, cgroups.memory.
status_field() {
  "$stack" status --json | python3 -c '
import json, sys
field, only = sys.argv[1], sys.argv[2:]
for s in json.load(sys.stdin)["services"]:
    v = s
    for k in field.split("."):
        v = v[k] if v is not None else None
    if not only:
        print(s["name"], v)
    elif s["name"] == only[0]:
        print(v)
' "$@"
}

# CPU seconds a service of the running native stack has used ("db", "api1", "api2", "lb").
stack_cpu() { "$stack" cpu | awk -v s="$1" '$1 == s { print $2 }'; }

# measure_server LABEL PID PORT: credits (bench/credit.lua), then statements, with wrk
# (1 thread, 32 keep-alive connections, SECONDS_EACH s); one table row each, with the
# server's CPU per request.
measure_server() {
  local label=$1 pid=$2 port=$3 kind c0 c1 out
  for kind in credit extrato; do
    c0=$(proc_cpu "$pid")
    if [ "$kind" = credit ]; then
      out=$(wrk -t1 -c32 -d "${SECONDS_EACH:-10}s" -s "$here/credit.lua" "http://127.0.0.1:$port")
    else
      out=$(wrk -t1 -c32 -d "${SECONDS_EACH:-10}s" "http://127.0.0.1:$port/clientes/1/extrato")
    fi
    c1=$(proc_cpu "$pid")
    wrk_stats "$out"
    printf '| %s | %s | %s | %s µs |\n' "$label" "$kind" "$rps" "$(usec_per "$c0" "$c1" "$reqs")"
  done
}

# wait_http URL: until it answers 2xx (10 s at most).
wait_http() { local _; for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# variants NAME:ASSIGNMENTS…: the variants a bench script compares, each the environment
# deploy/native/stack runs under ("-" for deploy/.env as is). Sets `variant_names` (in the
# order given) and `variant_env` (NAME -> assignments), for with_variant and the scripts' own
# listings.
declare -A variant_env
variant_names=()
variants() {
  local nv name v
  for nv in "$@"; do
    name=${nv%%:*}; v=${nv#*:}; [ "$v" = - ] && v=""
    variant_env[$name]=$v; variant_names+=("$name")
  done
}

# round_order ROUND NAME…: the names, one a line, as given on odd rounds and reversed on even
# ones, so that no variant always runs first in a sitting.
round_order() {
  local r=$1 i; shift
  local names=("$@")
  if [ $((r % 2)) = 1 ]; then printf '%s\n' "${names[@]}"
  else for ((i = ${#names[@]} - 1; i >= 0; i--)); do printf '%s\n' "${names[i]}"; done; fi
}

# with_variant NAME COMMAND…: COMMAND under variant NAME's assignments.
with_variant() {
  local name=$1; shift
  eval "env ${variant_env[$name]} \"\$@\""
}

# official_rounds OUT ROUNDS RUNNER VARIANT…: the official profile (k6, full length) for each
# VARIANT side by side in one sitting, ROUNDS rounds. Each round measures k6's floor once
# (k6 against a constant nginx) and runs every variant against it, each on a fresh stack,
# the order reversed every other round; `RUNNER VARIANT COMMAND…` runs a command under a
# variant. Each round first measures the disk's flush (disk_flush: OUT/official/flush-N.txt),
# as its floor. Writes OUT/official/VARIANT/run-N and each variant's medians.txt.
# OFFICIAL_DURATION_SCALE (default 1, full length) shortens every run alike, for screening
# many variants; a figure quoted as "official" is full length. OFFICIAL_LOADER (default k6)
# is stress/run.sh's --loader: `fast` runs the same rounds under the fast loader.
official_rounds() {
  local out=$1 rounds=$2 runner=$3; shift 3
  local variants=("$@") order r v floor_args
  for r in $(seq "$rounds"); do
    mapfile -t order < <(round_order "$r" "${variants[@]}")
    floor_args=(--floor)
    mkdir -p "$out/official"; disk_flush "${STACK_DIR:-/tmp}" > "$out/official/flush-$r.txt"
    for v in "${order[@]}"; do
      "$runner" "$v" "$repo/stress/run.sh" "${floor_args[@]}" --loader "${OFFICIAL_LOADER:-k6}" \
        --duration-scale "${OFFICIAL_DURATION_SCALE:-1}" \
        --out "$out/official/$v/run-$r" ||
        echo "$(basename "$0"): $v run $r failed (see its summary.txt)" >&2
      floor_args=(--floor-from "$out/official/$v/run-$r/floor.json")
    done
  done
  for v in "${variants[@]}"; do
    python3 "$repo/stress/report.py" medians --out "$out/official/$v" "$out/official/$v"/run-*/summary.json >&2
  done
}

# nginx.conf variants, one setting each (bench/nginx-knobs.sh lists what they change).
# knob NAME: the sed expression of one knob (fails for a name that is not a knob).
knob() {
  case "$1" in
    deferred) printf '%s\n' 's#^\(        listen 9999 .*\);#\1 deferred;#' ;;
    keepalive0) printf '%s\n' 's#^    keepalive_timeout 5s;#    keepalive_timeout 0;#' ;;
    single_accept) printf '%s\n' 's#^    multi_accept on;#    multi_accept off;#' ;;
    no_reuseport) printf '%s\n' 's#^\(        listen 9999 .*\) reuseport;#\1;#' ;;
    accept_mutex) printf '%s\n' 's#^\(        listen 9999 .*\) reuseport;#\1;#' 's#^    multi_accept on;#&\n    accept_mutex on;#' ;;
    lingering_off) printf '%s\n' 's#^        limit_conn inflight 512;#&\n        lingering_close off;#' ;;
    inflight:[0-9]*) printf '%s\n' "s#^        limit_conn inflight 512;#        limit_conn inflight ${1#inflight:};#" ;;
    *) return 1 ;;
  esac
}

# knob_conf NAME DIR: deploy/nginx.conf with knob NAME applied, written in DIR; prints its
# path. Returns 1 for a name that is not a knob, 2 (loudly) when nginx.conf no longer has
# the line the knob changes.
knob_conf() {
  local expr file
  expr=$(knob "$1") || return 1
  file="$2/${1/:/_}.conf"
  sed "$expr" "$repo/deploy/nginx.conf" > "$file"
  if cmp -s "$repo/deploy/nginx.conf" "$file"; then
    echo "knob $1: nginx.conf has no line it changes" >&2
    return 2
  fi
  echo "$file"
}
