#!/usr/bin/env bash
# tests/e2e/test_selftest.sh: `dotproxy --self-test` answers "is my DNS private right now?" truly.
#
# The client (and the gateway host) run the self-test, as an unprivileged user, against the lab's
# plaintext DECOY (198.51.100.53 / 2001:db8:2::53), which answers a marker NXDOMAIN itself. With
# dotproxy and its rules up, every path (UDP and TCP, IPv4 and IPv6) must come back private, named
# with the DoT upstream, exit 0; with the IPv6 rules removed, IPv6 must be named NOT private, exit
# 1; with the rules down, the decoy answers: NOT private, exit 1. The daemon's TXT says how it
# answered (front-end, transport, family, the upstream's rcode); markers are never cached; with
# the DoT server down a marker gets SERVFAIL, which the self-test reports as such.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
UP_LABEL="$LAB_DOT4@853#$LAB_AUTH"

# selftest NS(c|g) ADDR...: run the self-test in NS as user nobody; sets ST_OUT and ST_RC.
selftest() {
	local ns=$1; shift
	case $ns in c) ns=$LAB_NS_C ;; g) ns=$LAB_NS_G ;; esac
	ST_OUT=$(ip netns exec "$ns" "${NOBODY[@]}" timeout 30 "$DOTPROXY" --self-test "$@" 2>&1)
	ST_RC=$?
}

# st_line FAMILY PROTO: the self-test's result line for FAMILY (IPv4|IPv6) and PROTO (UDP|TCP).
st_line() { grep -m1 "^$1 $2 " <<<"$ST_OUT"; }

# expect_paths DESC WANT FAMILY...: every UDP and TCP line of FAMILY starts with WANT after the colon.
expect_paths() {
	local desc=$1 want=$2 fam proto line; shift 2
	for fam in "$@"; do
		for proto in UDP TCP; do
			line=$(st_line "$fam" "$proto")
			check "$desc: $fam $proto: ${line#*: }" "$line" [ "${line#*: }" != "${line#*: "$want"}" ]
		done
	done
}

