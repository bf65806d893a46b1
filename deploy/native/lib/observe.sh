# shellcheck shell=bash
# Observing the stack (STACK_OBSERVE=1 or `up --observe`): Prometheus scraping both
# instances (through nginx's operations server), prometheus-postgres-exporter and
# prometheus-nginx-exporter, Debian's packages, each supervised, outside the envelope.

observe_up() {
  local prom pgexp ngexp hint="sudo apt-get install prometheus prometheus-postgres-exporter prometheus-nginx-exporter"
  prom=$(command -v prometheus) || die "prometheus not found: $hint"
  pgexp=$(command -v prometheus-postgres-exporter) || die "prometheus-postgres-exporter not found: $hint"
  ngexp=$(command -v prometheus-nginx-exporter) || die "prometheus-nginx-exporter not found: $hint"
  mkdir -p "$DIR/obs/tsdb"
  sed -e "s#127.0.0.1:9998#127.0.0.1:$(port_of ops)#" -e "s#127.0.0.1:9187#127.0.0.1:$(port_of pgexp)#" \
    -e "s#127.0.0.1:9113#127.0.0.1:$(port_of ngexp)#" "${repo:?}/deploy/observability/prometheus.yml" > "$DIR/obs/prometheus.yml"
  supervise obs-pgexp env DATA_SOURCE_NAME="host=$DIR/pg port=$(port_of db) user=postgres dbname=$DB_NAME sslmode=disable" \
    "$pgexp" --web.listen-address="127.0.0.1:$(port_of pgexp)"
  supervise obs-ngexp "$ngexp" -nginx.scrape-uri="$(ops_url)/nginx_status" \
    -web.listen-address="127.0.0.1:$(port_of ngexp)"
  supervise obs-prom "$prom" --config.file="$DIR/obs/prometheus.yml" --storage.tsdb.path="$DIR/obs/tsdb" \
    --web.listen-address="127.0.0.1:$(port_of prom)" --storage.tsdb.retention.time=1d
  wait_for "Prometheus" 30 curl -fsS -o /dev/null "$(prom_url)/-/ready"
  say "observing: Prometheus on $(prom_url) (exporters on $(port_of pgexp), $(port_of ngexp))"
}
