# shellcheck shell=bash
# Starting, keeping and stopping the services: every one runs in its cgroups, logs to
# $DIR/log/SVC.log, has its pid in $DIR/pid/SVC, and is restarted when it exits, as
# Compose's `restart: unless-stopped` does (the fault suite relies on it).

# Runs "$@" (exec, same pid) inside the service's cgroups, in the background.
launch() {
  local svc=$1; shift
  local procs="" d
  for d in $(cg_dirs "$svc"); do procs="$procs $d/cgroup.procs"; done
  # STACK_SLICE_US: the service and its children with a shorter scheduler slice (lib/slice.py).
  [ -z "${STACK_SLICE_US:-}" ] || set -- python3 "$(dirname "${BASH_SOURCE[0]}")/slice.py" "$STACK_SLICE_US" "$@"
  # shellcheck disable=SC2016
  CG_PROCS=$procs setsid sh -c 'for f in $CG_PROCS; do echo $$ > "$f"; done; exec "$@"' sh "$@" \
    </dev/null >>"$DIR/log/$svc.log" 2>&1 &
  echo $! > "$DIR/pid/$svc"
}

# Like launch, and whenever the service exits (crash, OOM kill, SIGKILL, SIGTERM) while the
# stack is up, it is started again after RESTART_DELAY; $DIR/restarts/SVC counts restarts.
# The supervisor is a shell outside the service's cgroups (its few hundred KB are not the
# service's). $DIR/hold/SVC holds a restart (a power cut in progress: the machine is "off").
supervise() {
  local svc=$1; shift
  (
    trap 'exit 0' TERM
    restarts=0
    while :; do
      launch "$svc" "$@"
      wait "$!" || true
      [ ! -e "$DIR/stopping" ] || exit 0
      while [ -e "$DIR/hold/$svc" ]; do sleep 0.05; done
      restarts=$((restarts + 1))
      echo "$restarts" > "$DIR/restarts/$svc"
      say "$svc exited; restarting it (restart $restarts)"
      sleep "${RESTART_DELAY:-0.5}"
    done
  ) </dev/null >>"$DIR/log/supervisor.log" 2>&1 &
  echo $! > "$DIR/pid/$svc.supervisor"
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { say "$what did not come up in ${secs}s; logs in $DIR/log"; tail -n 20 "$DIR"/log/*.log >&2 || true; return 1; }
    sleep 0.1
  done
}

alive() { [ -f "$DIR/pid/$1" ] && kill -0 "$(cat "$DIR/pid/$1")" 2>/dev/null; }

stop_pid() { # svc signal
  local svc=$1 sig=$2 pid
  [ -f "$DIR/pid/$svc" ] || return 0
  pid=$(cat "$DIR/pid/$svc")
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "$svc (pid $pid) ignored SIG$sig for 10 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# signal SVC SIG [all]: the fault suite's hand, to the service's main process or to every
# process in its cgroup. Every service is supervised: one that dies comes back by itself.
# Fails when the signal reached no process; STOP and CONT to `all` return once every process
# is stopped (state T), or none is: the fault is known to have taken effect.
signal_svc() {
  local svc=$1 sig=$2 scope=$3 pid listed=0 _
  [ -f "$DIR/pid/$svc" ] || die "no service $svc"
  if [ "$scope" != all ]; then
    kill -"$sig" "$(cat "$DIR/pid/$svc")"
    return
  fi
  for _ in 1 2 3; do  # a process forked meanwhile is caught by the next pass
    while read -r pid; do listed=$((listed + 1)); kill -"$sig" "$pid" 2>/dev/null || true; done < "$(cg_procs "$svc")"
    case "$sig" in
      STOP) stopped_is "$svc" yes && break ;;
      CONT) stopped_is "$svc" no && break ;;
      *) break ;;
    esac
    sleep 0.05
  done
  [ "$listed" -gt 0 ] || die "SIG$sig: $svc has no process"
  case "$sig" in
    STOP) stopped_is "$svc" yes || die "$svc: not every process stopped" ;;
    CONT) stopped_is "$svc" no || die "$svc: a process is still stopped" ;;
  esac
}

# A process's state letter (/proc/PID/stat's third field; T: stopped by a signal).
proc_state() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; echo "${s%% *}"; }
# stopped_is SVC yes|no: whether every process of the service is stopped (yes) or none is
# (no). A process that exits meanwhile counts for either.
stopped_is() {
  local pid s
  while read -r pid; do
    s=$(proc_state "$pid") || continue
    if [ "$s" = T ]; then [ "$2" = yes ] || return 1; else [ "$2" = no ] || return 1; fi
  done < "$(cg_procs "$1")"
}

# Stops exactly what `up` started: supervisors first (no restarts), the balancer, the
# instances, PostgreSQL "fast" (coordinator, then workers), observers; then any process a
# service left in its cgroups.
stop_all() {
  touch "$DIR/stopping"
  local svc f left
  for f in "$DIR"/pid/*.supervisor; do [ -f "$f" ] && stop_pid "$(basename "$f")" TERM; done
  stop_pid lb QUIT
  stop_pid api1 TERM
  stop_pid api2 TERM
  stop_pid db INT
  for f in "$DIR"/pid/w* "$DIR"/pid/obs-*; do
    svc=$(basename "$f")
    case "$svc" in *.supervisor) continue;; obs-*) stop_pid "$svc" TERM;; *) stop_pid "$svc" INT;; esac
  done
  left=$(leftovers)
  if [ -n "$left" ]; then
    say "killing leftover processes: $(tr '\n' ' ' <<<"$left")"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.2
  fi
}