# marker: a fresh marker name (32 hex digits of nonce).
marker() { printf '%s.self-test.dotproxy.invalid.' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"; }

# --- control: the decoy answers a marker itself -----------------------------------------------
out=$(lab_dig c "@$LAB_DECOY4" "$(marker)" TXT)
check "control: the decoy answers a marker itself (NXDOMAIN, .invalid)" "$out" \
	[ "$(dig_status <<<"$out")" == NXDOMAIN ]

# --- dotproxy and the rules up: private everywhere ----------------------------------------------
mapfile -t args < <(lab_dotproxy_args)
lab_dotproxy_start --mode tproxy "${args[@]}" || lab_bail "dotproxy did not start"
rules=(--mode tproxy --scope both --in-interface "$LAB_LAN_IF" --port "$LAB_PORT")
lab_rules up "${rules[@]}" || lab_bail "dotproxy-rules up failed"

lab_wan53_reset
selftest c "$LAB_DECOY4" "$LAB_DECOY6"
expect_paths "client, rules up" "private: answered over verified DoT by $UP_LABEL" IPv4 IPv6
check "client, rules up: IPv4 and IPv6 summary lines say private for UDP and TCP" "$ST_OUT" \
	grep -qx 'IPv4: UDP private, TCP private' <<<"$ST_OUT"
check "client, rules up: IPv6 summary" "$ST_OUT" grep -qx 'IPv6: UDP private, TCP private' <<<"$ST_OUT"
check "client, rules up: verdict private, exit 0" "rc=$ST_RC $(tail -n1 <<<"$ST_OUT")" \
	[ "$ST_RC" == 0 -a "$(tail -n1 <<<"$ST_OUT" | cut -d: -f1-2)" == "verdict: private" ]
lab_expect_wan53_zero "client self-test"

selftest g "$LAB_DECOY4" "$LAB_DECOY6"
expect_paths "gateway host, rules up" "private: answered over verified DoT by $UP_LABEL" IPv4 IPv6
check "gateway host, rules up: exit 0" "rc=$ST_RC $ST_OUT" [ "$ST_RC" == 0 ]

# --- what the daemon says in its TXT ------------------------------------------------------------
# txt_of NS SERVER DIG-ARGS...: the TXT text of the answer to a fresh marker.
txt_of() {
	local ns=$1 server=$2; shift 2
	lab_dig "$ns" "@$server" "$(marker)" TXT "$@" | dig_answers TXT | tr -d '\n'
}
t=$(txt_of c "$LAB_DECOY4" +notcp)
want="dotproxy=$("$DOTPROXY" --version | cut -d' ' -f2) upstream=$UP_LABEL tls=verified frontend=tproxy transport=udp family=ipv4 upstream-rcode=NXDOMAIN nonce="
check "TXT over UDP/IPv4 names version, upstream, front-end, transport, family, upstream rcode" "$t" \
	[ "${t%nonce=*}nonce=" == "$want" ]
t=$(txt_of c "$LAB_DECOY6" +tcp)
check "TXT over TCP/IPv6 says transport=tcp family=ipv6" "$t" \
	grep -q 'frontend=tproxy transport=tcp family=ipv6 ' <<<"$t"
m=$(marker)
t=$(lab_dig c "@$LAB_DECOY4" "${m^^}" TXT | dig_answers TXT | tr -d '\n')
check "a marker in upper case is still a marker (DNS names ignore case)" "$t" grep -q "nonce=${m%%.*}" <<<"$t"

# markers never come from the cache, a non-marker does the second time
hits0=$(lab_metric0 dotproxy_cache_hits_total)
m=$(marker)
lab_dig c "@$LAB_DECOY4" "$m" TXT >/dev/null
lab_dig c "@$LAB_DECOY4" "$m" TXT >/dev/null
hits1=$(lab_metric0 dotproxy_cache_hits_total)
check "the same marker twice: no cache hit" "cache hits $hits0 -> $hits1" [ "$hits1" == "$hits0" ]
for name in "0123456789abcdef0123.self-test.dotproxy.test." "0123abc.self-test.dotproxy.invalid."; do
	out=$(lab_dig c "@$LAB_DECOY4" "$name" TXT)
	t=$(dig_answers TXT <<<"$out")
	check "not a marker ($name): the upstream's own answer, no dotproxy TXT" "$out" \
		[ -z "$t" -a "$(dig_status <<<"$out")" == NXDOMAIN ]
done
lab_dig c "@$LAB_DECOY4" "0123abc.self-test.dotproxy.invalid." TXT >/dev/null
hits2=$(lab_metric0 dotproxy_cache_hits_total)
check "... while a non-marker asked twice is a cache hit" "cache hits $hits1 -> $hits2" [ "$hits2" -gt "$hits1" ]

# --- IPv4 rules only: IPv6 is named as not private ------------------------------------------------
# (dotproxy-rules has no per-family switch: remove its IPv6 jumps by hand)
n6=0
while read -r rule; do
	read -ra r <<<"${rule/-A /-D }"
	lab_g ip6tables -w -t mangle "${r[@]}" && n6=$((n6 + 1))
done < <(lab_g ip6tables -w -t mangle -S | grep -E '^-A (PREROUTING|OUTPUT) .*-j ')
check "IPv6 interception removed by hand ($n6 jumps)" "$(lab_g ip6tables -w -t mangle -S)" [ "$n6" -gt 0 ]
selftest c "$LAB_DECOY4" "$LAB_DECOY6"
expect_paths "client, IPv4 rules only" "private: answered over verified DoT by $UP_LABEL" IPv4
expect_paths "client, IPv4 rules only" "NOT private: answered in plaintext by the server itself" IPv6
check "client, IPv4 rules only: the summary names IPv6 as NOT private" "$ST_OUT" \
	grep -qx 'IPv6: UDP NOT private, TCP NOT private' <<<"$ST_OUT"
check "client, IPv4 rules only: verdict NOT private, exit 1" "rc=$ST_RC $(tail -n1 <<<"$ST_OUT")" \
	[ "$ST_RC" == 1 -a "$(tail -n1 <<<"$ST_OUT" | cut -d: -f1-2)" == "verdict: NOT private" ]

# --- the DoT server down: intercepted, but no upstream answers ----------------------------------
lab_rules up "${rules[@]}" || lab_bail "dotproxy-rules up failed"
lab_unbound_stop dot
selftest c "$LAB_DECOY4"
expect_paths "client, DoT server down" "NOT private: SERVFAIL (intercepted, but no upstream answered" IPv4
check "client, DoT server down: exit 1" "rc=$ST_RC" [ "$ST_RC" == 1 ]
lab_unbound_start dot || lab_bail "unbound dot did not start again"

# --- rules down: the decoy answers in plaintext -------------------------------------------------
lab_rules down "${rules[@]}" || lab_bail "dotproxy-rules down failed"
lab_wan53_reset
selftest c "$LAB_DECOY4" "$LAB_DECOY6"
expect_paths "client, rules down" "NOT private: answered in plaintext by the server itself (NXDOMAIN)" IPv4 IPv6
check "client, rules down: verdict NOT private, exit 1" "rc=$ST_RC $(tail -n1 <<<"$ST_OUT")" \
	[ "$ST_RC" == 1 -a "$(tail -n1 <<<"$ST_OUT" | cut -d: -f1-2)" == "verdict: NOT private" ]
n=$(lab_wan53_count)
check "client, rules down: the markers really left in plaintext" "wan53=$n" [ "$n" -ge 4 ]
selftest g "$LAB_DECOY4"
check "gateway host, rules down: NOT private, exit 1" "rc=$ST_RC $ST_OUT" \
	[ "$ST_RC" == 1 -a "$(st_line IPv4 UDP | cut -d: -f2)" == " NOT private" ]

# --- a family with no route is skipped and said so; bad input is one line, exit 2 ----------------
lab_c ip -6 route del default
selftest c "$LAB_DECOY4" "$LAB_DECOY6"
check "no IPv6 route: IPv6 skipped and named" "$ST_OUT" grep -q '^IPv6 UDP+TCP .*skipped: no IPv6 route' <<<"$ST_OUT"
check "no IPv6 route: summary says IPv6 not tested" "$ST_OUT" \
	grep -qx 'IPv6: UDP not tested, TCP not tested' <<<"$ST_OUT"
selftest c 198.51.100.999
check "bad address: one error line, exit 2" "rc=$ST_RC $ST_OUT" \
	[ "$ST_RC" == 2 -a "$ST_OUT" == 'dotproxy: --self-test "198.51.100.999": not an IPv4 or IPv6 address' ]

lab_dotproxy_stop
check "dotproxy exits 0 on SIGTERM" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
lab_c ip -6 route add default via "$LAB_GL6"

# --- the other front-ends: redirect, and nfqueue (UDP from the queue, TCP by TPROXY) --------------
for mode in redirect nfqueue; do
	lab_dotproxy_start --mode "$mode" "${args[@]}" || { fail "$mode: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG")"; continue; }
	rules=(--mode "$mode" --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT")
	if lab_rules up "${rules[@]}"; then
		selftest c "$LAB_DECOY4" "$LAB_DECOY6"
		expect_paths "$mode, client" "private: answered over verified DoT by $UP_LABEL" IPv4 IPv6
		check "$mode, client: exit 0" "rc=$ST_RC" [ "$ST_RC" == 0 ]
		udp=$mode tcp=$mode
		[[ $mode == nfqueue ]] && tcp=tproxy
		t=$(txt_of c "$LAB_DECOY6" +notcp)
		check "$mode: the TXT over UDP says frontend=$udp" "$t" grep -q " frontend=$udp transport=udp family=ipv6 " <<<"$t"
		t=$(txt_of c "$LAB_DECOY4" +tcp)
		check "$mode: the TXT over TCP says frontend=$tcp" "$t" grep -q " frontend=$tcp transport=tcp family=ipv4 " <<<"$t"
		lab_rules down "${rules[@]}"
	fi
	lab_dotproxy_stop
done
lab_finish
