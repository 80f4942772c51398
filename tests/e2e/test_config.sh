#!/usr/bin/env bash
# tests/e2e/test_config.sh: the config file, DOTPROXY_* variables, --check-config, SIGHUP reload
# and SIGUSR1, as a person running dotproxy on a gateway sees them (tproxy mode, gateway scope,
# queries from the LAN client to the plaintext decoy's address).
#
#   1. a daemon configured by a file alone answers over DoT; a DOTPROXY_UPSTREAM variable
#      overrides the file's (broken) upstream
#   2. --check-config: a good file says ok and exits 0; a bad one prints one line per error with
#      its line number and exits non-zero; a private key others may read is refused at start,
#      before anything listens
#   3. SIGHUP with a second upstream added: queries keep being answered during a series of
#      reloads, the first upstream's TLS connection is kept (no new handshake), the new one shows
#      in the metrics
#   4. SIGHUP with a broken file: rejected with the line number in the log, the old settings keep
#      answering; a port change is kept for a restart, and said so
#   5. SIGHUP with the first upstream removed: it leaves the metrics and the other one answers
#   6. SIGUSR1 writes the counters to the log
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

U1="$LAB_DOT4@853#$LAB_AUTH"
U2="$LAB_DOT2_4@853#$LAB_AUTH"
DEAD="198.51.100.99@853#$LAB_AUTH"   # nothing listens there
CONF=$LAB_DIR/conf/dotproxy.conf

lab_unbound_extra dot2 "$LAB_DOT2_4" "$LAB_DOT2_6" || lab_bail "the second DoT Unbound did not start"
lab_rules up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" ||
	lab_bail "dotproxy-rules up failed"
# the daemon may run as another user: it reads the file and the CA again on SIGHUP
mkdir -p "$LAB_DIR/conf"
chmod 755 "$LAB_DIR" "$LAB_DIR/conf" "$(dirname "$LAB_CA")"
chmod 644 "$LAB_CA"

# conf LINES...: write the config file, one line per argument.
conf() { printf '%s\n' "$@" >"$CONF.new" && chmod 644 "$CONF.new" && mv "$CONF.new" "$CONF"; }
# base: the settings every daemon here starts from.
base() {
	printf '%s\n' "# written by test_config.sh" "mode = tproxy" "port = $LAB_PORT" \
		"ca-file = $LAB_CA" "metrics = $LAB_METRICS" "cache-size = 0" "policy = ordered"
}
# start ARGS...: dotproxy with ARGS (env assignments through `env` first), wait for /health.
start() {
	lab_dotproxy_start "$@" --metrics "$LAB_METRICS" && return 0
	fail "dotproxy starts with $*" "$(tail -n 5 "$LAB_DP_LOG")"
	return 1
}
ask() { lab_expect_www "$1" c "$LAB_DECOY4" A; }
m() { lab_metric0 "$1"; }
# hup: SIGHUP the daemon and wait until the log says how the reload ended.
hup() {
	local n0 i
	n0=$(grep -c 'reload done\|reload rejected' "$LAB_DP_LOG")
	kill -HUP "$LAB_DP_PID"
	for ((i = 0; i < 50; i++)); do
		(($(grep -c 'reload done\|reload rejected' "$LAB_DP_LOG") > n0)) && return 0
		sleep 0.1
	done
	return 1
}

# --- 1. a file alone; a variable over the file ---------------------------------------------------
s1() {
	conf "$(base)" "upstream = $U1"
	start --config "$CONF" || return
	ask "settings from $CONF only"
	lab_dotproxy_stop
	conf "$(base)" "upstream = $DEAD"
	DOTPROXY_UPSTREAM="$U1" DOTPROXY_TIMEOUT=1500 start --config "$CONF" || return
	ask "DOTPROXY_UPSTREAM replaces the file's upstream"
	n=$(lab_metrics | grep -c "^dotproxy_upstream_up{upstream=\"$DEAD\"}")
	check "the file's upstream is not used at all" "$n series for $DEAD" [ "$n" == 0 ]
	lab_dotproxy_stop
}

# --- 2. --check-config, and a private key others may read ----------------------------------------
s2() {
	local out rc key cert
	conf "$(base)" "upstream = $U1"
	out=$("$DOTPROXY" --check-config "$CONF" 2>&1); rc=$?
	check "--check-config on a good file: ok, exit 0" "rc=$rc: $out" [ "$rc" == 0 -a "$out" == "$CONF: ok" ]
	printf '%s\n' "mode = tproxy" "port = 99999" "# fine" "upstream = 192.0.2.1" "colour = blue" \
		"timeout = 1000" >"$LAB_DIR/bad.conf"
	out=$("$DOTPROXY" --check-config "$LAB_DIR/bad.conf" 2>&1); rc=$?
	check "--check-config on a bad file: exit non-zero" "rc=$rc" [ "$rc" != 0 ]
	n=$(grep -c . <<<"$out")
	check "--check-config: one line per error, three errors" "$out" [ "$n" == 3 ]
	for want in "bad.conf:2: port \"99999\"" "bad.conf:4: upstream" "bad.conf:5: \"colour\": unknown key"; do
		check "--check-config names \"$want\"" "$out" grep -qF "$want" <<<"$out"
	done
	key=$LAB_DIR/client.key cert=$LAB_DIR/client.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=client -days 1 \
		-keyout "$key" -out "$cert" 2>/dev/null || lab_bail "openssl could not make a client certificate"
	chmod 644 "$key"
	conf "$(base)" "upstream = $U1" "client-cert = $cert" "client-key = $key"
	chmod 600 "$CONF"
	out=$(ip netns exec "$LAB_NS_G" "$DOTPROXY" --config "$CONF" 2>&1); rc=$?
	check "a private key others may read: refused, exit non-zero" "rc=$rc: $out" \
		[ "$rc" != 0 -a "$(grep -c "others may read" <<<"$out")" == 1 ]
	n=$(ip netns exec "$LAB_NS_G" ss -Hlnu "sport = :$LAB_PORT" | grep -c .)
	check "... and nothing listened" "$n UDP sockets on port $LAB_PORT" [ "$n" == 0 ]
	chmod 600 "$key"
	start --config "$CONF" --user nobody || return
	ask "with the key made private, it starts and answers"
	# readable by the daemon's group only: a reload, as nobody under seccomp, reads both again
	chgrp nogroup "$key" "$CONF" && chmod 640 "$key" "$CONF"
	hup
	out=$(grep 'reload done\|reload rejected' "$LAB_DP_LOG" | tail -n 1)
	check "SIGHUP as nobody with a client key of group nogroup: reload done" "$out" \
		grep -q 'reload done' <<<"$out"
	ask "still answering after that reload"
	lab_dotproxy_stop
}

