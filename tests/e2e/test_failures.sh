#!/usr/bin/env bash
# tests/e2e/test_failures.sh: an upstream that cannot be verified is never used, and an upstream
# that goes away costs SERVFAIL within the deadline, then is used again when it is back.
#
# Wrong auth name, wrong CA, wrong SPKI pin: SERVFAIL, a TLS failure counted, and not one packet
# to port 53 out of the gateway (no plaintext fallback). A right pin works. The DoT Unbound
# killed: queries SERVFAIL within --timeout; restarted: answered again by the same dotproxy PID.
# An idle upstream connection is closed after --idle-timeout and the next query reconnects. One
# of two upstreams refusing: the other answers. An upstream whose packets are dropped: SERVFAIL at
# the deadline, then answers again once they flow.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
# every query must reach the upstream: no cache
LAB_DP_CACHE=0
lab_up

TIMEOUT_MS=2000
lab_rules up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" ||
	lab_bail "dotproxy-rules up failed"

# refused DESC UPSTREAM [EXTRA ARGS...]: dotproxy with an upstream that must fail verification.
refused() {
	local desc=$1 upstream=$2; shift 2
	local args n
	mapfile -t args < <(lab_dotproxy_args "$upstream")
	if ! lab_dotproxy_start --mode tproxy --timeout "$TIMEOUT_MS" "${args[@]}" "$@"; then
		fail "$desc: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG")"
		return
	fi
	lab_wan53_reset
	lab_expect_status "$desc: UDP/IPv4 query gets SERVFAIL" c "$LAB_DECOY4" SERVFAIL +notcp
	lab_expect_status "$desc: TCP/IPv6 query gets SERVFAIL" c "$LAB_DECOY6" SERVFAIL +tcp
	n=$(lab_metric dotproxy_tls_failures_total)
	check "$desc: the TLS failure is counted" "dotproxy_tls_failures_total=${n:-absent}" [ "${n:-0}" -ge 1 ]
	n=$(lab_metric dotproxy_tls_handshakes_total)
	check "$desc: no handshake completed" "dotproxy_tls_handshakes_total=${n:-absent}" [ "${n:-x}" == 0 ]
	lab_expect_wan53_zero "$desc: no plaintext fallback"
	lab_dotproxy_stop
}

refused "wrong auth name" "$LAB_DOT4@853#wrong.dotproxy.test"
refused "wrong CA" "$LAB_DOT4@853#$LAB_AUTH" --ca-file "$LAB_CA_OTHER"
refused "wrong SPKI pin (#name^pin)" "$LAB_DOT4@853#$LAB_AUTH^$LAB_PIN_WRONG"
refused "wrong SPKI pin (--pin, IPv6 upstream)" "$LAB_DOT6@853#$LAB_AUTH" --pin "$LAB_PIN_WRONG"

# the right pin, both spellings
for spec in "$LAB_DOT4@853#$LAB_AUTH^$LAB_PIN" "--pin"; do
	if [[ $spec == --pin ]]; then
		mapfile -t args < <(lab_dotproxy_args "$LAB_DOT6@853#$LAB_AUTH")
		args+=(--pin "$LAB_PIN")
		desc="right SPKI pin (--pin, IPv6 upstream)"
	else
		mapfile -t args < <(lab_dotproxy_args "$spec")
		desc="right SPKI pin (#name^pin)"
	fi
	if lab_dotproxy_start --mode tproxy "${args[@]}"; then
		lab_expect_www "$desc: answered" c "$LAB_DECOY4" A
		lab_dotproxy_stop
	else
		fail "$desc: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG")"
	fi
done

# --- an idle upstream connection is closed, and the next query opens a new one -----------------
mapfile -t args < <(lab_dotproxy_args)
if lab_dotproxy_start --mode tproxy --idle-timeout 500 "${args[@]}"; then
	lab_expect_www "idle timeout 500 ms: first query answered" c "$LAB_DECOY4" A
	sleep 1.5
	lab_expect_www "idle timeout 500 ms: answered again after 1.5 s idle" c "$LAB_DECOY4" A
	n=$(lab_metric dotproxy_tls_handshakes_total)
	check "idle timeout 500 ms: the idle connection was closed and a new one opened" \
		"dotproxy_tls_handshakes_total=${n:-absent}, want 2" [ "${n:-x}" == 2 ]
	diag "dotproxy_tls_resumed_total=$(lab_metric dotproxy_tls_resumed_total)"
	lab_dotproxy_stop
