# shellcheck shell=bash
# Each service in cgroups of its own, with the CPU quota and memory limit of deploy/.env:
# how the contest's Docker limits are reproduced without Docker. cgroup v1 (a hierarchy per
# controller) or v2 (one directory); without a writable cgroup the stack runs unlimited and
# says so. Also the readings `status` reports (CPU used, memory, throttling, OOM kills).

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGV=2
elif [ -w /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/memory ]; then CGV=1
else CGV=none; fi

cpus_of() { case "$1" in obs-*) echo -;; db) echo "$DB_CPUS";; w*) echo "$CITUS_WORKER_CPUS";; lb) echo "$LB_CPUS";; *) echo "$API_CPUS";; esac; }
mem_of()  { case "$1" in obs-*) echo -;; db) echo "$DB_MEMORY_MB";; w*) echo "$CITUS_WORKER_MEMORY_MB";; lb) echo "$LB_MEMORY_MB";; *) echo "$API_MEMORY_MB";; esac; }
quota_us() { awk -v c="$1" -v p="$CPU_PERIOD_US" 'BEGIN { printf "%d", c * p }'; }

# A service's cgroup directory for a controller (cpu, cpuacct, memory); under v2 every
# controller shares one directory.
cg() { if [ "$CGV" = 2 ]; then echo "/sys/fs/cgroup/$NAME/$2"; else echo "/sys/fs/cgroup/$1/$NAME/$2"; fi; }
cg_dirs() {
  case "$CGV" in
    1) cg cpu "$1"; cg cpuacct "$1"; [ -z "${DB_WRITE_IOPS:-}" ] || cg blkio "$1"; cg memory "$1"
       [ -z "${CPUSET:-}" ] || cg cpuset "$1";;
    2) cg - "$1";;
  esac
}
cg_procs() { echo "$(cg_dirs "$1" | tail -n1)/cgroup.procs"; }
cpuset_of() { local kv; for kv in ${CPUSET:-}; do [ "${kv%%=*}" != "$1" ] || echo "${kv#*=}"; done; }

# cgroup v2 needs the cpu and memory controllers delegated to the stack's parent; where the
# machine's cgroup tree refuses (a container's read-only or threaded root), say so and run
# unlimited rather than fail half-way.
cg_v2_parent() {
  echo "+cpu +memory" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
  mkdir -p "/sys/fs/cgroup/$NAME" 2>/dev/null &&
    echo "+cpu +memory" > "/sys/fs/cgroup/$NAME/cgroup.subtree_control" 2>/dev/null
}

cg_setup() {
  if [ "$CGV" = 2 ] && ! cg_v2_parent; then
    rmdir "/sys/fs/cgroup/$NAME" 2>/dev/null || true
    CGV=none
  fi
  if [ "$CGV" = none ]; then
    say "WARNING: no writable cgroup (v1 or v2) here: services run WITHOUT the contest's CPU/memory limits"
    return 0
  fi
  local svc
  for svc in "${SERVICES[@]}"; do cg_create "$svc"; done
}

# blkio_throttle CGROUP_DIR PATH IOPS: at most IOPS writes a second from CGROUP_DIR's processes
# to the disk holding PATH (cgroup v1's blkio; a partition's limit goes on its whole disk).
# Each flush is a write or two (data, journal), so a disk that flushes in ~0.1 ms flushes in
# ~2/IOPS s instead: the "slower disk" of bench/durability.sh, without another machine.
blkio_throttle() {
  local dev; dev=$(stat -c '%Hd:%Ld' "$2")
  [ ! -f "/sys/dev/block/$dev/partition" ] || dev=$(cat "/sys/dev/block/$dev/../dev")
  echo "$dev $3" > "$1/blkio.throttle.write_iops_device"
}

cg_create() {
  local svc=$1 d bytes cpus cpu mem
  for d in $(cg_dirs "$svc"); do mkdir -p "$d"; done
  if [ -n "${DB_WRITE_IOPS:-}" ] && [ "$svc" = db ]; then
    [ "$CGV" = 1 ] || die "DB_WRITE_IOPS needs cgroup v1's blkio controller"
    blkio_throttle "$(cg blkio db)" "$DIR" "$DB_WRITE_IOPS"
  fi
  if [ -n "${CPUSET:-}" ] && [ "$CGV" = 1 ]; then
    local set; set=$(cpuset_of "$svc")
    cat /sys/fs/cgroup/cpuset/cpuset.mems > "/sys/fs/cgroup/cpuset/$NAME/cpuset.mems"
    cat /sys/fs/cgroup/cpuset/cpuset.cpus > "/sys/fs/cgroup/cpuset/$NAME/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems > "$(cg cpuset "$svc")/cpuset.mems"
    echo "${set:-$(cat /sys/fs/cgroup/cpuset/cpuset.cpus)}" > "$(cg cpuset "$svc")/cpuset.cpus"
  fi
  [ "$STACK_LIMITS" = on ] || return 0
  case "$svc" in obs-*) return 0 ;; esac  # the observers are not part of the envelope
  cpus=$(cpus_of "$svc"); bytes=$(( $(mem_of "$svc") * 1024 * 1024 ))
  cpu=$(cg cpu "$svc"); mem=$(cg memory "$svc")
  # Like Docker's limits: a CFS quota, and a memory limit with no extra swap on top.
  if [ "$CGV" = 1 ]; then
    echo "$CPU_PERIOD_US" > "$cpu/cpu.cfs_period_us"
    quota_us "$cpus" > "$cpu/cpu.cfs_quota_us"
    echo "$bytes" > "$mem/memory.limit_in_bytes"
    echo "$bytes" > "$mem/memory.memsw.limit_in_bytes" 2>/dev/null || true
  else
    echo "$(quota_us "$cpus") $CPU_PERIOD_US" > "$cpu/cpu.max"
    echo "$bytes" > "$mem/memory.max"
    echo 0 > "$mem/memory.swap.max" 2>/dev/null || true
  fi
}

