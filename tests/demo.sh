#!/usr/bin/env bash
# tests/demo.sh: what `make demo` runs. Builds the lab (tests/lab.sh, which sets each role up with
# the provisioning scripts of tests/lab/provision/, as the Vagrant lab does), starts dotproxy on the
# gateway in tproxy mode for the LAN, has the client run an ordinary dig against a plaintext DNS
# server, and prints the evidence that the answer came over verified DNS-over-TLS instead:
# the answer, what the plaintext server would have said, the gateway's port-53 counter, and
# dotproxy's metrics, and what `dotproxy --self-test` says on the client. Cleans everything up
# on exit. Exits 1 if the evidence does not hold.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/lab.sh"

if [[ -t 1 ]]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
run() { printf '$ %s\n' "$*"; }

[[ -x $DOTPROXY ]] || { echo "demo: $DOTPROXY is missing: run make first" >&2; exit 1; }
lab_up

say "The lab: three network namespaces, documentation addresses, no route out"
cat <<EOF
  (set up by tests/lab/provision/{upstream,gateway,client}.sh, which also provision vagrant/'s VMs)
  client   $LAB_NS_C   $LAB_C4, $LAB_C6   (its resolver: whatever it likes; here $LAB_DECOY4)
     |
  gateway  $LAB_NS_G   $LAB_LAN_IF $LAB_GL4 | $LAB_WAN_IF $LAB_GW4   runs dotproxy
     |
  upstream $LAB_NS_U   $LAB_DOT4:853  Unbound, DNS-over-TLS, certificate for $LAB_AUTH
                       $LAB_DECOY4:53  a plaintext DNS server that answers differently
EOF

say "Start dotproxy on the gateway and install the interception rules"
mapfile -t args < <(lab_dotproxy_args)
run "dotproxy --mode tproxy ${args[*]}"
lab_dotproxy_start --mode tproxy "${args[@]}" || { echo "demo: dotproxy did not start" >&2; exit 1; }
rules=(up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT")
run "iptables/dotproxy-rules ${rules[*]}"
lab_rules "${rules[@]}" || exit 1
lab_wan53_reset

say "On the client: an ordinary query to the plaintext server $LAB_DECOY4"
run "dig $LAB_WWW @$LAB_DECOY4"
answer_out=$(lab_c dig "$LAB_WWW" "@$LAB_DECOY4" 2>&1)
grep -v '^$' <<<"$answer_out" | sed 's/^/  /'
got=$(dig_answers A <<<"$answer_out" | paste -sd, -)
server=$(dig_server <<<"$answer_out")

say "What $LAB_DECOY4 itself would have answered (asked directly, from the upstream side)"
run "dig +short $LAB_WWW @$LAB_DECOY4"
decoy=$(lab_dig u +short "$LAB_WWW" "@$LAB_DECOY4")
printf '  %s\n' "$decoy"
say "What the DoT server says (kdig over TLS, certificate checked against the lab's CA)"
run "kdig +tls-ca=ca.pem +tls-hostname=$LAB_AUTH +short $LAB_WWW @$LAB_DOT4"
dot=$(lab_g kdig +retry=0 +timeout=3 +tls-ca="$LAB_CA" +tls-hostname="$LAB_AUTH" +short "$LAB_WWW" "@$LAB_DOT4" 2>&1)
printf '  %s\n' "$dot"

say "Packets to port 53 that left the gateway towards the upstream side ($LAB_WAN_IF)"
for t in iptables ip6tables; do
	lab_g "$t" -w -t mangle -L "$LAB_COUNT_CHAIN" -nvx | sed -n '3,$p' |
		awk -v t="$t" '{ printf "  %-9s %-4s dport 53: %s packets\n", t, ($4 == 6 || $4 == "tcp") ? "tcp" : "udp", $1 }'
done
count=$(lab_wan53_count)

say "dotproxy's metrics (GET /metrics; series at 0 left out)"
lab_metrics | grep -E '^dotproxy_(queries_total|answers_total|tls_handshakes_total|tls_failures_total|upstream_queries_total|upstream_up)' |
	awk '$NF != 0 || /^dotproxy_tls_failures_total/' | sed 's/^/  /'

say "On the client: is my DNS private right now?"
run "dotproxy --self-test $LAB_DECOY4 $LAB_DECOY6"
st_out=$(lab_c "$DOTPROXY" --self-test "$LAB_DECOY4" "$LAB_DECOY6" 2>&1)
st_rc=$?
sed 's/^/  /' <<<"$st_out"

say "Verdict"
rc=0
if [[ $got == "$LAB_WWW_A" && $got != "$decoy" && $dot == "$LAB_WWW_A" ]]; then
	echo "  the client got $got, the DoT server's record, not the plaintext server's $decoy"
else
	echo "  FAIL: the client got '${got:-nothing}' (DoT server: '$dot', plaintext server: '$decoy')"
	rc=1
fi
if [[ $server == "$LAB_DECOY4#53" ]]; then
	echo "  from $server, the address it asked (dig's SERVER line)"
else
	echo "  FAIL: the answer came from '${server:-nowhere}', not $LAB_DECOY4#53"
	rc=1
fi
if [[ $count == 0 ]]; then
	echo "  and not one packet to port 53 left the gateway: the query went out over TLS only"
else
	echo "  FAIL: $count packets to port 53 left the gateway in plaintext"
	rc=1
fi
if [[ $st_rc == 0 ]]; then
	echo "  and dotproxy --self-test on the client finds UDP and TCP, IPv4 and IPv6 all private"
else
	echo "  FAIL: dotproxy --self-test on the client exited $st_rc"
	rc=1
fi

say "Cleaning up (dotproxy, Unbound, namespaces, temp files)"
lab_dotproxy_stop
lab_down
echo "  done"
exit $rc
