#!/usr/bin/env bash
# What durability costs, and which PostgreSQL settings make it cheap: the native contest stack
# (limits on) under the fast loader, per VARIANT of its settings, with the WAL each POST writes.
#
#   bench/durability.sh OUT [VARIANT …]   (SCALES="1 8", DURATION_SCALE=0.25, ROUNDS=2,
#                                          PORT=19993)
#
# A VARIANT is NAME:ASSIGNMENTS, the assignments for deploy/native/stack as in
# bench/topology.sh, e.g. "contest:CREBITO_PG_PROFILE=contest", "durable:-" (deploy/.env's
# default), "delay:PG_DURABLE_FLAGS='-c commit_delay=50'".
# Default: the contest and the durable profiles as deploy/.env defines them. Every round runs
# every scale and variant on a fresh stack, the variants' order alternating between rounds.
# Per run (OUT/runs.jsonl): the loader's SLA, KO and latency, CPU µs per request for each
# service (the database's split into its own code and the kernel's), throttled periods, and from pg_stat_wal / pg_stat_database the WAL records, bytes,
# full-page images, writes and flushes per committed transaction and per POST, WAL segments
# created during the run (pg_wal's files), commits per POST, the writes per transaction the instances sent (group commit, crebito_pg_batch_size)
# and the share of writes that found their connection's previous transaction in flight and waited
# for the next (behind its flush, durable: crebito_pg_batch_queued_total),
# and the share of HOT updates on clientes. OUT/durability.md: the medians per variant and
# scale, under the disk's own flush measured in the same sitting (bench/lib.sh disk_flush on
# the file system the stacks' data is on: a durable commit waits for one such flush).
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=${1:?usage: bench/durability.sh OUT [NAME:VARIANT …]}; shift
out=$(out_dir "$out")
export PORT="${PORT:-19993}"
[ $# -gt 0 ] || set -- "contest:CREBITO_PG_PROFILE=contest" "durable:-"
build_release
loader="$repo/target/release/crebito-loader"
on_exit "\"$stack\" down >/dev/null 2>&1"

# Cluster-wide WAL counters and the database's commits, as one JSON object.
pg_counters() {
  "$stack" psql -Atq -c "SELECT json_build_object(
      'wal_records', w.wal_records, 'wal_fpi', w.wal_fpi, 'wal_bytes', w.wal_bytes,
      'wal_write', w.wal_write, 'wal_sync', w.wal_sync, 'wal_buffers_full', w.wal_buffers_full,
      'xact_commit', d.xact_commit,
      'wal_segments', (SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'),
      'n_tup_upd', (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'clientes'),
      'n_tup_hot_upd', (SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'clientes'))
    FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()"
}
cpus() { for s in db api1 api2 lb; do printf '"%s": %s, ' "$s" "$(stack_cpu "$s")"; done; }
# Writes and transactions the two instances sent (crebito_pg_batch_size's sum and count), and
# the writes that found their connection busy and waited for its next transaction
# (crebito_pg_batch_queued_total).
batches() {
  local ops; ops=$(stack_env STACK_OPS_URL)
  { curl -fsS "$ops/metrics/api1"; curl -fsS "$ops/metrics/api2"; } | awk '
    /^crebito_pg_batch_size_sum/ { w += $NF } /^crebito_pg_batch_size_count/ { t += $NF }
    /^crebito_pg_batch_queued_total/ { q += $NF }
    END { printf "{\"writes\": %d, \"transactions\": %d, \"queued\": %d}", w, t, q }'
}

: > "$out/runs.jsonl"
machine "SCALES ${SCALES:-1 8}, DURATION_SCALE ${DURATION_SCALE:-0.25}, ROUNDS ${ROUNDS:-2}" > "$out/machine.txt"
disk_flush "${STACK_DIR:-/tmp}" >> "$out/machine.txt"
for r in $(seq "${ROUNDS:-2}"); do
  variants=("$@")
  if [ $((r % 2)) = 0 ]; then # the other order on even rounds
    variants=(); for ((i = $#; i >= 1; i--)); do variants+=("${!i}"); done
  fi
  for scale in ${SCALES:-1 8}; do
    for nv in "${variants[@]}"; do
      name=${nv%%:*}; v=${nv#*:}; [ "$v" = - ] && v=""
      eval "env $v \"\$stack\" up" >/dev/null 2>&1 || { echo "durability: $name did not come up" >&2; exit 1; }
      w0=$(pg_counters); c0="{ $(cpus) \"_\": 0 }"; t0=$(ticks db)
      "$loader" --target "127.0.0.1:$PORT" --scale "$scale" --duration-scale "${DURATION_SCALE:-0.25}" \
        --out "$out/loader.json" >/dev/null
      sleep 2 # the backends' statistics reach the shared counters within a second of going idle
      w1=$(pg_counters); c1="{ $(cpus) \"_\": 0 }"; b1=$(batches); t1=$(ticks db)
      thr=$(status_field throttled_periods | awk '{ printf "%s\"%s\": %s", sep, $1, $2; sep = ", " }')
      "$stack" down >/dev/null 2>&1
      python3 - "$name" "$v" "$scale" "$r" "$w0" "$w1" "$c0" "$c1" "{$thr}" "$out/loader.json" "$b1" "$t0" "$t1" "$(getconf CLK_TCK)" >> "$out/runs.jsonl" <<'EOF'
import json, sys
name, variant, scale, rnd, w0, w1, c0, c1, thr, loader, b1, t0, t1, hz = sys.argv[1:]
(u0, s0), (u1, s1) = ([int(x) for x in t.split()] for t in (t0, t1))
w0, w1, c0, c1, thr, b1 = (json.loads(x) for x in (w0, w1, c0, c1, thr, b1))
ld = json.load(open(loader))
d = {k: w1[k] - w0[k] for k in w1}
tx = max(d["xact_commit"], 1)
reqs = ld["requests"]
posts = ld["per_scenario"]["debitos"]["requests"] + ld["per_scenario"]["creditos"]["requests"]
print(json.dumps({
    "variant": name, "settings": variant, "scale": float(scale), "round": int(rnd),
    "requests": reqs, "ko": ld["ko"], "sla_pct": round(100 * ld["ok_under_250ms"] / reqs, 2),
    "p50_ms": ld["latency_ms"]["p50"], "p99_ms": ld["latency_ms"]["p99"], "max_ms": ld["latency_ms"]["max"],
    "cpu_us_per_request": {s: round((c1[s] - c0[s]) * 1e6 / reqs, 1) for s in ("db", "api1", "api2", "lb")},
    "db_user_kernel_us_per_request": [round((b - a) * 1e6 / int(hz) / reqs, 1) for a, b in ((u0, u1), (s0, s1))],
    "throttled": thr,
    "commits": d["xact_commit"],
    "wal_per_commit": {k: round(d[k] / tx, 3) for k in ("wal_records", "wal_fpi", "wal_bytes", "wal_write", "wal_sync")},
    "posts": posts,
    "commits_per_post": round(d["xact_commit"] / posts, 3),
    "wal_per_post": {k: round(d[k] / posts, 3) for k in ("wal_bytes", "wal_sync")},
    "wal_segments_created": d["wal_segments"],
    "writes_per_transaction": round(b1["writes"] / b1["transactions"], 2) if b1["transactions"] else None,
    "writes_waited_pct": round(100 * b1["queued"] / b1["writes"], 2) if b1["writes"] else None,
    "hot_update_pct": round(100 * d["n_tup_hot_upd"] / d["n_tup_upd"], 1) if d["n_tup_upd"] else None,
}))
EOF
      tail -n1 "$out/runs.jsonl" >&2
    done
  done
done
rm -f "$out/loader.json"

python3 - "$out/runs.jsonl" "$(cat "$out/machine.txt")" > "$out/durability.md" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: round(statistics.median(xs), 2)
print(sys.argv[2] + "\n")
print("Medians over the rounds (bench/durability.sh; runs.jsonl has every run).\n")
print("| variant | SCALE | runs | SLA % | KO | p50 ms | p99 ms | max ms | CPU µs/request db / api / lb | db user / kernel µs/request | writes / transaction | writes that waited for their connection % | commits / POST | WAL flushes / POST | WAL bytes / POST | WAL bytes / commit | WAL records / commit | full-page images / commit | WAL flushes / commit | WAL segments created | HOT updates % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
keys = []
for r in runs:
    if (r["variant"], r["scale"]) not in keys:
        keys.append((r["variant"], r["scale"]))
for v, s in sorted(keys, key=lambda k: (k[1], keys.index(k))):
    rs = [r for r in runs if r["variant"] == v and r["scale"] == s]
    cpu = lambda svc: med([r["cpu_us_per_request"][svc] for r in rs])
    wal = lambda k: med([r["wal_per_commit"][k] for r in rs])
    hot = [r["hot_update_pct"] for r in rs if r["hot_update_pct"] is not None]
    waited = [r["writes_waited_pct"] for r in rs if r.get("writes_waited_pct") is not None]
    print(f"| {v} | {s:g} | {len(rs)} | {med([r['sla_pct'] for r in rs])} | {med([r['ko'] for r in rs]):g} | "
          f"{med([r['p50_ms'] for r in rs])} | {med([r['p99_ms'] for r in rs])} | {med([r['max_ms'] for r in rs])} | "
          f"{cpu('db')} / {med([r['cpu_us_per_request']['api1'] + r['cpu_us_per_request']['api2'] for r in rs])} / {cpu('lb')} | "
          f"{med([r['db_user_kernel_us_per_request'][0] for r in rs])} / {med([r['db_user_kernel_us_per_request'][1] for r in rs])} | "
          f"{med([r['writes_per_transaction'] or 0 for r in rs])} | {med(waited) if waited else '–'} | {med([r['commits_per_post'] for r in rs])} | "
          f"{med([r['wal_per_post']['wal_sync'] for r in rs])} | {med([r['wal_per_post']['wal_bytes'] for r in rs])} | "
          f"{wal('wal_bytes')} | {wal('wal_records')} | {wal('wal_fpi')} | {wal('wal_sync')} | {med([r.get('wal_segments_created', 0) for r in rs]):g} | {med(hot) if hot else '–'} |")
print("\nSettings:\n")
seen = {}
for r in runs:
    seen.setdefault(r["variant"], r["settings"])
for v, st in seen.items():
    print(f"- {v}: `{st or 'deploy/.env as is'}`")
EOF
cat "$out/durability.md"
