#!/bin/sh
# dotproxy-entrypoint: the container image's entrypoint (see the Dockerfile). Installs the
# interception rules with dotproxy-rules, runs the daemon in the foreground, forwards
# SIGTERM, SIGINT (as SIGTERM), SIGHUP and SIGUSR1 to it, and removes the rules when the
# daemon stops cleanly. When the daemon fails, the rules stay (DNS fails closed, as under
# systemd) until the container runs again or `docker run ... IMAGE rules-down` removes them.
#
# Configured through the environment:
#   DOTPROXY_*    the daemon's settings (dotproxy(8), ENVIRONMENT); DOTPROXY_MODE,
#                 DOTPROXY_PORT, DOTPROXY_MARK and DOTPROXY_QUEUE also go to the rules, so
#                 the two always agree (set them here, not in a mounted dotproxy.conf)
#   RULES_SCOPE   host (default: this machine's own queries), gateway, both, or none (the
#                 host installs the rules itself)
#   RULES_ARGS    more dotproxy-rules flags: --in-interface eth1, --backend nft, --fail-open
# Arguments: "rules-up" or "rules-down" only install or remove the rules (a Kubernetes
# initContainer and preStop hook); anything else is passed to the daemon.
set -eu

rules_up() {
	set -- up --mode "${DOTPROXY_MODE:-tproxy}" --port "${DOTPROXY_PORT:-5353}"
	if [ -n "${DOTPROXY_MARK:-}" ]; then set -- "$@" --mark "$DOTPROXY_MARK"; fi
	if [ -n "${DOTPROXY_QUEUE:-}" ]; then set -- "$@" --queue "$DOTPROXY_QUEUE"; fi
	# RULES_ARGS is a list of flags: split on blanks
	# shellcheck disable=SC2086
	dotproxy-rules "$@" --scope "${RULES_SCOPE:-host}" ${RULES_ARGS:-}
}

case "${1:-}" in
rules-up)
	rules_up
	exit 0
	;;
rules-down) exec dotproxy-rules down ;;
esac

if [ "${RULES_SCOPE:-host}" = none ]; then exec dotproxy "$@"; fi
rules_up
dotproxy "$@" &
pid=$!
# (SIGINT goes on as SIGTERM: a background job of a script starts with SIGINT ignored.)
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
trap 'kill -HUP "$pid" 2>/dev/null || true' HUP
trap 'kill -USR1 "$pid" 2>/dev/null || true' USR1
# A trapped signal ends `wait` early: wait again while the daemon is there (a zombie too).
rc=0
while kill -0 "$pid" 2>/dev/null; do
	if wait "$pid"; then rc=0; else rc=$?; fi
done
if [ "$rc" -eq 0 ]; then dotproxy-rules down; fi
exit "$rc"
