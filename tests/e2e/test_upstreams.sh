#!/usr/bin/env bash
# tests/e2e/test_upstreams.sh: several upstreams, their failures and what the cache and the rate
# limit do, as a LAN client behind the gateway sees it (tproxy mode, gateway scope).
#
#   1. two upstreams, the one carrying the traffic killed: no client query fails; it is marked
#      down, the other answers; restarted, a background probe finds it usable again (no restart)
#   2. two upstreams, the busy one blackholed (its packets dropped): every query is still answered
#      within the deadline (re-sent half-way, traffic moved)
#   3. an upstream that closes idle connections after 2 s: every query answered, reconnects resume
#      their TLS session, and dotproxy learns to close first
#   4. every upstream down: SERVFAIL at once for a name not cached, an expired answer served with
#      a 30 s TTL (--serve-stale), nothing in plaintext; back without a restart
#   5. the cache: 5 asks of one name, and 2 of a name that does not exist, cost the upstream one
#      TLS query each (counted by the upstream Unbound itself)
#   6. --idle-timeout 500: the reconnect resumes the TLS session (seen by dotproxy and the upstream)
#   7. --ratelimit 5: a burst from one client address is REFUSED past 2 s worth; another address
#      of the same host is answered
#   8. the upstream receives queries padded to 128-octet blocks carrying edns-tcp-keepalive, and
#      answers padded itself; the client gets neither option (the upstream's dnstap log)
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

TIMEOUT_MS=2000
U1="$LAB_DOT4@853#$LAB_AUTH"      # the lab's DoT Unbound
U2="$LAB_DOT2_4@853#$LAB_AUTH"    # a second one, statistics through unbound-control
U3="$LAB_DOT3_4@853#$LAB_AUTH"    # a third one that closes idle connections after 2 s, with dnstap
CLIENT2=192.0.2.3                 # a second address of the client host (rate limit)

lab_unbound_extra dot2 "$LAB_DOT2_4" "$LAB_DOT2_6" || lab_bail "the second DoT Unbound did not start"
lab_spawn u "$LAB_DIR/dnstap.out" "$LAB_PY" "$LAB_CONF_DIR/dnstap.py" "$LAB_DIR/dnstap.sock" 300
for ((i = 0; i < 100; i++)); do
	grep -q '^listening' "$LAB_DIR/dnstap.out" 2>/dev/null && break
	sleep 0.05
done
grep -q '^listening' "$LAB_DIR/dnstap.out" || lab_bail "the dnstap collector did not start: $(cat "$LAB_DIR/dnstap.out")"
lab_unbound_extra idle "$LAB_DOT3_4" "$LAB_DOT3_6" 'tcp-idle-timeout: 2000' \
	'dnstap:' 'dnstap-enable: yes' "dnstap-socket-path: \"$LAB_DIR/dnstap.sock\"" \
	'dnstap-log-client-query-messages: yes' 'dnstap-log-client-response-messages: yes' ||
	lab_bail "the idle-closing DoT Unbound did not start"
ip -n "$LAB_NS_C" addr add "$CLIENT2/24" dev eth0 || lab_bail "could not add $CLIENT2 to the client"
lab_rules up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" ||
	lab_bail "dotproxy-rules up failed"

