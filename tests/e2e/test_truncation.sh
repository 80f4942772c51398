#!/usr/bin/env bash
# tests/e2e/test_truncation.sh: answers larger than the UDP client can take.
#
# mid.dotproxy.test TXT is 600-700 bytes (over 512, under dig's EDNS 1232), big.dotproxy.test TXT
# over 1500. Over UDP an answer larger than the client can take (512 without EDNS, else its
# advertised size) comes back with TC set; dig then retries over TCP (intercepted too) and gets
# the whole answer, the DoT server's strings, never the decoy's.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

mapfile -t args < <(lab_dotproxy_args)
lab_dotproxy_start --mode tproxy "${args[@]}" || lab_bail "dotproxy did not start: $(tail -n 3 "$LAB_DP_LOG")"
lab_rules up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" ||
	lab_bail "dotproxy-rules up failed"
lab_wan53_reset
tc_sent=0

# txt_case DESC SERVER NAME WANT_TC(yes|no) DIG ARGS...: check the tc flag, and for a full answer
# that the TXT strings are exactly the DoT server's (from the lab's zone).
txt_case() {
	local desc=$1 server=$2 name=$3 want_tc=$4; shift 4
	local out flags st got want tc=no retried=no
	out=$(lab_dig c "@$server" "$name" TXT "$@")
	flags=$(dig_flags <<<"$out")
	st=$(dig_status <<<"$out")
	[[ " $flags " == *" tc "* ]] && tc=yes
	grep -q 'Truncated, retrying in TCP mode' <<<"$out" && retried=yes
	got=$(dig_answers TXT <<<"$out")
	want=$(lab_txt dot "$name" | sort)
	if [[ $want_tc == yes ]]; then
		if [[ $st == NOERROR && $tc == yes ]]; then ok "$desc: tc flag set"
		else fail "$desc" "status=${st:-none} flags='$flags', want tc"; fi
		return
	fi
	if [[ $st == NOERROR && $tc == no && $got == "$want" ]]; then
		ok "$desc: full answer, $(wc -l <<<"$got") TXT strings from $(dig_server <<<"$out") ($(dig_proto <<<"$out"))"
	else
		local why
		why="status=${st:-none} flags='$flags' strings=$(grep -c . <<<"$got")/$(wc -l <<<"$want")"
		[[ $got == *decoy-* ]] && why+=" (the DECOY's strings)"
		[[ -n $got && $got != "$want" ]] && why+=" first='$(head -c 40 <<<"$got")'"
		fail "$desc" "$why"
	fi
	LAST_RETRIED=$retried
	LAST_PROTO=$(dig_proto <<<"$out")
}

# > 512 without EDNS
txt_case "mid TXT, UDP, no EDNS (512), +ignore" "$LAB_DECOY4" "$LAB_MID" yes +noedns +ignore
tc_sent=$((tc_sent + 1))
txt_case "mid TXT, UDP, no EDNS, dig retries over TCP" "$LAB_DECOY4" "$LAB_MID" no +noedns
tc_sent=$((tc_sent + 1))
check "mid TXT, no EDNS: the full answer came after a TC retry over TCP" \
	"retried=${LAST_RETRIED:-?} proto=${LAST_PROTO:-?}" [ "${LAST_RETRIED:-}" == yes -a "${LAST_PROTO:-}" == TCP ]
# fits in EDNS 1232: no truncation
txt_case "mid TXT, UDP, EDNS 1232, +ignore" "$LAB_DECOY4" "$LAB_MID" no +ignore +bufsize=1232
check "mid TXT, EDNS 1232: answered over UDP" "proto=${LAST_PROTO:-?}" [ "${LAST_PROTO:-}" == UDP ]

# > 1500: over any UDP size dig offers by default
txt_case "big TXT, UDP/IPv4, EDNS 1232, +ignore" "$LAB_DECOY4" "$LAB_BIG" yes +ignore +bufsize=1232
tc_sent=$((tc_sent + 1))
txt_case "big TXT, UDP/IPv6, no EDNS, +ignore" "$LAB_DECOY6" "$LAB_BIG" yes +ignore +noedns
tc_sent=$((tc_sent + 1))
txt_case "big TXT over IPv4: dig retries over TCP" "$LAB_DECOY4" "$LAB_BIG" no
tc_sent=$((tc_sent + 1))
check "big TXT over IPv4: full answer after a TC retry over TCP" \
	"retried=${LAST_RETRIED:-?} proto=${LAST_PROTO:-?}" [ "${LAST_RETRIED:-}" == yes -a "${LAST_PROTO:-}" == TCP ]
txt_case "big TXT over IPv6: dig retries over TCP" "$LAB_DECOY6" "$LAB_BIG" no
tc_sent=$((tc_sent + 1))
check "big TXT over IPv6: full answer after a TC retry over TCP" \
	"retried=${LAST_RETRIED:-?} proto=${LAST_PROTO:-?}" [ "${LAST_RETRIED:-}" == yes -a "${LAST_PROTO:-}" == TCP ]
txt_case "big TXT straight over TCP" "$LAB_DECOY4" "$LAB_BIG" no +tcp
# the client's advertised size is honoured: 4096 holds the whole answer
txt_case "big TXT, UDP, EDNS 4096 (the client's advertised size)" "$LAB_DECOY4" "$LAB_BIG" no +ignore +bufsize=4096
check "big TXT, EDNS 4096: answered over UDP" "proto=${LAST_PROTO:-?}" [ "${LAST_PROTO:-}" == UDP ]

n=$(lab_metric dotproxy_truncated_total)
check "metrics count the $tc_sent truncated UDP answers" "dotproxy_truncated_total=${n:-absent}" \
	[ "${n:-x}" == "$tc_sent" ]
lab_expect_wan53_zero "truncation: nothing in plaintext"
lab_dotproxy_stop
check "dotproxy exits 0 on SIGTERM" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
lab_finish
