#!/usr/bin/env bash
# tests/e2e/test_log.sh: the log as an operator sees it.
#
# --query-log writes one line per answered query with the client's address and port, front-end,
# transport, name, type, rcode, source (upstream and which, cache, local), latency and size (the
# size dig received); without it, no query name appears anywhere in the log. --log-format logfmt
# gives ts=... level=... msg=... lines, --log-level warn drops info lines. --log syslog: in a
# private mount namespace with a tmpfs on /dev, a unix datagram listener this test owns is
# /dev/log; the daemon's lines must arrive there with the daemon facility and the right
# priority (info, warning, error), and with no /dev/log, --log syslog is one error line, exit 2.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

UP_LABEL="$LAB_DOT4@853#$LAB_AUTH"
NX=nx.dotproxy.test

# start_dp ARGS...: dotproxy in tproxy mode with the rules up for the client (gateway scope).
start_dp() {
	mapfile -t args < <(lab_dotproxy_args)
	lab_dotproxy_start --mode tproxy "${args[@]}" "$@" || { fail "dotproxy $* starts" "$(tail -n 5 "$LAB_DP_LOG")"; return 1; }
	lab_rules up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" ||
		{ fail "dotproxy-rules up" "$(tail -n 5 "$LAB_DIR/rules.log")"; return 1; }
}

# rcvd DIG-OUTPUT: the size dig says it received.
rcvd() { sed -n 's/^;; MSG SIZE  rcvd: \([0-9]*\)$/\1/p' | head -n1; }

# qline PATTERN: the log's query lines matching PATTERN (grep -E).
qlines() { grep -E "$1" "$LAB_DP_LOG"; }

# --- --query-log, text --------------------------------------------------------------------------
if start_dp --query-log; then
	o1=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +notcp)
	o2=$(lab_dig c "@$LAB_DECOY6" "$LAB_WWW" AAAA +tcp)
	o3=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +notcp)	# from the cache now
	o4=$(lab_dig c "@$LAB_DECOY4" "$NX" A +notcp)
	lab_unbound_stop dot
	o5=$(lab_dig c "@$LAB_DECOY4" "down.$LAB_WWW" A +notcp)	# no upstream: SERVFAIL from dotproxy
	lab_unbound_start dot || lab_bail "unbound dot did not start again"
	lab_dotproxy_stop
	lab_rules down --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF"

	pre='^dotproxy: query client=192\.0\.2\.2:[0-9]+ frontend=tproxy'
	l=$(qlines "$pre transport=udp qname=$LAB_WWW\. qtype=A rcode=NOERROR source=upstream upstream=$UP_LABEL ms=[0-9]+ size=$(rcvd <<<"$o1")\$")
	check "query log: UDP/IPv4 answer from the upstream, with client port, latency and dig's size" \
		"$(grep 'query ' "$LAB_DP_LOG")" [ "$(wc -l <<<"$l")" == 1 -a -n "$l" ]
	l=$(qlines "^dotproxy: query client=\[2001:db8:1::2\]:[0-9]+ frontend=tproxy transport=tcp qname=$LAB_WWW\. qtype=AAAA rcode=NOERROR source=upstream upstream=$UP_LABEL ms=[0-9]+ size=$(rcvd <<<"$o2")\$")
	check "query log: TCP/IPv6 answer, client [2001:db8:1::2]:port" "$(grep 'query ' "$LAB_DP_LOG")" [ -n "$l" ]
	l=$(qlines "$pre transport=udp qname=$LAB_WWW\. qtype=A rcode=NOERROR source=cache ms=[0-9]+ size=$(rcvd <<<"$o3")\$")
	check "query log: the repeat comes from the cache" "$(grep 'query ' "$LAB_DP_LOG")" [ -n "$l" ]
	l=$(qlines "$pre transport=udp qname=$NX\. qtype=A rcode=NXDOMAIN source=upstream upstream=$UP_LABEL ms=[0-9]+ size=$(rcvd <<<"$o4")\$")
	check "query log: NXDOMAIN named as such" "$(grep 'query ' "$LAB_DP_LOG")" [ -n "$l" ]
	l=$(qlines "$pre transport=udp qname=down\.$LAB_WWW\. qtype=A rcode=SERVFAIL source=local ms=[0-9]+ size=$(rcvd <<<"$o5")\$")
	check "query log: SERVFAIL with no upstream is local" "$(grep 'query ' "$LAB_DP_LOG"; dig_status <<<"$o5")" [ -n "$l" ]
	n=$(grep -c '^dotproxy: query ' "$LAB_DP_LOG")
	check "query log: one line per answered query (5)" "$n lines" [ "$n" == 5 ]
