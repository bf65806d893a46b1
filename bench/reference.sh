#!/usr/bin/env bash
# The reference entry beside crebito, in the same harness: thusspokebieu-rust, the best
# Rust + PostgreSQL entry of the 2024/Q1 contest (ntex, tokio-postgres, nginx, PostgreSQL with
# fsync off; https://github.com/ThusSpokeBieu/rinha-crebito-rust, the code its contest folder
# participantes/thusspokebieu-rust/ builds). Its source is built, never copied here: this
# script clones it (or takes REFERENCE_SRC, a checkout), builds it with cargo, and writes a
# STACK_ENTRY directory (deploy/native/lib/config.sh) that runs it in the native stack, in
# the stack's cgroups, with the loaders and reports crebito gets.
#
#   bench/reference.sh entry            build it; print the variant "as entered" (below)
#   bench/reference.sh OUT [VARIANT …]  bench/profiles.sh OUT with crebito's durable default,
#                                       its contest opt-in, the reference as entered, and
#                                       each VARIANT (NAME:ASSIGNMENTS, as profiles.sh's)
#       (REFERENCE_SRC, REFERENCE_CACHE default target/reference; profiles.sh's ROUNDS, SAT…)
#
# The reference as entered, in the stack's terms: its API (two instances on loopback TCP), its
# schema and functions (its init.sql, database `crebito`), its postgresql.conf (config_file;
# fsync and synchronous commit off, shared_buffers 512MB), its nginx.conf (LB=entry: 2 workers
# here, keepalive 250 to TCP upstreams, no in-flight bound), its split (PostgreSQL 0.9 CPU
# 380 MB, each instance 0.2 CPU 50 MB, nginx 0.2 CPU 70 MB). Not its Docker network: the
# stack's loopback, as for crebito. Its API reaches PostgreSQL at the hard-coded
# /var/run/postgresql/.s.PGSQL.5432 as role rinha; `serve` gives each instance a private mount
# namespace where that directory holds a link to this stack's socket (root only), so the
# machine's own PostgreSQL, if any, is never touched.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
commit=5229b1464ce3bb17b9acb85f556fb9deee677702
cache=$(out_dir "${REFERENCE_CACHE:-$repo/target/reference}")
src="${REFERENCE_SRC:-$cache/src}"
entry="$cache/entry"

if [ ! -f "$src/Cargo.toml" ]; then
  git clone -q https://github.com/ThusSpokeBieu/rinha-crebito-rust "$src"
  git -C "$src" checkout -q "$commit"
fi
[ "$(git -C "$src" rev-parse HEAD 2>/dev/null || echo none)" = "$commit" ] ||
  echo "reference: $src is not at $commit: measuring what it holds" >&2
cargo build --release --locked -q --manifest-path "$src/Cargo.toml" --target-dir "$cache/target"
pgbin=$("$stack" pg-bin)

mkdir -p "$entry"
echo crebito > "$entry/database"
cat > "$entry/setup" <<EOF
#!/bin/sh
# The reference's role and schema (its init.sql, unchanged), in the database it expects.
set -e
"$pgbin/psql" -v ON_ERROR_STOP=1 -qc "CREATE ROLE rinha LOGIN SUPERUSER"
"$pgbin/psql" -v ON_ERROR_STOP=1 -U rinha -qf "$src/init.sql"
EOF
cat > "$entry/serve" <<EOF
#!/bin/sh
# One instance of the reference on 127.0.0.1:\$PORT. It listens on 0.0.0.0:\$PORT and reaches
# PostgreSQL at /var/run/postgresql/.s.PGSQL.5432: in its own mount namespace, that
# directory is one holding a link to this stack's socket.
set -e
d="\$PGHOST/entry-\$PORT"; mkdir -p "\$d" /var/run/postgresql
ln -sfn "\$PGHOST/.s.PGSQL.\$PGPORT" "\$d/.s.PGSQL.5432"
exec unshare --mount --propagation private sh -c 'mount --bind "\$1" /var/run/postgresql && exec "\$2"' - "\$d" "$cache/target/release/crebito-ntex"
EOF
chmod +x "$entry/setup" "$entry/serve"
# Its nginx.conf as a template of the stack's (render: @PORT@, @API1@, @API2@); each
# substitution must match, or the reference changed and this script must be read again.
sed -e 's#^\( *listen \)9999;#\1127.0.0.1:@PORT@;#' -e 's#server 127\.0\.0\.1:8081;#server @API1@;#' \
  -e 's#server 127\.0\.0\.1:8082;#server @API2@;#' "$src/nginx.conf" > "$entry/nginx.conf"
for p in @PORT@ @API1@ @API2@; do
  grep -q "$p" "$entry/nginx.conf" || { echo "reference: its nginx.conf no longer has what @${p//@/}@ replaces" >&2; exit 1; }
done

as_entered="STACK_ENTRY=$entry LB=entry CREBITO_PG_PROFILE=contest PG_FLAGS='-c config_file=$src/postgresql.conf'"
as_entered+=" DB_CPUS=0.9 DB_MEMORY_MB=380 API_CPUS=0.2 API_MEMORY_MB=50 LB_CPUS=0.2 LB_MEMORY_MB=70"
if [ "${1:-}" = entry ]; then echo "$as_entered"; exit 0; fi

out=$(out_dir "${1:?usage: bench/reference.sh entry | OUT [NAME:ASSIGNMENTS …]}"); shift
exec "$here/profiles.sh" "$out" "durable:-" "contest:CREBITO_PG_PROFILE=contest" "reference:$as_entered" "$@"
