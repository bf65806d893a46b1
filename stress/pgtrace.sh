#!/usr/bin/env bash
# The database's side of a run from the kernel: `perf record` on PostgreSQL's processes (the
# postmaster and the children it has when the load starts: the instances' connections are
# open by then) for the syscalls that bound a request and its flush (recvfrom's return,
# fdatasync, sendto), then stress/reporting/pgtrace.py's spans: DIR/pgtrace.json. The perf script text is kept,
# compressed, as DIR/pgtrace.txt.gz (for another look); each instance's /metrics beside them
# (DIR/metrics-api1.txt, …: the store wait the instances saw, the other end of the same requests).
#
#   stress/pgtrace.sh record STACK DIR      runs perf until SIGINT (start it in the background)
#   stress/pgtrace.sh summarize STACK DIR   once the recorder has exited
#
# Needs perf (apt-get install linux-perf) and root (or kernel.perf_event_paranoid <= 1). The
# recording goes to a tmpfs (/dev/shm) and perf writes no build-id cache, so tracing adds no
# write to the database's disk during the load; about 100 bytes an event, some 2 000 events a
# second at the official rate. A flush made by another call (wal_sync_method open_datasync:
# writes with O_DSYNC) is not seen. DIR/pgtrace.path names the recording until it is removed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd=${1:?usage: stress/pgtrace.sh record|summarize STACK DIR}
stack=${2:?the stack launcher}
dir=${3:?the run directory}
events=syscalls:sys_exit_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync

case "$cmd" in
  record)
    command -v perf >/dev/null || { echo "stress/pgtrace.sh: perf not found: sudo apt-get install linux-perf" >&2; exit 1; }
    shm=/dev/shm; [ -d "$shm" ] || shm=${TMPDIR:-/tmp}
    data=$(mktemp -p "$shm" "crebito-pgtrace-$(basename "$dir").XXXXXX")
    echo "$data" > "$dir/pgtrace.path"
    pm=$("$stack" status --json | python3 -c 'import json, sys
print(next(s["pid"] for s in json.load(sys.stdin)["services"] if s["name"] == "db"))')
    pids=$(ps -o pid= --ppid "$pm" | tr -d ' ' | paste -sd, -)
    exec perf record -q -B -N -o "$data" -e "$events" -p "$pm${pids:+,$pids}" >/dev/null 2>"$dir/pgtrace.log"
    ;;
  summarize)
    data=$(cat "$dir/pgtrace.path")
    trap 'rm -f "$data" "$data.old" "$data.txt" "$dir/pgtrace.path"' EXIT
    perf script --show-lost-events -i "$data" -F tid,time,event,trace > "$data.txt" 2>>"$dir/pgtrace.log"
    python3 "$here/report.py" pgtrace --out "$dir/pgtrace.json.tmp" "$data.txt"
    mv "$dir/pgtrace.json.tmp" "$dir/pgtrace.json"
    gzip -c "$data.txt" > "$dir/pgtrace.txt.gz"
    ops=$("$stack" env STACK_OPS_URL)
    for i in 1 2; do
      curl -fsS "$ops/metrics/api$i" -o "$dir/metrics-api$i.txt" 2>/dev/null || rm -f "$dir/metrics-api$i.txt"
    done
    ;;
  *) echo "stress/pgtrace.sh: record or summarize" >&2; exit 2 ;;
esac
