# shellcheck shell=bash
# The load balancer in front of the two instances. LB=nginx runs the very file Compose
# mounts, deploy/nginx.conf, with this machine's paths and ports put in (each rewrite
# checked: a changed nginx.conf fails loudly here, never silently); the alternatives
# (LB=nginx-stream, haproxy-*) are templates in deploy/native/templates/, LB=entry the
# compared entry's own (STACK_ENTRY/nginx.conf).

# render TEMPLATE OUT: @PORT@, @OPS_PORT@, @PROCESSES@, @API1@, @API2@ filled in.
render() {
  local api1=$3 api2=$4
  sed -e "s|@PORT@|$PORT|g" -e "s|@OPS_PORT@|$(port_of ops)|g" -e "s|@PROCESSES@|${LB_PROCESSES:-2}|g" \
    -e "s|@API1@|$api1|g" -e "s|@API2@|$api2|g" "$1" > "$2"
  ! grep -q '@[A-Z0-9_]*@' "$2" || die "$1 has a placeholder render does not know"
}

# rewrite FILE PATTERN REPLACEMENT: one sed substitution that must change something.
rewrite() {
  local before; before=$(cksum < "$1")
  sed -i "s#$2#$3#g" "$1"
  [ "$(cksum < "$1")" != "$before" ] || die "could not rewrite $(basename "$1"): no line matches '$2'"
}

# deploy/nginx.conf (or NGINX_CONF, a variant of it) for this stack: the shared socket
# directory, the public and operations ports, and the knobs (LB_PROCESSES, NGINX_BALANCE,
# UPSTREAM, STACK_TRACE).
nginx_conf() {
  local conf=$1 i
  cp "${NGINX_CONF:-${repo:?}/deploy/nginx.conf}" "$conf"
  rewrite "$conf" "/run/crebito" "$DIR/run"
  rewrite "$conf" "listen 9999 " "listen 127.0.0.1:$PORT "
  rewrite "$conf" "listen 127.0.0.1:9998;" "listen 127.0.0.1:$(port_of ops);"
  [ -z "${LB_PROCESSES:-}" ] || rewrite "$conf" "^worker_processes .*" "worker_processes $LB_PROCESSES;"
  if [ "$UPSTREAM" = tcp ]; then
    for i in 1 2; do rewrite "$conf" "server unix:$DIR/run/api$i.sock " "server $(api_listen "$i") "; done
  fi
  case "${NGINX_BALANCE:-round_robin}" in
    round_robin) ;;
    least_conn) rewrite "$conf" "^    upstream crebito {" "&\n        least_conn;" ;;
    *) die "NGINX_BALANCE must be round_robin or least_conn" ;;
  esac
  if [ "${STACK_TRACE:-0}" = 1 ]; then
    # shellcheck disable=SC2016 # nginx variables
    rewrite "$conf" '^    access_log off;' '    log_format hops "$msec $request_time $upstream_response_time $upstream_connect_time $status";\n    access_log '"$DIR"'/log/access.log hops buffer=256k flush=1s;'
  fi
}

balancer_up() {
  local nginx conf
  case "$LB" in
    nginx|nginx-stream|entry)
      nginx=$(command -v nginx || echo /usr/sbin/nginx)
      [ -x "$nginx" ] || die "nginx not found: sudo apt-get install nginx"
      conf="$DIR/nginx/nginx.conf"
      case "$LB" in
        nginx) nginx_conf "$conf" ;;
        entry) render "$STACK_ENTRY/nginx.conf" "$conf" "$(api_listen 1)" "$(api_listen 2)" ;;
        *) render "${here:?}/templates/nginx-stream.conf" "$conf" "$(api_listen 1)" "$(api_listen 2)" ;;
      esac
      "$nginx" -t -q -p "$DIR/nginx" -c "$conf" -g "pid $DIR/nginx/nginx.pid;" >"$DIR/log/nginx-t.log" 2>&1 ||
        { cat "$DIR/log/nginx-t.log" >&2; die "nginx -t rejected the configuration"; }
      supervise lb "$nginx" -p "$DIR/nginx" -c "$conf" -g "daemon off; pid $DIR/nginx/nginx.pid;" ;;
    haproxy-*)
      local haproxy a1 a2
      haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
      [ -x "$haproxy" ] || die "haproxy not found: sudo apt-get install haproxy"
      mkdir -p "$DIR/haproxy"; conf="$DIR/haproxy/haproxy.cfg"
      a1=$(api_listen 1); a2=$(api_listen 2)
      render "${here:?}/templates/$LB.cfg" "$conf" "${a1/#unix:/unix@}" "${a2/#unix:/unix@}"
      "$haproxy" -c -q -f "$conf" >"$DIR/log/haproxy-c.log" 2>&1 ||
        { cat "$DIR/log/haproxy-c.log" >&2; die "haproxy -c rejected the configuration"; }
      supervise lb "$haproxy" -db -f "$conf" ;;
  esac
}
