# shellcheck shell=bash
# What the stack is doing, per service: `status` for people (a table), `status --json` for
# programs (bench scripts, the sampler, the fault suite, the tests): the one contract, read
# by field name. Fields (null where the machine cannot tell, e.g. without cgroups):
#   name, pid, up (bool), cpus, memory_mb (the limits; null with STACK_LIMITS=off),
#   cpu_used_s, memory_used_mb, periods, throttled_periods, oom_kills, restarts,
#   cgroups {cpu, cpuacct, memory} (directories, for samplers reading them directly)

num_or_null() { case "$1" in ''|-) echo null;; *) echo "$1";; esac; }

status_json() {
  local svc sep="" up pid cpu mem periods throttled cpus limit
  printf '{"port": %s, "dir": "%s", "layout": "%s", "cgroup_version": %s, "limits": %s, "services": [' \
    "$PORT" "$DIR" "$STACK_LAYOUT" "$(num_or_null "${CGV/none/}")" "$([ "$STACK_LIMITS" = on ] && echo true || echo false)"
  for svc in "${SERVICES[@]}"; do
    if alive "$svc"; then up=true; else up=false; fi
    pid=$(cat "$DIR/pid/$svc" 2>/dev/null || true)
    read -r cpu mem <<<"$(cg_usage "$svc")"
    read -r periods throttled <<<"$(cg_throttled "$svc")"
    read -r cpus limit <<<"$(cg_limits "$svc")"; cpus=$(num_or_null "$cpus"); limit=$(num_or_null "$limit")
    printf '%s\n  {"name": "%s", "pid": %s, "up": %s, "cpus": %s, "memory_mb": %s, "cpu_used_s": %s, "memory_used_mb": %s, "periods": %s, "throttled_periods": %s, "oom_kills": %s, "restarts": %s, "cgroups": ' \
      "$sep" "$svc" "$(num_or_null "$pid")" "$up" "$cpus" "$limit" "$(num_or_null "$cpu")" "$(num_or_null "$mem")" \
      "$(num_or_null "$periods")" "$(num_or_null "$throttled")" "$(num_or_null "$(cg_oom_kills "$svc")")" \
      "$(cat "$DIR/restarts/$svc" 2>/dev/null || echo 0)"
    if [ "$CGV" = none ]; then printf 'null}'
    else printf '{"cpu": "%s", "cpuacct": "%s", "memory": "%s"}}' "$(cg cpu "$svc")" "$(cg cpuacct "$svc")" "$(cg memory "$svc")"; fi
    sep=,
  done
  printf '\n]}\n'
}

# The table is the JSON, laid out (so the two can never disagree).
status_table() {
  status_json | python3 -c '
import json, sys
s = json.load(sys.stdin)
cols = ["service", "pid", "state", "cpus", "mem_mb", "cpu_used_s", "mem_used", "throttled", "oom_kills", "restarts"]
def v(x): return "-" if x is None else str(x)
rows = [[v(r["name"]), v(r["pid"]), "up" if r["up"] else "DOWN", v(r["cpus"]), v(r["memory_mb"]), v(r["cpu_used_s"]),
         v(r["memory_used_mb"]), v(r["throttled_periods"]) + "/" + v(r["periods"]), v(r["oom_kills"]), v(r["restarts"])]
        for r in s["services"]]
w = [max(len(x) for x in col) for col in zip(cols, *rows)]
for r in [cols] + rows:
    print(" ".join(x.ljust(n) if i < 3 else x.rjust(n) for i, (x, n) in enumerate(zip(r, w))))
'
}

status() {
  [ -d "$DIR" ] || { say "no stack on port $PORT"; return 1; }
  if [ "${1:-}" = --json ]; then status_json; else status_table; fi
}
