#!/usr/bin/env bash
# tests/e2e/test_failclosed.sh: with the rules installed and the daemon not running, DNS fails
# closed: the client's query never reaches the plaintext server and no port-53 packet leaves the
# gateway, in every mode and rules backend, UDP and TCP, IPv4 and IPv6. Then the daemon starts
# and the same rules answer over DoT, without touching the rules.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

# control: without rules the decoy answers, so "no answer" below means the rules held it
out=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +notcp)
ans=$(dig_answers A <<<"$out")
check "control: without rules the client gets the decoy's record" "answer=${ans:-none}" [ "$ans" == "$LAB_DECOY_WWW_A" ]

# failclosed MODE BACKEND: rules up without a daemon, queries must fail; daemon up, they answer.
failclosed() {
	local mode=$1 backend=$2 t="$1/$2 daemon down" out ans args
	if ! lab_rules up --mode "$mode" --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" --backend "$backend"; then
		fail "$t: dotproxy-rules up" "$(tail -n 5 "$LAB_DIR/rules.log")"
		return
	fi
	lab_wan53_reset
	for q in "$LAB_DECOY4 A +notcp" "$LAB_DECOY4 A +tcp" "$LAB_DECOY6 AAAA +notcp" "$LAB_DECOY6 AAAA +tcp"; do
		set -- $q
		out=$(lab_dig c "@$1" "$LAB_WWW" "$2" "$3" +time=1)
		ans=$(dig_answers "$2" <<<"$out")
		check "$t: $3 query to $1 gets no answer at all" "$(tr '\n' ' ' <<<"$out" | cut -c1-200)" \
			[ -z "$ans" -a -z "$(dig_status <<<"$out")" ]
	done
	lab_expect_wan53_zero "$t: nothing in plaintext"
	# the daemon comes up under the same rules: the same queries are answered over DoT
	mapfile -t args < <(lab_dotproxy_args)
	if lab_dotproxy_start --mode "$mode" "${args[@]}"; then
		lab_expect_www "$mode/$backend daemon up: UDP/IPv4 answered over DoT" c "$LAB_DECOY4" A +notcp
		lab_expect_www "$mode/$backend daemon up: TCP/IPv6 answered over DoT" c "$LAB_DECOY6" AAAA +tcp
		lab_dotproxy_stop
	else
		fail "$mode/$backend: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG" 2>/dev/null)"
	fi
	lab_rules down
}

failclosed tproxy iptables
failclosed tproxy nft
failclosed redirect iptables
failclosed redirect nft
failclosed nfqueue iptables
lab_finish