# --- 3-6. reloads ---------------------------------------------------------------------------------
s3() {
	local pid hs0 hs1 bad=0 i n out
	conf "$(base)" "upstream = $U1"
	start --config "$CONF" || return
	pid=$LAB_DP_PID
	ask "before any reload"
	hs0=$(m dotproxy_tls_handshakes_total)
	conf "$(base)" "upstream = $U1" "upstream = $U2" "timeout = 2000"
	# queries all along while the daemon reloads five times
	(for ((i = 0; i < 40; i++)); do
		lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +time=2 | dig_answers A | grep -qx "$LAB_WWW_A" || echo miss
		sleep 0.05
	done) >"$LAB_DIR/during.out" &
	local bg=$!
	for ((i = 0; i < 5; i++)); do hup || bad=$((bad + 1)); sleep 0.3; done
	wait "$bg"
	n=$(grep -c miss "$LAB_DIR/during.out")
	check "40 queries during 5 reloads: all answered from DoT" "$n missed, $bad reloads unfinished" \
		[ "$n" == 0 -a "$bad" == 0 ]
	n=$(grep -c 'reload done: 2 upstreams' "$LAB_DP_LOG")
	check "the log says each reload was done" "$n lines" [ "$n" == 5 ]
	hs1=$(m dotproxy_tls_handshakes_total)
	check "the connection to the upstream that stayed was kept (no new handshake)" "handshakes $hs0 -> $hs1" \
		[ "$hs1" == "$hs0" ]
	n=$(lab_metric "dotproxy_upstream_up{upstream=\"$U2\"}")
	check "the added upstream is in the metrics" "upstream_up=${n:-absent}" [ "${n:-x}" == 1 ]

	# 4. a broken file, then a change that needs a restart
	conf "$(base)" "upstream = $U1" "policy = fastest-please"
	hup
	out=$(grep 'reload rejected' "$LAB_DP_LOG" | tail -n 1)
	check "a broken file: rejected, with its line number" "$out" grep -qF "$CONF:9: policy \"fastest-please\"" <<<"$out"
	ask "the old settings keep answering"
	n=$(lab_metric "dotproxy_upstream_up{upstream=\"$U2\"}")
	check "... with both upstreams still" "upstream_up{U2}=${n:-absent}" [ "${n:-x}" == 1 ]
	conf "$(base | sed "s/^port = .*/port = 5399/")" "upstream = $U1" "upstream = $U2"
	hup
	check "a port change is kept for a restart, and said so" "$(tail -n 3 "$LAB_DP_LOG")" \
		grep -q 'reload: port changed: the old value stays until a restart' "$LAB_DP_LOG"
	ask "still answering on the old port"

	# 5. the first upstream removed
	conf "$(base)" "upstream = $U2"
	a0=$(m "dotproxy_upstream_answers_total{upstream=\"$U2\"}")
	hup
	ask "with the first upstream removed"
	n=$(lab_metrics | grep -c "^dotproxy_upstream_up{upstream=\"$U1\"}")
	a1=$(m "dotproxy_upstream_answers_total{upstream=\"$U2\"}")
	check "the removed upstream left the metrics; the other one answered" "U1 series: $n, U2 answers $a0 -> $a1" \
		[ "$n" == 0 -a "$a1" -gt "$a0" ]

	# 6. SIGUSR1
	kill -USR1 "$LAB_DP_PID"
	for ((i = 0; i < 30; i++)); do grep -q '^dotproxy: stats: dotproxy_queries_total' "$LAB_DP_LOG" && break; sleep 0.1; done
	check "SIGUSR1 writes the counters to the log" "$(grep -c 'stats:' "$LAB_DP_LOG") stats lines" \
		grep -q '^dotproxy: stats: dotproxy_queries_total' "$LAB_DP_LOG"
	n=0; lab_dotproxy_alive && [[ $LAB_DP_PID == "$pid" ]] && n=1
	check "one daemon through it all (pid $pid)" "alive=$n" [ "$n" == 1 ]
	lab_dotproxy_stop
	check "it stops cleanly after reloads" "exit $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
}

s1
s2
s3
lab_finish
