#!/usr/bin/env bash
# tests/e2e/test_nfqueue.sh: what is particular to --mode nfqueue (the interception itself, in
# every scope and backend, is in test_intercept.sh; fail-closed with the daemon down in
# test_failclosed.sh).
#
#   - local queries carry the sender's UID into the metrics
#   - an answer too big for the LAN's MTU comes back truncated over UDP, whole over TCP (TPROXY)
#   - a query in IP fragments is reassembled by the kernel and answered over DoT
#   - a UDP checksum error, non-DNS payloads and malformed DNS are dropped and counted; the daemon
#     stays up and answers the next query
#   - --fail-open rules: with the daemon killed, DNS flows in plaintext (and without it, it stops)
#   - a full queue: dropped by default, let through with the daemon's --fail-open; metrics say so
#   - SIGTERM: exit 0, and the rules the daemon did not add are still there
#   - 10,000 queries from dnsperf through the queue, none lost
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up
command -v dnsperf >/dev/null || lab_bail "dnsperf is missing (make installs it)"

RULES=(--mode nfqueue --scope both --in-interface "$LAB_LAN_IF" --port "$LAB_PORT")
mapfile -t ARGS < <(lab_dotproxy_args)

# nfq_start [FLAGS...]: the daemon in nfqueue mode with the lab's upstream; bail if it fails.
nfq_start() {
	lab_dotproxy_start --mode nfqueue "$@" "${ARGS[@]}" ||
		lab_bail "dotproxy --mode nfqueue $* did not start: $(tail -n 3 "$LAB_DP_LOG")"
}

lab_rules up "${RULES[@]}" || lab_bail "dotproxy-rules up ${RULES[*]} failed"
nfq_start
pid=$LAB_DP_PID
lab_wan53_reset

# --- UID labels ----------------------------------------------------------------------------------
out=$(lab_g setpriv --reuid 4242 --regid 4242 --clear-groups dig +tries=1 +time=3 "@$LAB_DECOY4" "$LAB_WWW" A +short 2>&1)
check "uid 4242 on the gateway: answered over DoT" "$out" [ "$out" == "$LAB_WWW_A" ]
n=$(lab_metric0 'dotproxy_nfq_queries_total{uid="4242"}')
check "metrics count it under uid=\"4242\"" "dotproxy_nfq_queries_total{uid=\"4242\"}=$n" [ "$n" == 1 ]
lab_expect_www "a forwarded query from the LAN client" c "$LAB_DECOY4" A +notcp
n=$(lab_metric0 'dotproxy_nfq_queries_total{uid="none"}')
check "metrics count the forwarded one under uid=\"none\"" "dotproxy_nfq_queries_total{uid=\"none\"}=$n" [ "$n" == 1 ]

# --- answers bigger than a packet, queries bigger than a packet -----------------------------------
t0=$(lab_metric0 dotproxy_truncated_total)
want=$(lab_txt dot "$LAB_BIG" | sort | paste -sd,)
for server in "$LAB_DECOY4" "$LAB_DECOY6"; do
	out=$(lab_dig c "@$server" "$LAB_BIG" TXT +bufsize=4096)
	got=$(dig_answers TXT <<<"$out" | paste -sd,)
	proto=$(dig_proto <<<"$out") srv=$(dig_server <<<"$out")
	tc=$(grep -c 'Truncated, retrying in TCP' <<<"$out")
	check "$LAB_BIG TXT (> MTU) via $server with EDNS 4096: truncated over UDP, whole over TCP, from DoT" \
		"proto=$proto truncated=$tc server=$srv answer=${got:0:60}..." \
		[ "$got" == "$want" -a "$proto" == TCP -a "$srv" == "$server#53" -a "$tc" == 1 ]
done
t1=$(lab_metric0 dotproxy_truncated_total)
check "both truncations counted" "dotproxy_truncated_total went from $t0 to $t1" [ $((t1 - t0)) == 2 ]
out=$(lab_dig c "@$LAB_DECOY4" "$LAB_MID" TXT +bufsize=4096)
got=$(dig_answers TXT <<<"$out" | paste -sd,)
check "$LAB_MID TXT (fits the MTU) comes whole over UDP" "proto=$(dig_proto <<<"$out")" \
	[ "$got" == "$(lab_txt dot "$LAB_MID" | sort | paste -sd,)" -a "$(dig_proto <<<"$out")" == UDP ]

