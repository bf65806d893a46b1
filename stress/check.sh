#!/usr/bin/env bash
# Check any implementation of the Rinha 2024/Q1 contract for strict serializability, from the
# outside: nothing but HTTP, no database access, no stack of crebito's.
#
#   stress/check.sh [--target 127.0.0.1:9999] [--scale S] [--duration-scale D] [--clients N]
#                   [--idempotent] [--out DIR]
#
# 1. crebito-loader sends the official simulation's load (débitos, créditos, extratos; a new
#    connection per request) × SCALE to the target — loopback only — with a description unique
#    within the run on every POST, and records every request and its answer (the history),
#    with one statement per client read before the load and one after it has drained
#    (--bracket). --idempotent sends an Idempotency-Key and retries ambiguous answers with it:
#    only for a server that honours the header.
# 2. crebito-check without a ledger infers each client's serial order from the answers
#    (every 200's saldo, the statements' lists and totals, real time) and checks every answer
#    against it: DIR/check.json, DIR/check.log, and DIR/check.html (the verdict and each
#    violation with the requests that show it).
# Start the server fresh (every client at saldo 0), or let --bracket's first statements say
# where each client starts. Exit 0 when strictly serializable, 1 when not, 2 when undecided (the
# search for an order gave up on a client: neither passed nor a violation).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target=127.0.0.1:9999 scale=1 dscale=1 clients=5 idempotent=() out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --duration-scale) dscale=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --idempotent) idempotent=(--idempotent); shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "stress/check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out="${out:-$repo/stress/out/check-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
if [ -z "${LOADER_BIN:-}" ]; then
  (cd "$repo" && cargo build --release --locked -q -p crebito-loader)
  LOADER_BIN="$repo/target/release/crebito-loader"
fi
check_bin="$(dirname "$LOADER_BIN")/crebito-check"
echo "check: the official profile × $scale against $target (duration × $dscale)" >&2
"$LOADER_BIN" --target "$target" --scale "$scale" --duration-scale "$dscale" --clients "$clients" \
  ${idempotent[@]+"${idempotent[@]}"} --history "$out/history.jsonl" --bracket --out "$out/loader.json" > /dev/null
verdict=0
"$check_bin" --history "$out/history.jsonl" --out "$out/check.json" 2> "$out/check.log" || verdict=$?
# 3: the checker could not read the history (no check.json): a failure, said as such.
[ -f "$out/check.json" ] || { cat "$out/check.log" >&2; exit 1; }
python3 "$here/report.py" check-page --check "$out/check.json" --loader "$out/loader.json" --out "$out/check.html"
head -n 30 "$out/check.log" >&2
echo "check: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(("strictly serializable" if r["strict_serializable"] else "undecided: the search gave up" if r.get("verdict") == "undecided" else "NOT strictly serializable: %d violations" % r["violations_total"]) + " (%d operations, %.2f s)" % (r["operations"], r["seconds"]))' "$out/check.json"); $out/check.html" >&2
exit "$verdict"