# dp DESC ARGS...: start dotproxy (tproxy, the lab's CA, metrics) with ARGS; fail DESC if it does not.
dp() {
	local desc=$1; shift
	# shellcheck disable=SC2086  # flags for a run by hand
	lab_dotproxy_start --mode tproxy --port "$LAB_PORT" --ca-file "$LAB_CA" --metrics "$LAB_METRICS" "$@" \
		${DOTPROXY_EXTRA:-} && return 0
	fail "$desc: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG")"
	return 1
}
# ask ARGS...: dig from the client, to the decoy's address (intercepted), one try.
ask() { lab_dig c "@$LAB_DECOY4" "$@"; }
# per-upstream series
m_up() { lab_metric "dotproxy_upstream_up{upstream=\"$1\"}"; }
m_answers() { lab_metric0 "dotproxy_upstream_answers_total{upstream=\"$1\"}"; }
m_failures() { lab_metric0 "dotproxy_upstream_failures_total{upstream=\"$1\"}"; }
m_conns() { lab_metric "dotproxy_upstream_connections{upstream=\"$1\"}"; }
# dig_ttl TYPE: the TTL of the first TYPE record of the answer section (dig output on stdin).
dig_ttl() { awk -v t="$1" '/^;; ANSWER SECTION:/ { a = 1; next } /^$/ { a = 0 } a && $4 == t { print $2; exit }'; }
# wait_up LABEL SECS: until LABEL's upstream_up is 1; prints the milliseconds it took, or "never".
wait_up() {
	local t0 n
	t0=$(lab_ms)
	while (($(lab_ms) - t0 < $2 * 1000)); do
		n=$(m_up "$1")
		[[ $n == 1 ]] && { echo $(($(lab_ms) - t0)); return 0; }
		sleep 0.1
	done
	echo never
	return 1
}
# www_series N [DIG ARGS...]: N queries for www A; prints "good max_ms bad-list" where good counts
# answers NOERROR with the DoT record within TIMEOUT_MS and bad-list says what the others got.
www_series() {
	local n=$1 i t0 ms out st ans good=0 max=0 bad=''; shift
	for ((i = 0; i < n; i++)); do
		t0=$(lab_ms)
		out=$(ask "$LAB_WWW" A +time=4 "$@")
		ms=$(($(lab_ms) - t0))
		st=$(dig_status <<<"$out")
		ans=$(dig_answers A <<<"$out" | paste -sd, -)
		((ms > max)) && max=$ms
		if [[ $st == NOERROR && $ans == "$LAB_WWW_A" && $ms -le $TIMEOUT_MS ]]; then
			good=$((good + 1))
		else
			bad+="#$((i + 1)):${st:-timeout}/${ans:-none}/${ms}ms,"
		fi
	done
	echo "$good $max ${bad:-none}"
}
# sleep_ms MS: sleep MS milliseconds (nothing if MS <= 0).
sleep_ms() { (($1 > 0)) && sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; return 0; }
# the_busy_one: which of U1/U2 answered more so far ("dot U1" or "dot2 U2").
the_busy_one() {
	if (($(m_answers "$U1") >= $(m_answers "$U2"))); then echo "dot $U1 $LAB_DOT4"; else echo "dot2 $U2 $LAB_DOT2_4"; fi
}
# ub_start WHO: start the lab's DoT Unbound (dot) or an extra one again, and wait until it listens
# on its own address (others listen on port 853 too).
ub_start() {
	if [[ $1 != dot ]]; then lab_unbound_extra_start "$1"; return; fi
	lab_unbound_start dot && lab_wait_listen "$LAB_NS_U" "$LAB_DOT4" 853 10 "$LAB_UB_PID_dot"
}

# --- 1. two upstreams, the busy one killed and restarted ----------------------------------------
s1() {
	local d="two upstreams, one killed" good max bad who label other n a0 ms pid alive
	dp "$d" --cache-size 0 --timeout "$TIMEOUT_MS" --upstream "$U1" --upstream "$U2" || return
	pid=$LAB_DP_PID
	read -r good max bad < <(www_series 6)
	check "$d: both up, 6 of 6 answered (max $max ms)" "$bad" [ "$good" == 6 ]
	read -r who label _ < <(the_busy_one)
	if [[ $who == dot ]]; then other=$U2; else other=$U1; fi
	a0=$(m_answers "$other")
	lab_unbound_stop "$who"
	diag "killed $label (it had answered $(m_answers "$label") of 6)"
	read -r good max bad < <(www_series 30)
	check "$d: 30 of 30 queries after the kill answered by the other within $TIMEOUT_MS ms (max $max ms)" \
		"$bad" [ "$good" == 30 ]
	n=$(m_up "$label")
	check "$d: upstream_up of the killed one is 0" "dotproxy_upstream_up{upstream=\"$label\"}=${n:-absent}" \
		[ "${n:-x}" == 0 ]
	n=$(m_answers "$other")
	check "$d: the other's answers grew by >= 30" "dotproxy_upstream_answers_total{upstream=\"$other\"} $a0 -> $n" \
		[ $((n - a0)) -ge 30 ]
	ub_start "$who" || lab_bail "could not restart unbound $who"
	ms=$(wait_up "$label" 8)
	check "$d: restarted, upstream_up is 1 again after $ms ms (background probe, backoff <= 5 s +25%)" \
		"upstream_up=$(m_up "$label")" [ "$ms" != never ]
	n=$(grep -c "upstream $label: usable again" "$LAB_DP_LOG")
	check "$d: the log says it is usable again" "$n lines" [ "$n" == 1 ]
	read -r good max bad < <(www_series 3)
	alive=no
	lab_dotproxy_alive && alive=yes
	check "$d: answered after the restart, by the same dotproxy (pid $pid)" "$bad pid=$LAB_DP_PID alive=$alive" \
		[ "$good" == 3 -a "$LAB_DP_PID" == "$pid" -a "$alive" == yes ]
	lab_dotproxy_stop
}