else
	fail "idle timeout: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG")"
fi

# --- one of two upstreams dead: the other answers -----------------------------------------------
if lab_dotproxy_start --mode tproxy --timeout "$TIMEOUT_MS" --port "$LAB_PORT" --ca-file "$LAB_CA" \
	--metrics "$LAB_METRICS" --cache-size 0 --upstream "$LAB_DOT4@854#$LAB_AUTH" --upstream "$LAB_DOT4@853#$LAB_AUTH"; then
	good=0
	for ((i = 0; i < 6; i++)); do
		got=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +short)
		[[ $got == "$LAB_WWW_A" ]] && good=$((good + 1))
	done
	check "first of two upstreams refuses connections: 6 of 6 queries answered by the second" "$good of 6" \
		[ "$good" == 6 ]
	lab_dotproxy_stop
else
	fail "two upstreams: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG")"
fi

# --- an upstream gone silent (its packets dropped): SERVFAIL at the deadline, never a hang -------
mapfile -t args < <(lab_dotproxy_args)
if lab_dotproxy_start --mode tproxy --timeout "$TIMEOUT_MS" "${args[@]}"; then
	lab_expect_www "silent upstream: answered before the drop" c "$LAB_DECOY4" A
	lab_u iptables -w -I INPUT -p tcp --dport 853 -j DROP
	for opt in +notcp +tcp; do
		t0=$(lab_ms)
		st=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A "$opt" +time=8 | dig_status)
		ms=$(($(lab_ms) - t0))
		check "silent upstream: $opt query gets SERVFAIL at the deadline ($ms ms, --timeout $TIMEOUT_MS)" \
			"status=${st:-none} after $ms ms" [ "$st" == SERVFAIL -a "$ms" -le $((TIMEOUT_MS + 500)) ]
	done
	# half-way through the first query its connection is found silent and it is re-sent on a
	# new one (which cannot connect): at least one deadline, and the re-send, are counted
	n=$(lab_metric dotproxy_timeouts_total)
	h=$(lab_metric dotproxy_hedged_total)
	check "silent upstream: the deadline and the re-send are counted" \
		"dotproxy_timeouts_total=${n:-absent} dotproxy_hedged_total=${h:-absent}" [ "${n:-0}" -ge 1 -a "${h:-0}" -ge 1 ]
	lab_u iptables -w -D INPUT -p tcp --dport 853 -j DROP
	t0=$(lab_ms)
	for ((i = 0; i < 20; i++)); do   # at most 20 tries and 20 s: TCP retransmits back off
		got=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +short +time=3)
		[[ $got == "$LAB_WWW_A" ]] && break
		(($(lab_ms) - t0 > 20000)) && break
		sleep 0.5
	done
	check "silent upstream: answered again once its packets flow ($((i + 1)) tries, $(($(lab_ms) - t0)) ms)" \
		"last answer: ${got:-none}" [ "$got" == "$LAB_WWW_A" ]
	lab_dotproxy_stop
else
	fail "silent upstream: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG")"
fi

# --- the upstream killed and restarted ---------------------------------------------------------
up_series="dotproxy_upstream_up{upstream=\"$LAB_DOT4@853#$LAB_AUTH\"}"
mapfile -t args < <(lab_dotproxy_args)
lab_dotproxy_start --mode tproxy --timeout "$TIMEOUT_MS" "${args[@]}" ||
	lab_bail "dotproxy did not start: $(tail -n 3 "$LAB_DP_LOG")"
pid=$LAB_DP_PID
lab_wan53_reset
lab_expect_www "upstream up: answered" c "$LAB_DECOY4" A
n=$(lab_metric "$up_series")
check "upstream up: $up_series is 1" "${n:-absent}" [ "${n:-x}" == 1 ]

