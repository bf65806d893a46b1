# shellcheck shell=bash
# PostgreSQL: which server binaries, a fresh supervised server per database service (the
# coordinator or only server "db", Citus workers "w1"…), with deploy/.env's flags, and the
# Citus registration. Where the data directory lives and its faults: pgfs.sh.

# The one place that decides which PostgreSQL server binaries run (the test suite and
# scripts/test ask `stack pg-bin` too).
pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/initdb" ] || die "PG_BIN=$PG_BIN has no initdb: sudo apt-get install postgresql"
    echo "$PG_BIN"; return
  fi
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  die "PostgreSQL server binaries not found: sudo apt-get install postgresql (or set PG_BIN)"
}

# PostgreSQL refuses to run as root: as root, its processes run as `postgres` (or `nobody`).
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then
  PG_USER=postgres; id "$PG_USER" >/dev/null 2>&1 || PG_USER=nobody
  AS_PG=(setpriv --reuid="$(id -u "$PG_USER")" --regid="$(id -g "$PG_USER")" --clear-groups --)
fi
as_pg_user() { "${AS_PG[@]}" "$@"; }

node_psql() { local node=$1; shift; as_pg_user "$(pg_bin)/psql" -h "$DIR/pg" -p "$(port_of "$node")" -U postgres "$@"; }

# The server flags: deploy/.env's for the profile (CREBITO_PG_PROFILE, which crebito reads
# too), plus what the layout and tracing need.
pg_flags() {
  local flags preload=()
  case "$CREBITO_PG_PROFILE" in
    durable) flags="${PG_DURABLE_FLAGS:-} $PG_FLAGS" ;;
    contest) flags="$PG_CONTEST_FLAGS $PG_FLAGS" ;;
    *) die "CREBITO_PG_PROFILE must be durable or contest, not '$CREBITO_PG_PROFILE'" ;;
  esac
  if [ "$STACK_LAYOUT" = citus ]; then
    # The coordinator keeps connections to every worker, the workers take the coordinator's.
    preload+=(citus); flags="$flags -c max_connections=100 -c listen_addresses=127.0.0.1"
  else
    flags="$flags -c listen_addresses="
  fi
  [ "${STACK_TRACE:-0}" != 1 ] || { preload+=(pg_stat_statements); flags="$flags -c pg_stat_statements.track=top"; }
  [ ${#preload[@]} -eq 0 ] || flags="$flags -c shared_preload_libraries=$(IFS=,; echo "${preload[*]}")"
  echo "$flags"
}

# One server: a fresh cluster, supervised; returns once it accepts connections, with
# database DB_NAME, `rinha` unless STACK_ENTRY names another (and the extensions the layout and tracing need).
pg_node_up() {
  local svc=$1 pgbin=$2 data port
  data=$(pg_data "$svc"); port=$(port_of "$svc")
  [ "$svc" != db ] || pg_fs_up
  mkdir -p "$data"
  [ -z "${PG_USER:-}" ] || chown "$PG_USER" "$data" "$DIR/pg"
  as_pg_user "$pgbin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$DIR/log/initdb-$svc.log" 2>&1 ||
    { cat "$DIR/log/initdb-$svc.log" >&2; die "initdb failed"; }
  # HOME: libpq (Citus's node-to-node connections) looks for client certificates there.
  # shellcheck disable=SC2046 # the flags are words
  supervise "$svc" "${AS_PG[@]}" env HOME="$data" "$pgbin/postgres" -D "$data" -p "$port" -k "$DIR/pg" $(pg_flags)
  wait_for "PostgreSQL ($svc)" 30 test -S "$DIR/pg/.s.PGSQL.$port"
  wait_for "PostgreSQL ($svc)" 30 node_psql "$svc" -d postgres -Atqc "SELECT 1"
  node_psql "$svc" -d postgres -qc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
  [ "${STACK_TRACE:-0}" != 1 ] || node_psql "$svc" -d "$DB_NAME" -qc "CREATE EXTENSION pg_stat_statements" >/dev/null
  pg_wal_ready "$svc" "$PG_WAL_READY"
  if [ "$STACK_LAYOUT" = citus ]; then
    node_psql "$svc" -d "$DB_NAME" -v ON_ERROR_STOP=1 -qc "CREATE EXTENSION citus" >/dev/null ||
      die "CREATE EXTENSION citus failed on $svc (is Citus installed? deploy/native/citus install)"
  fi
}

# N WAL segments made ready before the load (none: 0). A fresh cluster creates each new 16 MB
# segment when its WAL reaches it, zero-filled and flushed while every commit waits; N switches
# and a checkpoint leave N segments recycled ahead instead, so the first N*16 MB of the load's
# WAL only open files that exist.
pg_wal_ready() {
  local svc=$1 n=$2 args=() _
  [ "$n" -gt 0 ] || return 0
  for _ in $(seq "$n"); do args+=(-c "SELECT txid_current()" -c "SELECT pg_switch_wal()"); done
  node_psql "$svc" -d postgres -v ON_ERROR_STOP=1 -Atq "${args[@]}" -c CHECKPOINT >/dev/null ||
    die "preparing $n WAL segments on $svc failed"
}

# The coordinator learns its own address and its workers'.
citus_register() {
  local w
  node_psql db -d "$DB_NAME" -v ON_ERROR_STOP=1 -Atqc "SELECT citus_set_coordinator_host('127.0.0.1', $(port_of db))" >/dev/null
  for w in "${CITUS_NODES[@]}"; do
    node_psql db -d "$DB_NAME" -v ON_ERROR_STOP=1 -Atqc "SELECT citus_add_node('127.0.0.1', $(port_of "$w"))" >/dev/null ||
      die "citus_add_node($w) failed"
  done
}

# Every database service up, registered, migrated by crebito; made durable (pgfs.sh).
databases_up() {
  local pgbin=$1 crebito=$2 svc
  if [ "$STACK_LAYOUT" = citus ]; then
    "${here:?}/citus" check || die "Citus is not installed: deploy/native/citus install (builds it from CITUS_TARBALL)"
  fi
  for svc in "${DB_SERVICES[@]}"; do pg_node_up "$svc" "$pgbin"; done
  [ "$STACK_LAYOUT" != citus ] || citus_register
  if [ -n "$STACK_ENTRY" ]; then
    env STACK_DIR="$DIR" PGHOST="$DIR/pg" PGPORT="$(port_of db)" PGUSER=postgres PGDATABASE="$DB_NAME" "$STACK_ENTRY/setup" >"$DIR/log/migrate.log" 2>&1 ||
      { cat "$DIR/log/migrate.log" >&2; die "STACK_ENTRY's setup failed"; }
    pg_fs_barrier; return
  fi
  "$crebito" migrate --database-url "$(db_url)" --pg-profile "$CREBITO_PG_PROFILE" --pg-layout "$STACK_LAYOUT" \
    --extra-clients "${CREBITO_EXTRA_CLIENTS:-0}" >"$DIR/log/migrate.log" 2>&1 ||
    { cat "$DIR/log/migrate.log" >&2; die "migration failed"; }
  pg_fs_barrier
}
