#!/usr/bin/env bash
# Memory under overload: the native contest stack (limits on) with PostgreSQL frozen
# (SIGSTOP) while a crowd of clients each sends one POST, then thawed. Prints each
# service's peak memory against its limit, its OOM kills, and what the clients got.
#
#   bench/overload.sh [CROWD …]          (PORT=19970, HOLD=4 seconds frozen; default 3000 5000 9000)
#
# What it shows (docs/src/performance.md, "Overload"): nginx lets at most its in-flight
# bound through and answers the rest at once with 503; no process is OOM-killed.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PORT="${PORT:-19970}"
hold="${HOLD:-4}"
[ $# -gt 0 ] || set -- 3000 5000 9000
[ -d /sys/fs/cgroup/memory ] || { echo "needs cgroup v1 (memory.max_usage_in_bytes) and root" >&2; exit 1; }
out=$(mktemp)
on_exit "\"$stack\" down >/dev/null 2>&1"
on_exit "rm -f '$out'"
machine "PostgreSQL frozen ${hold}s"

echo "| crowd | db peak MiB | api1 | api2 | nginx | OOM kills | answers | client errors |"
echo "|---|---|---|---|---|---|---|---|"
for crowd in "$@"; do
  "$stack" up >/dev/null 2>&1
  declare -A mem=()
  while read -r s d; do mem[$s]=$d; done < <(status_field cgroups.memory)
  for s in db api1 api2 lb; do echo 0 > "${mem[$s]}/memory.max_usage_in_bytes"; done
  mapfile -t pg < "${mem[db]}/cgroup.procs"
  kill -STOP "${pg[@]}"
  python3 "$here/flood.py" "$PORT" "$crowd" "$hold" > "$out" &
  flood=$!
  sleep "$hold"
  kill -CONT "${pg[@]}"
  wait "$flood"
  peaks="" kills=0
  for s in db api1 api2 lb; do
    peaks="$peaks | $(( $(cat "${mem[$s]}/memory.max_usage_in_bytes") / 1048576 ))"
    kills=$(( kills + $(status_field oom_kills "$s") ))
  done
  result=$(cat "$out")
  echo "| $crowd${peaks} | $kills | $(sed -E 's/^status (\{[^}]*\}).*/\1/' <<<"$result") | $(sed -E 's/.*errors (\{[^}]*\}).*/\1/' <<<"$result") |"
  "$stack" down >/dev/null 2>&1
done
