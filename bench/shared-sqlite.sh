#!/usr/bin/env bash
# Both contest instances on one SQLite file, no database server: crebito's embedded store,
# opened by the two instances at once, as the contest's "one database" (a file on a volume
# both containers mount). SQLite's file locks order the instances' commits (src/store/
# sqlite.rs: a write waits for the other's lock in short sleeps; a read takes a snapshot and
# no lock). Durable by default: every group commit is fsynced before its answers leave
# (`--sqlite-sync full`); SHARED_SQLITE_SYNC=normal for the unsynced opt-in.
#
#   bench/shared-sqlite.sh entry            write the entry; print the variant's assignments
#   bench/shared-sqlite.sh OUT [VARIANT …]  bench/reference.sh OUT (crebito durable and contest
#                                           on PostgreSQL, the reference entry) beside
#                                           "shared-sqlite", and each VARIANT
#
# The entry runs in the native stack as another contest entry does (STACK_ENTRY,
# deploy/native/lib/config.sh): `setup` creates the file in STACK_DIR/sqlite, `serve` runs one
# crebito on it, `audit` and `ledger` read sql/audit.sql's rows and stress/ledger.sql's object
# from it for stress/run.sh (k6's audit; the fast loader's history check). The stack still
# starts its PostgreSQL, idle, with 0.05 CPU of the 1.5: the harness is PostgreSQL's. nginx
# keeps the default split's 0.45 and the instances, which now do the database's work, get the
# rest (0.5 each); memory 100 + 2 × 150 + 60 MB. (The first sitting,
# docs/reports/official-rate/shared-sqlite, gave nginx 0.35 and the instances 0.55: nginx was
# then throttled from 10× on, while the instances used at most a third of a core.)
# CREBITO_BIN: the binary the entry runs (default: this checkout's release build, built).
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -n "${CREBITO_BIN:-}" ] || build_release
entry=$(out_dir "${SHARED_SQLITE_ENTRY:-$repo/target/shared-sqlite}")
sync=${SHARED_SQLITE_SYNC:-full}
case "$sync" in full|normal) ;; *) echo "SHARED_SQLITE_SYNC must be full or normal" >&2; exit 2;; esac

cat > "$entry/setup" <<SETUP
#!/bin/sh
# A fresh file, migrated and seeded once, before the instances open it.
set -e
rm -rf "\$STACK_DIR/sqlite"; mkdir -p "\$STACK_DIR/sqlite"
exec "$CREBITO_BIN" migrate --database-url "sqlite://\$STACK_DIR/sqlite/crebito.db" --sqlite-sync $sync
SETUP
cat > "$entry/serve" <<SERVE
#!/bin/sh
# One instance on 127.0.0.1:\$PORT, on the stack's one file.
exec env RUST_LOG="\${RUST_LOG:-warn}" "$CREBITO_BIN" serve --listen "127.0.0.1:\$PORT" \\
  --database-url "sqlite://\$STACK_DIR/sqlite/crebito.db" --sqlite-sync $sync
SERVE
cat > "$entry/audit" <<AUDIT
#!/usr/bin/env python3
"""sql/audit.sql's rows from the stack's file, as the JSON array stress/run.sh expects."""
import json, os, sqlite3
sql = "".join(l for l in open("$repo/sql/audit.sql") if not l.startswith("--"))
db = sqlite3.connect(os.path.join(os.environ["STACK_DIR"], "sqlite", "crebito.db"))
cur = db.execute(sql)
names = [c[0] for c in cur.description]
print(json.dumps([dict(zip(names, row)) for row in cur]))
AUDIT
cat > "$entry/ledger" <<LEDGER
#!/usr/bin/env python3
"""stress/ledger.sql's object from the stack's file: the clients, and each client's
transactions in the order they were applied (the rowid, SQLite's insertion order)."""
import json, os, sqlite3
db = sqlite3.connect(os.path.join(os.environ["STACK_DIR"], "sqlite", "crebito.db"))
clientes = db.execute("SELECT id, limite, saldo FROM clientes ORDER BY id").fetchall()
transacoes = db.execute(
    "SELECT cliente_id, id, valor, tipo, descricao FROM transacoes ORDER BY cliente_id, id"
).fetchall()
print(json.dumps({"clientes": clientes, "transacoes": transacoes}))
LEDGER
chmod +x "$entry/setup" "$entry/serve" "$entry/audit" "$entry/ledger"

variant="STACK_ENTRY=$entry DB_CPUS=0.05 DB_MEMORY_MB=100 API_CPUS=0.5 API_MEMORY_MB=150 LB_CPUS=0.45 LB_MEMORY_MB=60"
if [ "${1:-}" = entry ]; then echo "$variant"; exit 0; fi
out=$(out_dir "${1:?usage: bench/shared-sqlite.sh entry | OUT [NAME:ASSIGNMENTS …]}"); shift
exec "$here/reference.sh" "$out" "shared-sqlite:$variant" "$@"