f0=$(lab_metric0 'dotproxy_nfq_dropped_total{reason="fragment"}')
for server in "$LAB_DECOY4" "$LAB_DECOY6"; do
	out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" padded "$server" 3000 2>&1)
	check "a 3000-octet query to $server (IP fragments on a 1500 MTU) is answered over DoT" "$out" \
		[ "$out" == "size=3000 id=ok rcode=NOERROR answers=$LAB_WWW_A" ]
done
f1=$(lab_metric0 'dotproxy_nfq_dropped_total{reason="fragment"}')
check "the kernel reassembled them: no fragment reached the queue" "fragment drops $f0 -> $f1" [ "$f0" == "$f1" ]

# --- hostile input ---------------------------------------------------------------------------------
m0=$(lab_metric0 'dotproxy_nfq_dropped_total{reason="malformed"}')
out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" badsum "$LAB_DECOY4" 2>&1)
check "a query with a wrong UDP checksum gets no answer" "$out" [ "$out" == "badsum sent=1 replies=0" ]
m1=$(lab_metric0 'dotproxy_nfq_dropped_total{reason="malformed"}')
check "and is counted as malformed" "dotproxy_nfq_dropped_total{reason=\"malformed\"} $m0 -> $m1" [ $((m1 - m0)) == 1 ]

d0=$(lab_metric0 dotproxy_malformed_total)
out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" garbage "$LAB_DECOY4" 7 100 2>&1)
line=$(grep '^short ' <<<"$out")
check "12 UDP payloads shorter than a DNS header: dropped" "${line:-$out}" [ "$line" == "short sent=12 replies=0" ]
bad=$(grep '^case ' <<<"$out" | grep -v -c -E 'reply=(none|FORMERR)$')
ncase=$(grep -c '^case ' <<<"$out")
check "$ncase malformed DNS queries: each dropped or FORMERR" "$(grep '^case ' <<<"$out" | paste -sd' ')" \
	[ "$ncase" -ge 12 -a "$bad" == 0 ]
d1=$(lab_metric0 dotproxy_malformed_total)
check "they are counted" "dotproxy_malformed_total $d0 -> $d1" [ $((d1 - d0)) -ge $((12 + ncase)) ]
alive=no
lab_dotproxy_alive && [[ $LAB_DP_PID == "$pid" ]] && alive=yes
check "dotproxy (pid $pid) is still running after the garbage" "alive=$alive" [ $alive == yes ]
lab_expect_www "after the garbage: UDP/IPv4 answered" c "$LAB_DECOY4" A +notcp
lab_expect_www "after the garbage: UDP/IPv6 answered" c "$LAB_DECOY6" AAAA +notcp
lab_expect_wan53_zero "everything above: nothing in plaintext"

# --- a clean stop removes nothing it did not add --------------------------------------------------
before=$(lab_g iptables-save -t raw | grep -c NFQUEUE)
lab_dotproxy_stop
check "SIGTERM: dotproxy exits 0" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
after=$(lab_g iptables-save -t raw | grep -c NFQUEUE)
check "the queue rules are still installed after it stops" "NFQUEUE rules: $before before, $after after" \
	[ "$before" -ge 1 -a "$before" == "$after" ]

# --- fail-open rules: the daemon killed lets DNS through in plaintext -----------------------------
lab_rules up "${RULES[@]}" --fail-open || lab_bail "dotproxy-rules up --fail-open failed"
nfq_start
lab_expect_www "--fail-open rules, daemon up: UDP/IPv4 answered over DoT" c "$LAB_DECOY4" A +notcp
kill -KILL "$LAB_DP_PID"
wait "$LAB_DP_PID" 2>/dev/null
LAB_DP_PID=
lab_wan53_reset
out=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +notcp +short)
check "--fail-open rules, daemon killed: UDP flows to the decoy in plaintext" "answer=$out" [ "$out" == "$LAB_DECOY_WWW_A" ]
n=$(lab_wan53_count)
check "... and the WAN counter saw it leave" "wan53=$n" [ "$n" -ge 1 ]
lab_rules up "${RULES[@]}" || lab_bail "dotproxy-rules up failed"
out=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +notcp +time=1)
check "default rules, daemon down: no answer at all" "$(tr '\n' ' ' <<<"$out" | cut -c1-160)" \
	[ -z "$(dig_answers A <<<"$out")" -a -z "$(dig_status <<<"$out")" ]

