#!/usr/bin/env bash
# Run beside stress/faults.sh (same PORT): every 0.2 s, both instances' crebito_pg_batch_waiting
# ("unix_ms api1 api2", "-" when an instance did not answer) appended to FILE, for SECONDS
# (default 400). The gauge exists in every version, so it shows the queue of a build without
# the high-water mark too (waiting-samples.txt in each run's folder).
#   PORT=17777 docs/reports/faults/freeze-4x/sample-waiting.sh FILE [SECONDS]
out=$1; limit=${2:-400}
stack="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)/deploy/native/stack"
end=$(( $(date +%s) + limit ))
while [ "$(date +%s)" -lt "$end" ]; do
  ops=$("$stack" env STACK_OPS_URL 2>/dev/null) || { sleep 0.5; continue; }
  a=$(curl -fsS -m 1 "$ops/metrics/api1" 2>/dev/null | awk '/^crebito_pg_batch_waiting\{/ {print $NF}')
  b=$(curl -fsS -m 1 "$ops/metrics/api2" 2>/dev/null | awk '/^crebito_pg_batch_waiting\{/ {print $NF}')
  echo "$(date +%s%3N) ${a:--} ${b:--}" >> "$out"
  sleep 0.2
done
