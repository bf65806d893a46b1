#!/usr/bin/env bash
# The database's side of a run from the kernel: `perf record` on PostgreSQL's processes
# (the postmaster and every child it has when the load starts: the instances' connections
# are open by then) for the syscalls that bound a request and its flush (recvfrom, fdatasync,
# sendto, epoll_wait), then stress/reporting/pgtrace.py's spans: DIR/pgtrace.json. Each
# instance's /metrics is kept beside it (DIR/metrics-api1.txt, …: the store wait the
# instances saw, the other end of the same requests).
#
#   stress/pgtrace.sh start STACK DIR    prints the recorder's pid
#   stress/pgtrace.sh stop STACK DIR PID
#
# Needs perf (apt-get install linux-perf) and root (or kernel.perf_event_paranoid <= 1). The
# recording goes to a tmpfs (/dev/shm) so that it adds no write to the database's disk;
# about 100 bytes an event, some 2 000 events a second at the official rate. A flush made by
# another call (wal_sync_method open_datasync, O_DSYNC writes) is not seen.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd=${1:?usage: stress/pgtrace.sh start|stop STACK DIR [PID]}
stack=${2:?the stack launcher}
dir=${3:?the run directory}
events=syscalls:sys_exit_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait
events+=,syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync
data="$dir/pgtrace.tmp"
[ ! -d /dev/shm ] || data="/dev/shm/crebito-pgtrace-$(basename "$(dirname "$dir")")-$(basename "$dir")-$$"

case "$cmd" in
  start)
    command -v perf >/dev/null || { echo "stress/pgtrace.sh: perf not found: sudo apt-get install linux-perf" >&2; exit 1; }
    pm=$("$stack" status --json | python3 -c 'import json, sys
print(next(s["pid"] for s in json.load(sys.stdin)["services"] if s["name"] == "db"))')
    pids=$(ps -o pid= --ppid "$pm" | tr -d ' ' | paste -sd, -)
    echo "$data" > "$dir/pgtrace.path"
    perf record -q -o "$data" -e "$events" -p "$pm${pids:+,$pids}" >/dev/null 2>"$dir/pgtrace.log" &
    echo $!
    ;;
  stop)
    pid=${4:?the recorder pid}
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    data=$(cat "$dir/pgtrace.path"); rm -f "$dir/pgtrace.path"
    perf script -i "$data" -F tid,time,event,trace 2>>"$dir/pgtrace.log" |
      python3 "$here/report.py" pgtrace --out "$dir/pgtrace.json"
    rm -f "$data" "$data.old"
    ops=$("$stack" env STACK_OPS_URL)
    for i in 1 2; do
      curl -fsS "$ops/metrics/api$i" -o "$dir/metrics-api$i.txt" 2>/dev/null || rm -f "$dir/metrics-api$i.txt"
    done
    ;;
  *) echo "stress/pgtrace.sh: start or stop" >&2; exit 2 ;;
esac
