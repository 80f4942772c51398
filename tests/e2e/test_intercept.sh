#!/usr/bin/env bash
# tests/e2e/test_intercept.sh: interception is provable, in every mode, scope and rules backend.
#
# The client asks the DECOY (198.51.100.53 / 2001:db8:2::53, port 53), which would answer
# 203.0.113.66; it must get the DoT server's 203.0.113.10 instead, from the address it asked,
# while not one packet to port 53 leaves the gateway's WAN interface. UDP and TCP, IPv4 and
# IPv6, host scope (dig on the gateway) and gateway scope (dig on the client), tproxy, redirect
# and nfqueue modes, iptables and nft rules. Also: redirect mode as a local stub (--listen), exit 0
# on SIGTERM, and no query names in the log at the default level.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

# --- the lab itself, before any interception: the decoy answers, the counter counts ------------
lab_wan53_reset
out=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +short)
check "control: without dotproxy the client's query gets the decoy's record" "$out" \
	[ "$out" == "$LAB_DECOY_WWW_A" ]
n=$(lab_wan53_count)
check "control: the WAN counter counts that plaintext query" "count=$n" [ "$n" -ge 1 ] 2>/dev/null
out=$(ip netns exec "$LAB_NS_C" kdig +retry=0 +timeout=3 +tls-ca="$LAB_CA" +tls-hostname="$LAB_AUTH" \
	"@$LAB_DOT4" "$LAB_WWW" A +short 2>&1)
check "control: the DoT server answers verified DoT directly" "$out" [ "$out" == "$LAB_WWW_A" ]

# scenario MODE SCOPE BACKEND [UPSTREAM]: one dotproxy + rules setup, every kind of query.
scenario() {
	local mode=$1 scope=$2 backend=$3 upstream=${4:-} t="$1/$2/$3" ns args rules nudp=0 ntcp=0 n
	mapfile -t args < <(lab_dotproxy_args "$upstream")
	if ! lab_dotproxy_start --mode "$mode" "${args[@]}"; then
		fail "$t: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG" 2>/dev/null)"
		return
	fi
	rules=(--mode "$mode" --scope "$scope" --port "$LAB_PORT" --backend "$backend")
	[[ $scope != host ]] && rules+=(--in-interface "$LAB_LAN_IF")
	if ! lab_rules up "${rules[@]}"; then
		fail "$t: dotproxy-rules up ${rules[*]}" "$(tail -n 5 "$LAB_DIR/rules.log")"
		lab_dotproxy_stop
		return
	fi
	lab_wan53_reset
	local clients=(c)
	[[ $scope == host ]] && clients=(g)
	[[ $scope == both ]] && clients=(c g)
	for ns in "${clients[@]}"; do
		local who="client"
		[[ $ns == g ]] && who="gateway host"
		lab_expect_www "$t: $who asks the decoy, UDP/IPv4" "$ns" "$LAB_DECOY4" A +notcp
		lab_expect_www "$t: $who asks the decoy, TCP/IPv4" "$ns" "$LAB_DECOY4" A +tcp
		lab_expect_www "$t: $who asks the decoy, UDP/IPv6" "$ns" "$LAB_DECOY6" AAAA +notcp
		lab_expect_www "$t: $who asks the decoy, TCP/IPv6" "$ns" "$LAB_DECOY6" AAAA +tcp
		lab_expect_src "$t: $who, UDP/IPv4 answer's source address" "$ns" "$LAB_DECOY4" A
		lab_expect_src "$t: $who, UDP/IPv6 answer's source address" "$ns" "$LAB_DECOY6" AAAA
		nudp=$((nudp + 4)) ntcp=$((ntcp + 2))
	done
	lab_expect_wan53_zero "$t: nothing in plaintext"
	n=$(lab_metric 'dotproxy_queries_total{transport="udp"}')
	check "$t: metrics count the $nudp UDP queries" "dotproxy_queries_total{transport=\"udp\"}=${n:-absent}" \
		[ "${n:-x}" == "$nudp" ]
	n=$(lab_metric 'dotproxy_queries_total{transport="tcp"}')
	check "$t: metrics count the $ntcp TCP queries" "dotproxy_queries_total{transport=\"tcp\"}=${n:-absent}" \
		[ "${n:-x}" == "$ntcp" ]
	n=$(lab_metric dotproxy_tls_handshakes_total)
	check "$t: one TLS handshake for all of them" "dotproxy_tls_handshakes_total=${n:-absent}" [ "${n:-x}" == 1 ]

	# rules down: the same query reaches the decoy again, in plaintext (so it was the rules)
	if lab_rules down "${rules[@]}"; then
		lab_wan53_reset
		out=$(lab_dig "${clients[0]}" "@$LAB_DECOY4" "$LAB_WWW" A +short)
		n=$(lab_wan53_count)
		check "$t: after rules down the query reaches the decoy again" "answer=$out wan53=$n" \
			[ "$out" == "$LAB_DECOY_WWW_A" -a "$n" != 0 ]
	else
		fail "$t: dotproxy-rules down ${rules[*]}" "$(tail -n 5 "$LAB_DIR/rules.log")"
	fi
	lab_dotproxy_stop
	check "$t: dotproxy exits 0 on SIGTERM" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
}

scenario tproxy gateway iptables
scenario tproxy host iptables
scenario redirect gateway iptables "$LAB_DOT6@853#$LAB_AUTH"
scenario redirect host iptables
scenario tproxy both nft "$LAB_DOT6@853#$LAB_AUTH"
scenario redirect both nft
scenario nfqueue gateway iptables
scenario nfqueue host iptables "$LAB_DOT6@853#$LAB_AUTH"
scenario nfqueue both iptables
# (nfqueue with nft rules needs a kernel with nft_queue: test_rules.sh covers it where there is one)

# --- redirect mode as an ordinary local stub resolver, narrowed with --listen -------------------
mapfile -t args < <(lab_dotproxy_args)
if lab_dotproxy_start --mode redirect --listen 127.0.0.1@5300 --listen "[::1]@5300" "${args[@]}"; then
	lab_expect_www "stub: dig @127.0.0.1 -p 5300 on the gateway, UDP" g 127.0.0.1 A -p 5300
	lab_expect_www "stub: dig @::1 -p 5300 on the gateway, TCP" g ::1 AAAA -p 5300 +tcp
	seen=$(lab_g ss -Hlnu "sport = :$LAB_PORT")
	check "stub: --listen narrows the listeners (nothing on port $LAB_PORT)" "$seen" [ -z "$seen" ]
	seen=$(lab_g ss -Hlnu "sport = :5300" | awk '{print $4}' | sort | paste -sd' ')
	check "stub: it listens on exactly 127.0.0.1 and ::1" "$seen" [ "$seen" == "127.0.0.1:5300 [::1]:5300" ]
	lab_dotproxy_stop
else
	fail "stub: dotproxy --mode redirect --listen 127.0.0.1@5300 --listen [::1]@5300 starts" \
		"$(tail -n 5 "$LAB_DP_LOG")"
fi

# --- privacy: no query names at the default log level -------------------------------------------
seen=$(grep -l -e "$LAB_WWW" -e "${LAB_WWW%.}." "$LAB_DIR"/dotproxy.*.log 2>/dev/null | xargs -r -n1 basename)
check "no query name in dotproxy's logs at the default level" "$LAB_WWW in: $seen" [ -z "$seen" ]

lab_finish
