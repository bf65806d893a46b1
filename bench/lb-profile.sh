#!/usr/bin/env bash
# Where the balancer's CPU goes, for one variant of the native contest stack (limits on):
#   1. the fast loader at SCALE: each service's CPU per request split into user and kernel
#      time (its cgroup's cpuacct.stat), the kernel's share being the TCP connection work
#      a proxy cannot configure away;
#   2. the fast loader at 1x with strace counting the nginx workers' system calls for
#      STRACE_SECONDS: calls per accepted connection, by call (strace slows what it watches,
#      so it counts and never times).
#
#   bench/lb-profile.sh [VARIANT]   (SCALE=12, DURATION_SCALE=0.2, STRACE_SECONDS=6, PORT=19985)
#
# VARIANT: one of bench/nginx-knobs.sh's knobs (e.g. lingering_off), or environment
# assignments for deploy/native/stack as in bench/topology.sh (e.g. "LB_PROCESSES=1");
# default ("-"): deploy/.env's and deploy/nginx.conf as they are.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need strace strace
export PORT="${PORT:-19985}"
scale="${SCALE:-12}"
dscale="${DURATION_SCALE:-0.2}"
variant="${1:--}"
work=$(mktemp -d)
on_exit "\"$stack\" down >/dev/null 2>&1"
on_exit "rm -rf '$work'"
if file=$(knob_conf "$variant" "$work"); then
  v="NGINX_CONF=$file"
elif [ $? -eq 2 ]; then
  exit 1
else
  [ "$variant" = - ] && v="" || v="$variant"
fi
build_release
loader="$repo/target/release/crebito-loader"

machine "variant $variant; SCALE $scale, DURATION_SCALE $dscale"
eval "env $v \"\$stack\" up" >/dev/null
declare -A before
for s in db api1 api2 lb; do before[$s]=$(ticks "$s"); done
"$loader" --target "127.0.0.1:$PORT" --scale "$scale" --duration-scale "$dscale" --out "$work/loader.json" >/dev/null
requests=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["requests"])' "$work/loader.json")
echo
echo "| service | user µs/req | kernel µs/req | kernel share |"
echo "|---|---|---|---|"
hz=$(getconf CLK_TCK)
for s in db api1 api2 lb; do
  read -r u0 s0 <<<"${before[$s]}"
  read -r u1 s1 <<<"$(ticks "$s")"
  awk -v s="$s" -v u=$((u1 - u0)) -v k=$((s1 - s0)) -v n="$requests" -v hz="$hz" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.0f %% |\n", s, u * 1e6 / hz / n, k * 1e6 / hz / n, (u + k) ? 100 * k / (u + k) : 0 }'
done

# The workers only (the master does not serve): every process of the cgroup but the main one.
main=$(status_field pid lb)
workers=$(grep -vx "$main" "$(status_field cgroups.cpu lb)/cgroup.procs" | sed 's/^/-p /' | tr '\n' ' ')
"$loader" --target "127.0.0.1:$PORT" --scale 1 --duration-scale 0.1 --out "$work/l1.json" >/dev/null &
load=$!
sleep 4
# shellcheck disable=SC2086 # one -p per worker
timeout -s INT "${STRACE_SECONDS:-6}" strace -c -f $workers -o "$work/strace.txt" 2>/dev/null || true
wait "$load"
echo
python3 - "$work/strace.txt" <<'EOF'
import sys

calls = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        calls[f[-1]] = int(f[3]) - (int(f[4]) if len(f) == 6 else 0)
conns = calls.get("accept4", 0)
print(f"nginx workers, {conns} connections accepted under strace: system calls per connection "
      "(failed calls, e.g. accept4's EAGAIN, left out)")
print()
print("| call | per connection |")
print("|---|---|")
for name, n in sorted(calls.items(), key=lambda kv: -kv[1]):
    print(f"| {name} | {n / max(conns, 1):.2f} |")
print(f"| **all** | **{sum(calls.values()) / max(conns, 1):.2f}** |")
EOF
