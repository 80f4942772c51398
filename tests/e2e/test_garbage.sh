#!/usr/bin/env bash
# tests/e2e/test_garbage.sh: malformed client input is dropped or answered FORMERR, counted, and
# never crashes dotproxy, stalls other clients or leaks to the upstream side.
#
# Sent to the decoy's address (intercepted, tproxy, gateway scope) by tests/lab/dnsclient.py:
# packets shorter than a header, a query with QR set, compression loops and forward pointers,
# bad label types, names over 255 octets, cut questions, no or two questions, trailing junk, a
# bad OPT record, random bytes (seeded, the seed is printed), and TCP streams with bad lengths or
# cut off. Then, while half-sent TCP messages hold connections open, good queries still work.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

SEED=${GARBAGE_SEED:-$RANDOM}
NRANDOM=300
diag "random packets: seed $SEED (GARBAGE_SEED=$SEED to repeat)"

mapfile -t args < <(lab_dotproxy_args)
lab_dotproxy_start --mode tproxy "${args[@]}" || lab_bail "dotproxy did not start: $(tail -n 3 "$LAB_DP_LOG")"
pid=$LAB_DP_PID
lab_rules up --mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" ||
	lab_bail "dotproxy-rules up failed"
lab_expect_www "before the garbage: answered" c "$LAB_DECOY4" A
lab_wan53_reset
m0=$(lab_metric0 dotproxy_malformed_total)
malformed=0

for server in "$LAB_DECOY4" "$LAB_DECOY6"; do
	fam=IPv4
	[[ $server == *:* ]] && fam=IPv6
	out=$(lab_c "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" garbage "$server" "$SEED" "$NRANDOM" 2>&1)
	line=$(grep '^short ' <<<"$out")
	check "$fam: 12 packets shorter than a DNS header are dropped" "${line:-$out}" [ "$line" == "short sent=12 replies=0" ]
	malformed=$((malformed + 12))
	ncase=0
	while read -r _ name reply; do
		ncase=$((ncase + 1))
		reply=${reply#reply=}
		check "$fam: $name: dropped or FORMERR" "reply=$reply" [ "$reply" == none -o "$reply" == FORMERR ]
	done < <(grep '^case ' <<<"$out")
	check "$fam: all crafted cases were sent" "$ncase cases; $(tail -n 3 <<<"$out")" [ "$ncase" -ge 12 ]
	malformed=$((malformed + ncase))
	line=$(grep '^random ' <<<"$out")
	diag "$fam: ${line:-no random line: $out}"
	line=$(grep '^tcp ' <<<"$out" | paste -sd' ')
	diag "$fam: ${line:-no tcp line}"
	alive=no
	lab_dotproxy_alive && alive=yes
	check "$fam: dotproxy (pid $pid) still running after the garbage" "alive=$alive; log: $(tail -n 3 "$LAB_DP_LOG")" \
		[ $alive == yes ]
done

# half-sent TCP messages hold three connections open while other clients ask
lab_spawn c "$LAB_DIR/hold.out" "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" hold "$LAB_DECOY4" 8
hold_pid=$LAB_SPAWN_PID
for ((i = 0; i < 40; i++)); do [[ -s $LAB_DIR/hold.out ]] && break; sleep 0.05; done
diag "stalled TCP clients: $(cat "$LAB_DIR/hold.out")"
lab_expect_www "after the garbage, beside stalled TCP clients: UDP/IPv4 answered" c "$LAB_DECOY4" A +notcp
lab_expect_www "after the garbage, beside stalled TCP clients: TCP/IPv4 answered" c "$LAB_DECOY4" A +tcp
lab_expect_www "after the garbage, beside stalled TCP clients: UDP/IPv6 answered" c "$LAB_DECOY6" AAAA +notcp
lab_expect_www "after the garbage, beside stalled TCP clients: TCP/IPv6 answered" c "$LAB_DECOY6" AAAA +tcp
lab_stop_pid "$hold_pid"

m1=$(lab_metric0 dotproxy_malformed_total)
check "malformed packets counted (at least the $malformed crafted ones)" \
	"dotproxy_malformed_total went from $m0 to $m1" [ $((m1 - m0)) -ge "$malformed" ]
lab_expect_wan53_zero "garbage: nothing reached the upstream side in plaintext"
alive=no
lab_dotproxy_alive && alive=yes
check "dotproxy is the same process (pid $pid) at the end" "alive=$alive" [ "$LAB_DP_PID" == "$pid" -a $alive == yes ]
lab_dotproxy_stop
check "dotproxy exits 0 on SIGTERM" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
lab_finish