# --- 2. two upstreams, the busy one blackholed -----------------------------------------------
s2() {
	local d="two upstreams, one blackholed" good max bad who label addr h0 h f0 f
	dp "$d" --cache-size 0 --timeout "$TIMEOUT_MS" --upstream "$U1" --upstream "$U2" || return
	read -r good max bad < <(www_series 6)
	check "$d: both up, 6 of 6 answered (max $max ms)" "$bad" [ "$good" == 6 ]
	read -r who label addr < <(the_busy_one)
	h0=$(lab_metric0 dotproxy_hedged_total) f0=$(lab_metric0 dotproxy_tls_failures_total)
	lab_u iptables -w -I INPUT -p tcp --dport 853 -d "$addr" -j DROP
	diag "dropping every packet to $addr port 853 (it had answered $(m_answers "$label") of 6)"
	read -r good max bad < <(www_series 10)
	check "$d: 10 of 10 queries answered NOERROR within the $TIMEOUT_MS ms deadline (max $max ms)" \
		"$bad" [ "$good" == 10 ]
	h=$(lab_metric0 dotproxy_hedged_total) f=$(lab_metric0 dotproxy_tls_failures_total)
	check "$d: the re-sends or the upstream's failure are counted" \
		"dotproxy_hedged_total $h0 -> $h, dotproxy_tls_failures_total $f0 -> $f" [ $((h - h0 + f - f0)) -ge 1 ]
	lab_u iptables -w -D INPUT -p tcp --dport 853 -d "$addr" -j DROP
	lab_dotproxy_stop
}

# --- 3. an upstream that closes idle connections after 2 s ------------------------------------
s3() {
	local d="upstream closing idle connections after 2 s" good max bad all=0 seen='' n r c t f
	dp "$d" --cache-size 0 --upstream "$U3" || return
	read -r good max bad < <(www_series 1)
	all=$((all + good)) seen+="1: $bad; "
	sleep 3
	read -r good max bad < <(www_series 1)
	t=$(lab_ms)
	all=$((all + good)) seen+="2: $bad; "
	# the server closed the first connection after 2 s idle: this one dotproxy closes itself, first
	sleep_ms 1850
	c=$(m_conns "$U3")
	check "$d: learned: dotproxy closes its idle connection before the server's 2 s (none open at $(($(lab_ms) - t)) ms)" \
		"dotproxy_upstream_connections{upstream=\"$U3\"}=${c:-absent}" [ "${c:-x}" == 0 ]
	sleep_ms $((3000 - ($(lab_ms) - t)))
	read -r good max bad < <(www_series 1)
	all=$((all + good)) seen+="3: $bad"
	check "$d: 3 queries 3 s apart all answered" "$seen" [ "$all" == 3 ]
	n=$(lab_metric0 dotproxy_tls_handshakes_total) r=$(lab_metric0 dotproxy_tls_resumed_total)
	check "$d: $n handshakes (<= 3), $r resumed (>= 1)" "handshakes=$n resumed=$r" [ "$n" -le 3 -a "$r" -ge 1 ]
	n=$(m_up "$U3") f=$(m_failures "$U3")
	check "$d: an idle close is no failure: upstream_up 1, failures 0" "up=${n:-absent} failures=$f" \
		[ "${n:-x}" == 1 -a "$f" == 0 ]
	lab_dotproxy_stop
}

