# shellcheck shell=bash
# Every knob of the native stack, documented here and nowhere else (`stack help` prints this
# list), and every fact derived from them: ports, paths, services. Sourced by
# deploy/native/stack; the other modules read what this file sets.
#
# Knobs (environment; deploy/.env's values unless the environment sets them):
#   PORT            public port (default 9999); every other port derives from it (ports below)
#   STACK_DIR       state directory (default /tmp/crebito-stack-$PORT): pids, logs, sockets,
#                   data, and stack.env, the facts a driver reads (written at `up`)
#   CREBITO_BIN     crebito binary (default target/release/crebito, built if missing)
#   STACK_LIMITS    "on" (default) or "off": off keeps the cgroups (for CPU accounting)
#                   but sets no quota or limit, for measuring costs without throttling
#   DB_CPUS, API_CPUS, LB_CPUS, *_MEMORY_MB, CREBITO_*, PG_*FLAGS   override deploy/.env
#   CREBITO_PG_BATCH  group commit's bound, read by crebito itself (unset: its profile's)
#   CPU_PERIOD_US   CFS period of every quota (default 100000, Docker's; quota = CPUs × period)
#   CPUSET          pin services to cores (cgroup v1 cpuset, as Compose's `cpuset:`), e.g.
#                   "db=1 api1=0 api2=0 lb=0"; unset: every service may run on every core
#   DB_WRITE_IOPS   cgroup v1 only: at most this many writes a second from the database
#                   service to its disk (blkio), a slower disk on purpose: a flush then takes
#                   ~2/DB_WRITE_IOPS s (bench/durability.sh measures it; unset: no limit)
#   PG_BIN          PostgreSQL server binaries (default: newest /usr/lib/postgresql/*/bin)
#   CREBITO_PG_PROFILE  "durable" (deploy/.env's default: PostgreSQL with fsync, synchronous
#                   commit and full-page writes, logged tables, group commit) or "contest"
#                   (PG_CONTEST_FLAGS, UNLOGGED tables): PostgreSQL's flags and crebito's
#                   --pg-profile follow this one variable
#   STACK_SLICE_US  a scheduler slice in microseconds (100-100000) for every service of the
#                   stack (lib/slice.py; Linux 6.12+): each wakes up ahead of tasks with the
#                   default slice, such as the loader's. A measurement of how much of the tail
#                   is waiting for a core (docs/src/performance.md); unset: the kernel's default
#   PG_WAL_READY    WAL segments (16 MB each, on every PostgreSQL of the stack) made ready
#                   before the load, so that the first ones the load's WAL reaches are
#                   recycled files, not created while commits wait (default 0: none; measured
#                   no better, docs/src/performance.md; mind PG_FS=small's 160 MB)
#   PG_FS           where the database's data directory lives (single layout only): "disk"
#                   (default); "lazyfs", on LazyFS (deploy/native/lazyfs) with a cache of
#                   LAZYFS_CACHE_MB (default 1024), for `power-cut`; "small", on an ext4 image
#                   of PG_FS_MB (default 160) loop-mounted (root), for `disk-fill`
#   STACK_LAYOUT    "single" (default) or "citus": a Citus coordinator (db) and CITUS_WORKERS
#                   (default 2) Citus workers w1…, each its own PostgreSQL in its own cgroup;
#                   crebito runs with --pg-layout citus (deploy/native/cluster sets it)
#   DB_ONLY         "1": the database service(s) only (no crebito, no balancer), for tests
#   LB              the load balancer: "nginx" (default, deploy/nginx.conf, as in Compose),
#                   "nginx-stream" (layer 4, no HTTP parsing), "haproxy-http", "haproxy-tcp"
#                   (Debian's haproxy; templates in deploy/native/templates/), or "entry":
#                   STACK_ENTRY's own nginx.conf, a template as those (@PORT@, @API1@, @API2@)
#   LB_PROCESSES    nginx worker processes, or HAProxy threads (default: nginx.conf's, 2)
#   NGINX_BALANCE   "round_robin" (default, as the contest rules ask) or "least_conn"
#   NGINX_CONF      a variant of deploy/nginx.conf to run instead (bench/nginx-knobs.sh)
#   UPSTREAM        "unix" (default, as in Compose) or "tcp": the balancer reaches the
#                   instances on loopback TCP (ports below)
#   STACK_TRACE     "1": nginx logs each request's times to log/access.log and PostgreSQL
#                   loads pg_stat_statements (bench/hops.sh); costs CPU, off by default
#   STACK_OBSERVE   "1" (or `up --observe`): Prometheus and the PostgreSQL and nginx
#                   exporters (Debian's packages) too
#   RESTART_DELAY   seconds a supervisor waits before restarting a service (default 0.5)
#   NODE            `psql` only: which PostgreSQL (db, w1, …; default db)
#   STACK_ENTRY     another contest entry in crebito's place, for comparison in the same
#                   harness (bench/reference.sh writes one): a directory with two executables,
#                   `setup` (run once PostgreSQL is up, instead of crebito's migration) and
#                   `serve` (one per instance, must listen on 127.0.0.1:$PORT); both get
#                   STACK_DIR, PGHOST, PGPORT, PGUSER=postgres, PGDATABASE. An optional file
#                   `database` names the database it expects (default rinha, as crebito's);
#                   for an entry whose ledger is not in that database, optional executables
#                   `audit` (sql/audit.sql's rows as a JSON array) and `ledger` (what
#                   stress/ledger.sql returns), which stress/run.sh runs with STACK_DIR instead
#                   of querying PostgreSQL. Implies UPSTREAM=tcp; single layout only
#
# Ports (PORT + offset; one table, printed into stack.env):
#   +0 the API (balancer)   +1 PostgreSQL (coordinator)   +2, +3 api1, api2 (UPSTREAM=tcp)
#   +4 left free for a driver (stress/run.sh's LOADER_NEIGHBOUR)   +5 nginx's loopback operations server   +6 Prometheus   +7 PostgreSQL exporter
#   +8 nginx exporter   +10+i Citus worker i

