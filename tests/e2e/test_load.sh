#!/usr/bin/env bash
# tests/e2e/test_load.sh: many queries, none lost, few handshakes.
#
# dnsperf sends 10,000 UDP queries (and 2,000 over TCP/IPv6 from 10 clients) through the
# interception: every one answered, with exactly the rcodes the lab's zone gives. 1,000
# sequential dig queries cost one TLS handshake (dotproxy's metrics). 50 queries pipelined on one
# TCP connection and 40 UDP clients using the same message ID each get their own answer. Past
# --max-inflight and --max-tcp-clients, clients are refused and counted, and service comes back.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up
command -v dnsperf >/dev/null || lab_bail "dnsperf is missing (make installs it)"

lab_rules up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" ||
	lab_bail "dotproxy-rules up failed"

# perf_file FILE N: N queries: half www A, a quarter www AAAA (NOERROR in the zone), a quarter
# distinct names the zone does not have (NXDOMAIN). Prints "NOERROR NXDOMAIN" expected counts.
perf_file() {
	local f=$1 n=$2 i
	for ((i = 0; i < n; i++)); do
		case $((i % 4)) in
		0 | 2) echo "$LAB_WWW A" ;;
		1) echo "$LAB_WWW AAAA" ;;
		3) echo "nx$i.dotproxy.test A" ;;
		esac
	done >"$f"
	echo "$((n - n / 4)) $((n / 4))"
}

# perf DESC SERVER N DNSPERF ARGS...: run dnsperf once through a file of N queries, bounded by -l.
perf() {
	local desc=$1 server=$2 n=$3; shift 3
	local f=$LAB_DIR/perf.$n.txt exp_noerror exp_nx out sent ndone lost codes t0
	read -r exp_noerror exp_nx < <(perf_file "$f" "$n")
	t0=$(lab_ms)
	out=$(lab_c timeout 90 dnsperf -s "$server" -p 53 -d "$f" -n 1 -l 60 -t 5 "$@" 2>&1)
	diag "$desc: dnsperf took $(($(lab_ms) - t0)) ms: $(grep -E 'Queries per second|Average Latency' <<<"$out" | tr -s ' ' | paste -sd';')"
	sent=$(awk '/Queries sent:/ { print $3 }' <<<"$out")
	ndone=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
	lost=$(awk '/Queries lost:/ { print $3 }' <<<"$out")
	codes=$(sed -n 's/.*Response codes: *//p' <<<"$out" | sed 's/ ([0-9.%]*)//g')
	check "$desc: dnsperf sent $n queries" "sent=${sent:-?}; $(tail -n 3 <<<"$out")" [ "${sent:-x}" == "$n" ]
	check "$desc: all $n completed, none lost" "completed=${ndone:-?} lost=${lost:-?}" \
		[ "${ndone:-x}" == "$n" -a "${lost:-x}" == 0 ]
	check "$desc: rcodes are the zone's (NOERROR $exp_noerror, NXDOMAIN $exp_nx)" "${codes:-no response codes}" \
		[ "$codes" == "NOERROR $exp_noerror, NXDOMAIN $exp_nx" ]
}

mapfile -t args < <(lab_dotproxy_args)
lab_dotproxy_start --mode tproxy "${args[@]}" || lab_bail "dotproxy did not start: $(tail -n 3 "$LAB_DP_LOG")"
lab_wan53_reset
perf "dnsperf UDP/IPv4" "$LAB_DECOY4" 10000 -m udp -c 4 -q 100
perf "dnsperf TCP/IPv6, 10 clients" "$LAB_DECOY6" 2000 -m tcp -c 10 -q 50
n=$(lab_metric0 'dotproxy_answers_total{rcode="SERVFAIL"}')
check "dnsperf: no SERVFAIL in dotproxy's metrics" "dotproxy_answers_total{rcode=\"SERVFAIL\"}=$n" [ "$n" == 0 ]
out=$(lab_metrics | grep '^dotproxy_refused_total' | paste -sd' ')
check "dnsperf: nothing refused for lack of room" "$out" [ -z "$(awk '$2 != 0' <<<"$out")" ]

out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" pipeline "$LAB_DECOY4" 50 2>&1)
check "50 queries pipelined on one TCP connection: each answer matches its query" "$out" \
	[ "$out" == "answered=50/50 mismatched=0" ]
# more than one client may have in flight (64): reading pauses, nothing is lost or refused
out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" pipeline "$LAB_DECOY6" 300 2>&1)
check "300 queries pipelined on one TCP connection: all answered in turn" "$out" \
	[ "$out" == "answered=300/300 mismatched=0" ]
out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" pipeline "$LAB_DECOY4" 20 halfclose 2>&1)
check "20 pipelined queries then a half-close (SHUT_WR): every answer still comes" "$out" \
	[ "$out" == "answered=20/20 mismatched=0" ]