fi

# --- without --query-log: no names, no query lines ------------------------------------------------
if start_dp; then
	lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +notcp >/dev/null
	lab_dig c "@$LAB_DECOY6" "$NX" AAAA +tcp >/dev/null
	n=$(lab_metric0 'dotproxy_queries_total{transport="udp"}')
	lab_dotproxy_stop
	lab_rules down --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF"
	check "default log: the daemon did answer (udp queries counted: $n)" "$n" [ "$n" -ge 1 ]
	seen=$(grep -n -i -e "$LAB_WWW" -e "$NX" -e "query " "$LAB_DP_LOG")
	check "default log: no query name and no query line" "$seen" [ -z "$seen" ]
fi

# --- logfmt, and --log-level warn ----------------------------------------------------------------
if start_dp --query-log --log-format logfmt; then
	lab_dig c "@$LAB_DECOY4" "$LAB_WWW" TXT +notcp >/dev/null
	lab_dotproxy_stop
	lab_rules down --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF"
	ts='ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
	l=$(qlines "^$ts level=info msg=query client=192\.0\.2\.2:[0-9]+ frontend=tproxy transport=udp qname=$LAB_WWW\. qtype=TXT rcode=NOERROR source=upstream upstream=$UP_LABEL ms=[0-9]+ size=[0-9]+\$")
	check "logfmt: the query line as fields" "$(tail -n 3 "$LAB_DP_LOG")" [ -n "$l" ]
	l=$(qlines "^$ts level=info msg=\"dotproxy [^\"]*: tproxy mode on port $LAB_PORT, 1 upstream\"\$")
	check "logfmt: the start-up line, msg quoted" "$(sed -n 2p "$LAB_DP_LOG")" [ -n "$l" ]
	n=$(grep -vc -E "^\+ |^$ts level=" "$LAB_DP_LOG")
	check "logfmt: every line is logfmt" "$n other lines: $(grep -v -E "^\+ |^$ts level=" "$LAB_DP_LOG" | head -n 2)" [ "$n" == 0 ]
fi
if start_dp --query-log --log-level warn; then
	lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +notcp >/dev/null
	lab_dotproxy_stop
	lab_rules down --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF"
	n=$(grep -vc '^+ ' "$LAB_DP_LOG")
	check "--log-level warn: no info lines (start-up, query log)" "$(cat "$LAB_DP_LOG")" [ "$n" == 0 ]
fi

# --- syslog, through a /dev/log this test owns -------------------------------------------------
SL=$LAB_DIR/syslog
mkdir -p "$SL/realdev"
cat >"$SL/listen.py" <<'EOF'
# A syslog socket for the test: every datagram on /dev/log becomes one line of the output file.
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).replace(b"\n", b" ") + b"\n")
EOF
# runs in its own mount namespace: a tmpfs on /dev with null, zero, random and urandom bound in
cat >"$SL/inner.sh" <<'EOF'
set -u
mount --bind /dev "$SL/realdev" || exit 1
mount -t tmpfs -o mode=755 dotproxy-test-dev /dev || exit 1
for d in null zero random urandom; do touch "/dev/$d" && mount --bind "$SL/realdev/$d" "/dev/$d"; done
umount "$SL/realdev"
# no /dev/log yet: --log syslog must refuse to start
"$DOTPROXY" --log syslog --mode redirect --listen 127.0.0.1@5399 >"$SL/nolog.out" 2>&1
echo $? >"$SL/nolog.rc"
"$LAB_PY" "$SL/listen.py" "$SL/lines" &
lpid=$!
echo "$lpid" >"$SL/listener.pid"
for _ in $(seq 100); do [ -S /dev/log ] && break; sleep 0.05; done
# the first upstream's name does not match its certificate: a warning; the second one answers
ip netns exec "$LAB_NS_G" "$DOTPROXY" --log syslog --query-log --mode redirect --listen 127.0.0.1@5300 \
	--policy ordered --upstream "$LAB_DOT4@853#wrong.$LAB_AUTH" --upstream "$LAB_DOT4@853#$LAB_AUTH" \
	--ca-file "$LAB_CA" --metrics 127.0.0.1:9300 >"$SL/dp.out" 2>&1 &