PORT="${PORT:-9999}"
DIR="${STACK_DIR:-/tmp/crebito-stack-$PORT}"
NAME="crebito-$PORT"
STACK_LIMITS="${STACK_LIMITS:-on}"
UPSTREAM="${UPSTREAM:-unix}"
STACK_ENTRY="${STACK_ENTRY:-}"
STACK_LAYOUT="${STACK_LAYOUT:-single}"
LB="${LB:-nginx}"
PG_FS="${PG_FS:-disk}"
PG_WAL_READY="${PG_WAL_READY:-0}"
CPU_PERIOD_US="${CPU_PERIOD_US:-100000}"
STACK_SLICE_US="${STACK_SLICE_US:-}"
case "$STACK_SLICE_US" in ''|[1-9][0-9][0-9]|[1-9][0-9][0-9][0-9]|[1-9][0-9][0-9][0-9][0-9]|100000) ;;
  *) echo "STACK_SLICE_US must be a number of microseconds from 100 to 100000" >&2; exit 2;; esac
case "$STACK_LAYOUT" in single|citus) ;; *) echo "STACK_LAYOUT must be single or citus" >&2; exit 2;; esac
if [ -n "$STACK_ENTRY" ]; then
  if [ ! -x "$STACK_ENTRY/setup" ] || [ ! -x "$STACK_ENTRY/serve" ]; then
    echo "STACK_ENTRY=$STACK_ENTRY needs executable setup and serve" >&2; exit 2
  fi
  [ "$STACK_LAYOUT" = single ] || { echo "STACK_ENTRY runs in the single layout only" >&2; exit 2; }
  UPSTREAM=tcp
fi
# The database every service uses (`stack psql` too): crebito's, or the one the entry names.
DB_NAME=rinha
if [ -n "$STACK_ENTRY" ] && [ -f "$STACK_ENTRY/database" ]; then DB_NAME=$(cat "$STACK_ENTRY/database")
elif [ -f "$DIR/stack.env" ]; then DB_NAME=$(sed -n 's/^STACK_DB_NAME=//p' "$DIR/stack.env"); DB_NAME=${DB_NAME:-rinha}; fi
case "$PG_FS" in disk|lazyfs|small) ;; *) echo "PG_FS must be disk, lazyfs or small" >&2; exit 2;; esac
case "$PG_WAL_READY" in ''|*[!0-9]*) echo "PG_WAL_READY must be a number of WAL segments" >&2; exit 2;; esac
case "$LB" in nginx|nginx-stream|haproxy-http|haproxy-tcp) ;;
  entry) [ -f "${STACK_ENTRY:-}/nginx.conf" ] || { echo "LB=entry needs STACK_ENTRY/nginx.conf" >&2; exit 2; } ;;
  *) echo "LB must be nginx, nginx-stream, haproxy-http, haproxy-tcp or entry" >&2; exit 2;; esac

# The split and settings: deploy/.env, unless the environment already sets a value (so a
# benchmark can try another split without editing the file).
while IFS='=' read -r key value; do
  case "$key" in ''|\#*) continue ;; esac
  [ -n "${!key:-}" ] || export "$key=$value"