cg_read() { cat "$1" 2>/dev/null || echo 0; }

cg_usage() { # svc -> "cpu_seconds mem_mb" (or "null null")
  case "$CGV" in
    1) awk -v ns="$(cg_read "$(cg cpuacct "$1")/cpuacct.usage")" -v m="$(cg_read "$(cg memory "$1")/memory.usage_in_bytes")" \
         'BEGIN { printf "%.3f %.1f", ns / 1e9, m / 1048576 }';;
    2) awk -v m="$(cg_read "$(cg memory "$1")/memory.current")" \
         '/^usage_usec/ { us = $2 } END { printf "%.3f %.1f", us / 1e6, m / 1048576 }' "$(cg cpu "$1")/cpu.stat" 2>/dev/null;;
    *) echo "null null";;
  esac
}

cg_limits() { # svc -> "cpus memory_mb" the cgroup holds (not the environment's: a stack up
  # with another split keeps it for every later command), "- -" when it has none
  local q p m
  case "$CGV" in
    1) q=$(cg_read "$(cg cpu "$1")/cpu.cfs_quota_us"); p=$(cg_read "$(cg cpu "$1")/cpu.cfs_period_us")
       m=$(cg_read "$(cg memory "$1")/memory.limit_in_bytes");;
    2) read -r q p < "$(cg cpu "$1")/cpu.max" 2>/dev/null || q=max; m=$(cg_read "$(cg memory "$1")/memory.max");;
    *) echo "- -"; return;;
  esac
  awk -v q="$q" -v p="$p" -v m="$m" 'BEGIN {
    c = (q == "max" || q < 0 || p <= 0) ? "-" : sprintf("%g", q / p)
    mb = (m == "max" || m == 0 || m >= 2^60) ? "-" : sprintf("%d", m / 1048576)
    print c, mb }'
}

cg_throttled() { # svc -> "periods throttled"
  [ "$CGV" != none ] || { echo "null null"; return; }
  awk '/^nr_periods/ { p = $2 } /^nr_throttled/ { t = $2 } END { printf "%s %s", p + 0, t + 0 }' "$(cg cpu "$1")/cpu.stat" 2>/dev/null || echo "null null"
}

cg_oom_kills() { # svc -> processes the kernel killed for exceeding the memory limit
  local f; case "$CGV" in 1) f=memory.oom_control;; 2) f=memory.events;; *) echo null; return;; esac
  awk '/^oom_kill / { print $2 }' "$(cg memory "$1")/$f" 2>/dev/null || echo null
}

# Every service cgroup of this stack, whatever the invoking environment's layout says.
cg_service_dirs() {
  local parent d
  for parent in $(cg_dirs ""); do
    for d in "$parent"/*/; do [ -d "$d" ] && echo "${d%/}"; done
  done
}

cg_remove() {
  local d
  for d in $(cg_service_dirs); do rmdir "$d" 2>/dev/null || true; done
  for d in $(cg_dirs ""); do rmdir "$d" 2>/dev/null || true; done
  # Pinned by an `up` with CPUSET set, or throttled by one with DB_WRITE_IOPS, whatever this
  # invocation's environment says.
  [ "$CGV" != 1 ] || rmdir "/sys/fs/cgroup/cpuset/$NAME"/* "/sys/fs/cgroup/cpuset/$NAME" \
    "/sys/fs/cgroup/blkio/$NAME"/* "/sys/fs/cgroup/blkio/$NAME" 2>/dev/null || true
}

# Every process still in one of the stack's cgroups (children a service left behind).
leftovers() {
  local d
  for d in $(cg_service_dirs); do cat "$d/cgroup.procs" 2>/dev/null || true; done | sort -u
}

# A running stack's cgroup version is the one `up` settled on (v2 may have fallen back).
if [ -f "${DIR:-}/stack.env" ]; then CGV=$(sed -n 's/^STACK_CGROUP_VERSION=//p' "$DIR/stack.env"); fi