dpid=$!
for _ in $(seq 100); do ip netns exec "$LAB_NS_G" ss -Hlnu 'sport = :5300' | grep -q . && break; sleep 0.05; done
ip netns exec "$LAB_NS_G" dig +tries=1 +time=3 @127.0.0.1 -p 5300 "$LAB_WWW" A >"$SL/dig.out" 2>&1
# the same metrics port again: a fatal error at start
ip netns exec "$LAB_NS_G" "$DOTPROXY" --log syslog --mode redirect --listen 127.0.0.1@5301 \
	--upstream "$LAB_DOT4@853#$LAB_AUTH" --ca-file "$LAB_CA" --metrics 127.0.0.1:9300 >"$SL/dp2.out" 2>&1
echo $? >"$SL/dp2.rc"
kill -TERM "$dpid"; wait "$dpid"; echo $? >"$SL/dp.rc"
sleep 0.2
kill "$lpid"; wait "$lpid" 2>/dev/null
EOF
export SL DOTPROXY LAB_PY LAB_NS_G LAB_DOT4 LAB_AUTH LAB_CA LAB_WWW
timeout 60 unshare -m --propagation private bash "$SL/inner.sh"
# if the timeout cut it short, the listener (outside the lab's namespaces) is still ours to stop
lpid=$(cat "$SL/listener.pid" 2>/dev/null)
if [[ -n $lpid ]] && grep -q listen.py "/proc/$lpid/cmdline" 2>/dev/null; then kill "$lpid"; fi
check "syslog: no /dev/log: one error line, exit 2" "rc=$(cat "$SL/nolog.rc") $(cat "$SL/nolog.out")" \
	[ "$(cat "$SL/nolog.rc")" == 2 -a "$(cat "$SL/nolog.out")" == \
	  "dotproxy: --log syslog: /dev/log: No such file or directory (is a syslog daemon running?)" ]
check "syslog: the daemon answered through it" "$(cat "$SL/dig.out")" [ "$(dig_status <"$SL/dig.out")" == NOERROR ]
check "syslog: nothing on stderr" "$(cat "$SL/dp.out")" [ ! -s "$SL/dp.out" ]
# RFC 3164 PRI = facility * 8 + severity: daemon (3) -> info 30, warning 28, err 27
l=$(grep -E '^<30>.* dotproxy\[[0-9]+\]: dotproxy [^ ]+: redirect mode on port' "$SL/lines")
check "syslog: start-up line at daemon.info (<30>), ident dotproxy[PID]" "$(head -n 3 "$SL/lines")" [ -n "$l" ]
l=$(grep -E "^<30>.* dotproxy\[[0-9]+\]: query client=127\.0\.0\.1:[0-9]+ frontend=redirect transport=udp qname=$LAB_WWW\. qtype=A rcode=NOERROR source=upstream upstream=$LAB_DOT4@853#$LAB_AUTH " "$SL/lines")
check "syslog: the query line at daemon.info" "$(grep query "$SL/lines")" [ -n "$l" ]
l=$(grep -E "^<28>.* dotproxy\[[0-9]+\]: warning: upstream $LAB_DOT4@853#wrong\.$LAB_AUTH" "$SL/lines")
check "syslog: the failed upstream at daemon.warning (<28>)" "$(grep -v '^<30>' "$SL/lines" | head -n 3)" [ -n "$l" ]
l=$(grep -E '^<27>.* dotproxy\[[0-9]+\]: --metrics 127\.0\.0\.1:9300: cannot listen' "$SL/lines")
check "syslog: a fatal start-up error at daemon.err (<27>), exit 1" \
	"rc=$(cat "$SL/dp2.rc") $(grep -v '^<30>' "$SL/lines" | tail -n 2)" [ -n "$l" -a "$(cat "$SL/dp2.rc")" == 1 ]
check "syslog: the daemon exits 0 on SIGTERM" "rc=$(cat "$SL/dp.rc")" [ "$(cat "$SL/dp.rc")" == 0 ]

# --- bad values: one line naming the flag, exit 2 --------------------------------------------------
for bad in "--log file|--log \"file\": must be stderr or syslog" \
	"--log-level loud|--log-level \"loud\": must be error, warn, info or debug" \
	"--log-format json|--log-format \"json\": must be text or logfmt"; do
	read -ra a <<<"${bad%%|*}"
	out=$("$DOTPROXY" "${a[@]}" 2>&1)
	rc=$?
	check "${bad%%|*}: one error line, exit 2" "rc=$rc $out" [ "$rc" == 2 -a "$out" == "dotproxy: ${bad#*|}" ]
done

lab_finish
