#!/usr/bin/env bash
# nginx's work per connection, one setting at a time: each KNOB is deploy/nginx.conf with one
# change (a substitution that must match, so a changed nginx.conf fails here loudly), run by
# bench/topology.sh (NGINX_CONF=…) against the unchanged file, alternating, in one sitting.
#
#   bench/nginx-knobs.sh [KNOB …]   (SCALE, DURATION_SCALE, ROUNDS, PORT as bench/topology.sh)
#
# Knobs (default: all):
#   deferred          listen … deferred: TCP_DEFER_ACCEPT, nginx is woken when the request
#                     has arrived, not at the handshake
#   keepalive0        keepalive_timeout 0: answer with "Connection: close" and close first
#                     (the official test opens a connection per request anyway)
#   single_accept     multi_accept off: one accept per wakeup instead of draining the queue
#   no_reuseport      one listening socket shared by the workers instead of one each
#   accept_mutex      one shared socket, taken in turn (accept_mutex on): when idle, one
#                     worker takes the connections and the other sleeps; when busy, both
#   lingering_off     lingering_close off: close at once after the answer instead of
#                     shutdown(SHUT_WR) and waiting for the client's FIN (nginx lingers on
#                     almost every connection here: strace counts a shutdown per accept)
#   inflight:N        the in-flight bound (limit_conn) at N instead of 512: queue longer vs refuse
# Any other argument is passed through as a topology.sh variant (e.g. "DB_CPUS=0.6 LB_CPUS=0.5").
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 0 ] || set -- deferred keepalive0 single_accept no_reuseport
work=$(mktemp -d)
on_exit "rm -rf '$work'"

variants=("-")
for arg in "$@"; do
  if file=$(knob_conf "$arg" "$work"); then
    variants+=("NGINX_CONF=$file")
  elif [ $? -eq 2 ]; then
    exit 1
  else
    variants+=("$arg")
  fi
done
# Labels in the table are the variants; name the knobs' files by knob so they read as such.
"$here/topology.sh" "${variants[@]}" | sed "s#NGINX_CONF=$work/\([a-z0-9_]*\)\.conf#\1#g"