done < "${repo:?}/deploy/.env"

# The services: databases (db, then the Citus workers), the instances, the balancer, and
# the observers when asked for (or when the running stack has them).
CITUS_NODES=()
if [ "$STACK_LAYOUT" = citus ]; then
  for i in $(seq "${CITUS_WORKERS:-2}"); do CITUS_NODES+=("w$i"); done
fi
DB_SERVICES=(db ${CITUS_NODES[@]+"${CITUS_NODES[@]}"})
if [ "${DB_ONLY:-0}" = 1 ]; then SERVICES=("${DB_SERVICES[@]}"); else SERVICES=("${DB_SERVICES[@]}" api1 api2 lb); fi
OBSERVERS=(obs-pgexp obs-ngexp obs-prom)
if [ "${STACK_OBSERVE:-0}" = 1 ] || [ -f "$DIR/pid/obs-prom" ]; then SERVICES+=("${OBSERVERS[@]}"); fi

say() { printf 'stack[%s]: %s\n' "$PORT" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# port_of WHAT: the one port table.
port_of() {
  case "$1" in
    api) echo "$PORT";; db) echo $((PORT + 1));; api1) echo $((PORT + 2));; api2) echo $((PORT + 3));;
    spare) echo $((PORT + 4));; ops) echo $((PORT + 5));; prom) echo $((PORT + 6));; pgexp) echo $((PORT + 7));; ngexp) echo $((PORT + 8));;
    w*) echo $((PORT + 10 + ${1#w}));;
    *) die "no port for $1";;
  esac
}
url() { echo "http://127.0.0.1:$PORT"; }
db_url() { echo "postgres://postgres@localhost:$(port_of db)/$DB_NAME?host=$DIR/pg"; }
prom_url() { echo "http://127.0.0.1:$(port_of prom)"; }
ops_url() { echo "http://127.0.0.1:$(port_of ops)"; }
# Where an instance listens (Unix socket by default, as in Compose).
api_listen() { if [ "$UPSTREAM" = tcp ]; then echo "127.0.0.1:$(port_of "api$1")"; else echo "unix:$DIR/run/api$1.sock"; fi; }

# stack.env: the facts every driver (bench scripts, the sampler, the fault suite, the tests)
# reads instead of re-deriving them. KEY=VALUE lines, values without quotes or spaces except
# STACK_SERVICES (space-separated): `. stack.env` in shell, split on the first `=` elsewhere.
write_stack_env() {
  local svc
  {
    echo "STACK_PORT=$PORT"
    echo "STACK_URL=$(url)"
    echo "STACK_DIR=$DIR"
    echo "STACK_LAYOUT=$STACK_LAYOUT"
    echo "STACK_ENTRY=${STACK_ENTRY:-crebito}"
    echo "STACK_DB_NAME=$DB_NAME"
    echo "STACK_PG_PROFILE=$CREBITO_PG_PROFILE"
    echo "STACK_SERVICES=\"${SERVICES[*]}\""
    echo "STACK_DB_URL=$(db_url)"
    echo "STACK_PG_HOST=$DIR/pg"
    for svc in "${DB_SERVICES[@]}"; do echo "STACK_PG_PORT_$(tr '[:lower:]' '[:upper:]' <<<"$svc")=$(port_of "$svc")"; done
    echo "STACK_API1=$(api_listen 1)"
    echo "STACK_API2=$(api_listen 2)"
    echo "STACK_LB_CONF=$DIR/$(case "$LB" in haproxy-*) echo haproxy/haproxy.cfg;; *) echo nginx/nginx.conf;; esac)"
    echo "STACK_OPS_URL=$(ops_url)"
    echo "STACK_SPARE_PORT=$(port_of spare)"
    echo "STACK_PROM_URL=$(prom_url)"
    echo "STACK_LOG_DIR=$DIR/log"
    echo "STACK_CGROUP_VERSION=$CGV"
    echo "STACK_CGROUP_NAME=$NAME"
  } > "$DIR/stack.env"
}

# stack_env [KEY]: the running stack's stack.env, or one value of it (unquoted).
stack_env() {
  [ -f "$DIR/stack.env" ] || die "no stack on port $PORT"
  [ -n "${1:-}" ] || { cat "$DIR/stack.env"; return; }
  grep -q "^$1=" "$DIR/stack.env" || die "stack.env has no $1"
  sed -n "s/^$1=//p" "$DIR/stack.env" | tr -d '"'
}