# --- a full queue ------------------------------------------------------------------------------------
# The daemon is stopped (SIGSTOP) with a queue of 2: the third and later queries overflow.
# queue_burst DESC: 6 UDP queries from 6 sockets at once; prints how many the decoy answered.
queue_burst() {
	lab_c "$LAB_PY" - "$LAB_DECOY4" <<-'EOF'
		import socket, struct, select, sys, time
		srv = sys.argv[1]
		socks = []
		for i in range(6):
		    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		    q = struct.pack("!6H", 0x6000 + i, 0x0100, 1, 0, 0, 0) + b"\x03www\x08dotproxy\x04test\x00" + struct.pack("!HH", 1, 1)
		    s.sendto(q, (srv, 53))
		    socks.append(s)
		decoy = 0
		deadline = time.monotonic() + 1.5
		pending = list(socks)
		while pending and time.monotonic() < deadline:
		    r, _, _ = select.select(pending, [], [], max(0, deadline - time.monotonic()))
		    for s in r:
		        data = s.recv(4096)
		        decoy += data[-4:] == bytes([203, 0, 113, 66])
		        pending.remove(s)
		print(decoy)
	EOF
}
for mode in closed open; do
	flags=(--queue-len 2)
	[[ $mode == open ]] && flags+=(--fail-open)
	nfq_start "${flags[@]}"
	k0=$(lab_metric0 'dotproxy_nfq_kernel_dropped_total{reason="queue_full"}')
	kill -STOP "$LAB_DP_PID"
	lab_wan53_reset
	n=$(queue_burst)
	kill -CONT "$LAB_DP_PID"
	w=$(lab_wan53_count)
	k1=$(lab_metric0 'dotproxy_nfq_kernel_dropped_total{reason="queue_full"}')
	fo=$(lab_metric0 dotproxy_nfq_fail_open)
	if [[ $mode == closed ]]; then
		check "queue full (default): the overflow is dropped, none reaches the decoy" "decoy answers=$n wan53=$w" [ "$n" == 0 -a "$w" == 0 ]
		check "queue full (default): the kernel's drops show in the metrics" "queue_full $k0 -> $k1, fail_open=$fo" \
			[ $((k1 - k0)) -ge 4 -a "$fo" == 0 ]
	else
		check "queue full with --fail-open: the overflow goes to the decoy in plaintext" "decoy answers=$n wan53=$w" \
			[ "$n" -ge 4 -a "$w" -ge 4 ]
		check "queue full with --fail-open: metrics say fail-open, and nothing was dropped" "queue_full $k0 -> $k1, fail_open=$fo" \
			[ "$k1" == "$k0" -a "$fo" == 1 ]
	fi
	lab_expect_www "queue full ($mode), daemon resumed: answered over DoT" c "$LAB_DECOY4" A +notcp
	lab_dotproxy_stop
done

# --- load ------------------------------------------------------------------------------------------
nfq_start
f=$LAB_DIR/perf.txt
for ((i = 0; i < 10000; i++)); do
	if ((i % 2)); then echo "$LAB_WWW A"; else echo "nx$i.dotproxy.test A"; fi
done >"$f"
lab_wan53_reset
out=$(lab_c timeout 90 dnsperf -s "$LAB_DECOY4" -p 53 -d "$f" -n 1 -l 60 -t 5 -c 4 -q 100 2>&1)
diag "dnsperf: $(grep -E 'Queries per second|Average Latency' <<<"$out" | tr -s ' ' | paste -sd';')"
ndone=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
lost=$(awk '/Queries lost:/ { print $3 }' <<<"$out")
codes=$(sed -n 's/.*Response codes: *//p' <<<"$out" | sed 's/ ([0-9.%]*)//g')
check "dnsperf: 10000 queries through the queue, all completed, none lost" "completed=${ndone:-?} lost=${lost:-?}" \
	[ "${ndone:-x}" == 10000 -a "${lost:-x}" == 0 ]
check "dnsperf: rcodes are the zone's" "${codes:-none}" [ "$codes" == "NOERROR 5000, NXDOMAIN 5000" ]
lab_expect_wan53_zero "dnsperf: nothing in plaintext"
n=$(lab_metric0 dotproxy_nfq_enobufs_total)
diag "socket overflows during the load: $n"
lab_dotproxy_stop
check "dotproxy exits 0 on SIGTERM after the load" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
lab_rules down
lab_finish