# --- 4. every upstream down: SERVFAIL at once, or a stale answer; then back -------------------
s4() {
	local d="all upstreams down" out st ans ttl ms t0 n m1 m2
	dp "$d" --timeout "$TIMEOUT_MS" --serve-stale 3600 --upstream "$U1" --upstream "$U2" || return
	out=$(ask "$LAB_SHORT" A)
	ans=$(dig_answers A <<<"$out") ttl=$(dig_ttl A <<<"$out")
	check "$d: $LAB_SHORT answered before (TTL $ttl)" "answer=${ans:-none} ttl=${ttl:-none}" \
		[ "$ans" == "$LAB_SHORT_A" -a "${ttl:-99}" -le "$LAB_SHORT_TTL" ]
	lab_expect_www "$d: www answered before (cached for 300 s)" c "$LAB_DECOY4" A
	sleep $((LAB_SHORT_TTL + 1))    # $LAB_SHORT has expired in the cache
	lab_unbound_stop dot
	lab_unbound_stop dot2
	lab_wan53_reset
	diag "killed both DoT Unbounds"
	for i in 1 2; do
		t0=$(lab_ms)
		st=$(ask "nx-down$i.dotproxy.test" A +time=4 | dig_status)
		ms=$(($(lab_ms) - t0))
		if ((i == 1)); then
			check "$d: a name not cached gets SERVFAIL within the deadline ($ms ms)" "status=${st:-timeout} after $ms ms" \
				[ "$st" == SERVFAIL -a "$ms" -le "$TIMEOUT_MS" ]
		else
			check "$d: and once both are known down, at once ($ms ms)" "status=${st:-timeout} after $ms ms" \
				[ "$st" == SERVFAIL -a "$ms" -le 500 ]
		fi
	done
	m1=$(m_up "$U1") m2=$(m_up "$U2")
	check "$d: upstream_up is 0 for both" "$U1=${m1:-absent} $U2=${m2:-absent}" [ "${m1:-x}${m2:-x}" == 00 ]
	t0=$(lab_ms)
	out=$(ask "$LAB_SHORT" A +time=4)
	ms=$(($(lab_ms) - t0))
	st=$(dig_status <<<"$out") ans=$(dig_answers A <<<"$out") ttl=$(dig_ttl A <<<"$out")
	check "$d: --serve-stale: the expired $LAB_SHORT is served with TTL 30 ($ms ms)" \
		"status=${st:-timeout} answer=${ans:-none} ttl=${ttl:-none} after $ms ms" \
		[ "$st" == NOERROR -a "$ans" == "$LAB_SHORT_A" -a "${ttl:-x}" == 30 -a "$ms" -le "$TIMEOUT_MS" ]
	out=$(ask "$LAB_WWW" A)
	ans=$(dig_answers A <<<"$out") ttl=$(dig_ttl A <<<"$out")
	check "$d: the unexpired www comes from the cache with its own TTL ($ttl)" "answer=${ans:-none} ttl=${ttl:-none}" \
		[ "$ans" == "$LAB_WWW_A" -a "${ttl:-0}" -gt 30 -a "${ttl:-999}" -le 300 ]
	n=$(lab_metric0 dotproxy_stale_answers_total)
	check "$d: dotproxy_stale_answers_total is 1" "$n" [ "$n" == 1 ]
	lab_expect_wan53_zero "$d: nothing in plaintext"
	ub_start dot || lab_bail "could not restart unbound dot"
	ub_start dot2 || lab_bail "could not restart unbound dot2"
	m1=$(wait_up "$U1" 8) m2=$(wait_up "$U2" 8)
	check "$d: restarted, both usable again without a dotproxy restart ($m1 ms, then $m2 ms)" \
		"$U1 $m1, $U2 $m2" [ "$m1" != never -a "$m2" != never ]
	st=$(ask nx-back.dotproxy.test A | dig_status)
	check "$d: back: a name not cached is answered by the upstream ($st)" "status=${st:-timeout}" [ "$st" == NXDOMAIN ]
	out=$(ask "$LAB_SHORT" A)
	ans=$(dig_answers A <<<"$out") ttl=$(dig_ttl A <<<"$out")
	check "$d: back: $LAB_SHORT is fresh again (TTL $ttl)" "answer=${ans:-none} ttl=${ttl:-none}" \
		[ "$ans" == "$LAB_SHORT_A" -a "${ttl:-99}" -le "$LAB_SHORT_TTL" ]
	lab_dotproxy_stop
}