lab_unbound_stop dot
diag "killed the DoT Unbound; dotproxy --timeout $TIMEOUT_MS"
whats=("UDP/IPv4" "TCP/IPv4" "UDP/IPv6" "TCP/IPv6" "UDP/IPv4 again")
servers=("$LAB_DECOY4" "$LAB_DECOY4" "$LAB_DECOY6" "$LAB_DECOY6" "$LAB_DECOY4")
opts=(+notcp +tcp +notcp +tcp +notcp)
for i in "${!whats[@]}"; do
	what=${whats[i]} server=${servers[i]} opt=${opts[i]}
	t0=$(lab_ms)
	out=$(lab_dig c "@$server" "$LAB_WWW" A "$opt" +time=5)
	ms=$(($(lab_ms) - t0))
	st=$(dig_status <<<"$out")
	if [[ $st == SERVFAIL && $ms -le $((TIMEOUT_MS + 500)) ]]; then
		ok "upstream down: $what query gets SERVFAIL in $ms ms (deadline $TIMEOUT_MS ms)"
	else
		fail "upstream down: $what query gets SERVFAIL within the deadline" \
			"status=${st:-none} after $ms ms (deadline $TIMEOUT_MS ms)"
	fi
done
n=$(lab_metric "$up_series")
check "upstream down: $up_series is 0" "${n:-absent}" [ "${n:-x}" == 0 ]
# a stream of queries through a longer outage: each fails fast, and the upstream is retried
# only as its backoff allows (not once per query)
nq=0 nfast=0
t0=$(lab_ms)
while (($(lab_ms) - t0 < 1500 && nq < 40)); do
	t1=$(lab_ms)
	st=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +time=5 | dig_status)
	nq=$((nq + 1))
	[[ $st == SERVFAIL && $(($(lab_ms) - t1)) -le 500 ]] && nfast=$((nfast + 1))
	sleep 0.05
done
check "upstream down: all $nq queries of a 1.5 s outage get SERVFAIL fast" "fast=$nfast of $nq" [ "$nfast" == "$nq" ]
fails=$(lab_metric dotproxy_tls_failures_total)
check "upstream down: backoff holds off reconnects ($fails attempts for $((nq + ${#whats[@]})) queries)" \
	"failures=${fails:-absent} queries=$((nq + ${#whats[@]}))" [ "${fails:-99}" -ge 2 -a "${fails:-99}" -le 8 ]

lab_unbound_start dot || lab_bail "could not restart the DoT Unbound"
t0=$(lab_ms)
got=
for ((i = 0; i < 30; i++)); do   # at most 30 tries and 20 s
	got=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +short +time=2)
	[[ $got == "$LAB_WWW_A" ]] && break
	(($(lab_ms) - t0 > 20000)) && break
	sleep 0.5
done
ms=$(($(lab_ms) - t0))
check "upstream back: answered again ($((i + 1)) tries, $ms ms after the restart)" "last answer: ${got:-none}" \
	[ "$got" == "$LAB_WWW_A" ]
lab_expect_www "upstream back: UDP/IPv6 answered" c "$LAB_DECOY6" AAAA
lab_expect_www "upstream back: TCP/IPv4 answered" c "$LAB_DECOY4" A +tcp
alive=no
lab_dotproxy_alive && alive=yes
check "upstream back: by the same dotproxy process (pid $pid)" "LAB_DP_PID=$LAB_DP_PID alive=$alive" \
	[ "$LAB_DP_PID" == "$pid" -a $alive == yes ]
n=$(lab_metric "$up_series")
check "upstream back: $up_series is 1" "${n:-absent}" [ "${n:-x}" == 1 ]
# the outage is told once, not once per failed attempt, and the recovery is told
fails=$(lab_metric dotproxy_tls_failures_total)
warns=$(grep -c "upstream $LAB_DOT4@853#$LAB_AUTH: connect:" "$LAB_DP_LOG")
check "upstream down and back: $fails failed connects, logged once as a warning" \
	"failures=${fails:-absent} warning lines=$warns" [ "${fails:-0}" -ge 2 -a "$warns" == 1 ]

n=$(grep -c "upstream $LAB_DOT4@853#$LAB_AUTH: usable again" "$LAB_DP_LOG")
check "upstream back: the log says it is usable again" "lines=$n" [ "$n" == 1 ]
lab_expect_wan53_zero "upstream down and back: nothing in plaintext"
lab_dotproxy_stop
check "dotproxy exits 0 on SIGTERM" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
lab_finish