out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" oversize "$LAB_DECOY4" 2>&1)
size=${out#size=}; size=${size%% *}
check "a TCP query over 4096 octets ($size) gets FORMERR" "$out" [ "${out#size=* }" == "id=ok rcode=FORMERR" -a "${size:-0}" -gt 4096 ]
out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" sameid "$LAB_DECOY6" 40 2>&1)
check "40 UDP clients with one message ID: each gets the answer to its own question" "$out" \
	[ "$out" == "own_answer=40/40 wrong=0 unanswered=0" ]
lab_expect_wan53_zero "load: nothing in plaintext"
lab_dotproxy_stop

# --- 1,000 sequential queries, one TLS handshake ------------------------------------------------
lab_dotproxy_start --mode tproxy --idle-timeout 120000 "${args[@]}" ||
	lab_bail "dotproxy did not start: $(tail -n 3 "$LAB_DP_LOG")"
for ((i = 0; i < 1000; i++)); do
	echo "@$LAB_DECOY4 $LAB_WWW A +short +tries=1 +time=3"
done >"$LAB_DIR/batch.txt"
t0=$(lab_ms)
out=$(lab_c timeout 60 dig -f "$LAB_DIR/batch.txt" 2>&1)   # bounded: 60 s at most
ms=$(($(lab_ms) - t0))
n=$(grep -cx "$LAB_WWW_A" <<<"$out")
check "1,000 sequential queries (dig -f, $ms ms) all get the DoT record" \
	"$n of 1000; other lines: $(grep -vx "$LAB_WWW_A" <<<"$out" | sort | uniq -c | head -n 3)" [ "$n" == 1000 ]
n=$(lab_metric dotproxy_tls_handshakes_total)
check "1,000 sequential queries cost one TLS handshake" "dotproxy_tls_handshakes_total=${n:-absent}" [ "${n:-x}" == 1 ]
n=$(lab_metric dotproxy_upstream_queries_total)
diag "dotproxy_upstream_queries_total=${n:-absent}"
lab_dotproxy_stop
check "dotproxy exits 0 on SIGTERM" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]

# --- bounded: past --max-inflight and --max-tcp-clients, refuse and count, never go silent ------
lab_dotproxy_start --mode tproxy --max-inflight 8 --max-tcp-clients 2 "${args[@]}" ||
	lab_bail "dotproxy did not start: $(tail -n 3 "$LAB_DP_LOG")"
for ((i = 0; i < 5000; i++)); do echo "cap$i.dotproxy.test A"; done >"$LAB_DIR/cap.txt"
out=$(lab_c timeout 90 dnsperf -s "$LAB_DECOY4" -d "$LAB_DIR/cap.txt" -n 1 -l 60 -t 5 -c 4 -q 100 2>&1)
sent=$(awk '/Queries sent:/ { print $3 }' <<<"$out")
ndone=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
codes=$(sed -n 's/.*Response codes: *//p' <<<"$out" | sed 's/ ([0-9.%]*)//g')
check "--max-inflight 8, 100 outstanding: every query answered, none lost" "sent=${sent:-?} completed=${ndone:-?}" \
	[ -n "${sent:-}" -a "${sent:-x}" == "${ndone:-y}" ]
refused=$(lab_metric0 'dotproxy_refused_total{reason="inflight"}')
nref=$(grep -o 'REFUSED [0-9]*' <<<"$codes" | awk '{ print $2 }')
nsf=$(grep -o 'SERVFAIL [0-9]*' <<<"$codes" | awk '{ print $2 }')
check "--max-inflight 8: the queries past the cap were refused and counted" \
	"dnsperf rcodes: ${codes:-none}; dotproxy_refused_total{reason=\"inflight\"}=$refused" \
	[ "$refused" -ge 1 -a $((${nref:-0} + ${nsf:-0})) == "$refused" ]
lab_expect_www "--max-inflight 8: after the burst a query is answered" c "$LAB_DECOY4" A

lab_spawn c "$LAB_DIR/hold.out" "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" hold "$LAB_DECOY4" 8
hold_pid=$LAB_SPAWN_PID
for ((i = 0; i < 40; i++)); do [[ -s $LAB_DIR/hold.out ]] && break; sleep 0.05; done
out=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +tcp)
st=$(dig_status <<<"$out")
refused=$(lab_metric0 'dotproxy_refused_total{reason="tcp_clients"}')
check "--max-tcp-clients 2, 3 held: a further TCP client is refused and counted" \
	"dig status=${st:-none}; dotproxy_refused_total{reason=\"tcp_clients\"}=$refused" \
	[ -z "$st" -a "$refused" -ge 2 ]
lab_expect_www "--max-tcp-clients 2, TCP full: UDP is still answered" c "$LAB_DECOY4" A +notcp
lab_stop_pid "$hold_pid"
for ((i = 0; i < 20; i++)); do   # the held connections' FINs may still be in flight: 2 s at most
	got=$(lab_dig c "@$LAB_DECOY4" "$LAB_WWW" A +tcp +short)
	[[ $got == "$LAB_WWW_A" ]] && break
	sleep 0.1
done
check "--max-tcp-clients 2: once the held clients leave, TCP is answered again" "last answer: ${got:-none}" \
	[ "$got" == "$LAB_WWW_A" ]
lab_expect_wan53_zero "load and caps: nothing in plaintext"
lab_dotproxy_stop
check "dotproxy exits 0 on SIGTERM after the caps" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
lab_finish