# --- 5. the cache, seen from the upstream -----------------------------------------------------
s5() {
	local d="cache" q0 q1 h0 h1 i out good=0 seen="" st
	dp "$d" --upstream "$U2" || return
	q0=$(lab_ub_stat dot2 num.query.tls) h0=$(lab_metric0 dotproxy_cache_hits_total)
	for i in +notcp +tcp +notcp +tcp +notcp; do
		out=$(ask "$LAB_WWW" A "$i")
		st=$(dig_status <<<"$out")
		[[ $st == NOERROR && $(dig_answers A <<<"$out") == "$LAB_WWW_A" ]] && good=$((good + 1))
		seen+="$i:$st "
	done
	q1=$(lab_ub_stat dot2 num.query.tls) h1=$(lab_metric0 dotproxy_cache_hits_total)
	check "$d: www A asked 5 times (UDP and TCP): 5 answered" "$seen" [ "$good" == 5 ]
	check "$d: the upstream saw 1 TLS query for them (num.query.tls $q0 -> $q1)" "num.query.tls $q0 -> $q1" \
		[ $((q1 - q0)) == 1 ]
	check "$d: dotproxy_cache_hits_total went up by 4" "$h0 -> $h1" [ $((h1 - h0)) == 4 ]
	q0=$q1 h0=$h1 seen=''
	for i in 1 2; do seen+="$(ask nx-cache.dotproxy.test A | dig_status) "; done
	q1=$(lab_ub_stat dot2 num.query.tls) h1=$(lab_metric0 dotproxy_cache_hits_total)
	check "$d: a name that does not exist asked twice: NXDOMAIN twice" "$seen" [ "$seen" == "NXDOMAIN NXDOMAIN " ]
	check "$d: negative answer cached (RFC 2308): the upstream saw 1 TLS query (num.query.tls $q0 -> $q1)" \
		"num.query.tls $q0 -> $q1, cache hits $h0 -> $h1" [ $((q1 - q0)) == 1 -a $((h1 - h0)) == 1 ]
	lab_dotproxy_stop
}

# --- 6. session resumption on reconnect -------------------------------------------------------
s6() {
	local d="--idle-timeout 500" r0 r1 n r good max bad good2 bad2
	dp "$d" --cache-size 0 --idle-timeout 500 --upstream "$U2" || return
	r0=$(lab_ub_stat dot2 num.query.tls.resume)
	read -r good max bad < <(www_series 1)
	sleep 1
	read -r good2 max bad2 < <(www_series 1)
	check "$d: a query, 1 s idle, a query: both answered" "$bad / $bad2" [ "$good$good2" == 11 ]
	n=$(lab_metric0 dotproxy_tls_handshakes_total) r=$(lab_metric0 dotproxy_tls_resumed_total)
	check "$d: the idle connection was closed and the new one resumed ($n handshakes, $r resumed)" \
		"handshakes=$n resumed=$r" [ "$n" == 2 -a "$r" == 1 ]
	r1=$(lab_ub_stat dot2 num.query.tls.resume)
	check "$d: the upstream saw the second query on a resumed session (num.query.tls.resume $r0 -> $r1)" \
		"$r0 -> $r1" [ $((r1 - r0)) == 1 ]
	lab_dotproxy_stop
}

# --- 7. rate limit per client address ---------------------------------------------------------
s7() {
	local d="--ratelimit 5" out refused noerror none n
	dp "$d" --ratelimit 5 --upstream "$U1" || return
	out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" burst "$LAB_DECOY4" 30 "$LAB_C4" 2>&1)
	refused=$(grep -o 'REFUSED=[0-9]*' <<<"$out" | cut -d= -f2)
	noerror=$(grep -o 'NOERROR=[0-9]*' <<<"$out" | cut -d= -f2)
	none=$(grep -o 'none=[0-9]*' <<<"$out" | cut -d= -f2)
	check "$d: a burst of 30 from $LAB_C4: 2 s worth (>= 10) answered, >= 15 REFUSED, none lost" "$out" \
		[ "${noerror:-0}" -ge 10 -a "${refused:-0}" -ge 15 -a "${none:-x}" == 0 ]
	out=$(ask "$LAB_WWW" A -b "$CLIENT2")
	check "$d: meanwhile $CLIENT2 (same host, another address) is answered" \
		"status=$(dig_status <<<"$out") answer=$(dig_answers A <<<"$out" | paste -sd,)" \
		[ "$(dig_status <<<"$out")" == NOERROR -a "$(dig_answers A <<<"$out")" == "$LAB_WWW_A" ]
	n=$(lab_metric0 dotproxy_ratelimited_total)
	check "$d: dotproxy_ratelimited_total counts the $refused REFUSED" "$n" [ "$n" == "${refused:-x}" ]
	sleep 1
	out=$(ask "$LAB_WWW" A)
	check "$d: a second later $LAB_C4 is answered again" "status=$(dig_status <<<"$out")" \
		[ "$(dig_status <<<"$out")" == NOERROR -a "$(dig_answers A <<<"$out")" == "$LAB_WWW_A" ]
	lab_dotproxy_stop
}

# --- 8. padding and keepalive on the upstream's wire, not on the client's -------------------
s8() {
	local d="EDNS padding" from i out lines q bad r opts st lens
	local LONG=a-label-of-sixty-octets-that-makes-the-query-longer-than-128
	dp "$d" --cache-size 0 --upstream "$U3" || return
	from=$(($(wc -l <"$LAB_DIR/dnstap.out") + 1))
	opts=''
	for q in "$LAB_WWW A +notcp" "$LAB_MID TXT +tcp" "$LONG.$LONG.$LAB_WWW AAAA +tcp"; do
		# shellcheck disable=SC2086  # name, type, transport
		out=$(ask $q)
		st=$(dig_status <<<"$out")
		opts+="$q: ${st:-timeout} $(sed -n '/OPT PSEUDOSECTION/,/QUESTION SECTION/p' <<<"$out" | grep -v SECTION | tr -s '\n' ' ');"
	done
	diag "what the client got: $opts"
	# each answer has an OPT record (the client asked with EDNS), none has either option
	check "$d: the client's answers carry no padding and no keepalive option" "$opts" \
		[ "$(grep -o 'EDNS: version' <<<"$opts" | wc -l)" == 3 -a -z "$(grep -iE 'PAD|KEEPALIVE' <<<"$opts")" \
		-a -z "$(grep -E ': (SERVFAIL|timeout)' <<<"$opts")" ]
	for ((i = 0; i < 40; i++)); do   # dnstap is written asynchronously: up to 2 s
		(($(tail -n +"$from" "$LAB_DIR/dnstap.out" | grep -c '^CLIENT_RESPONSE') >= 3)) && break
		sleep 0.05
	done
	lines=$(tail -n +"$from" "$LAB_DIR/dnstap.out")
	q=$(grep '^CLIENT_QUERY' <<<"$lines")
	bad=$(awk '{ split($2, l, "="); if (l[2] % 128 || $5 != "pad=1" || $6 != "keepalive=1") print }' <<<"$q")
	lens=$(grep -o 'len=[0-9]*' <<<"$q" | cut -d= -f2 | paste -sd, -)
	check "$d: the upstream received $(grep -c . <<<"$q") queries ($lens octets), each padded to 128-octet blocks with edns-tcp-keepalive" \
		"$(tr '\n' ';' <<<"$q") bad: $bad" [ "$(grep -c . <<<"$q")" -ge 3 -a -z "$bad" ]
	r=$(grep '^CLIENT_RESPONSE' <<<"$lines")
	check "$d: the upstream padded its answers (what dotproxy stripped)" "$(tr '\n' ';' <<<"$r")" \
		[ -n "$r" -a -z "$(grep -v 'pad=1' <<<"$r")" ]
	lab_dotproxy_stop
}

t_all=$(lab_ms)
# UPSTREAM_SCENARIOS="s2 s4" runs some of them; DOTPROXY_EXTRA="-v" adds flags to every dotproxy
for s in ${UPSTREAM_SCENARIOS:-s1 s2 s3 s4 s5 s6 s7 s8}; do
	t0=$(lab_ms)
	$s
	lab_dotproxy_stop
	diag "$s: $(($(lab_ms) - t0)) ms"
done
diag "all scenarios: $(($(lab_ms) - t_all)) ms"
lab_finish
