#!/usr/bin/env bash
# test_rules.sh: iptables/dotproxy-rules installs, repeats and removes exactly its own
# rules, for every backend x mode x scope, and rejects bad flags without touching anything.
# Needs root. Works in a private network namespace (removed by a trap); sends no traffic.
# Prints TAP lines `ok - ...` / `not ok - ... (what was seen)`; exits 1 if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RULES=$(cd "$HERE/../.." && pwd)/iptables/dotproxy-rules
NS=dprules-$$
TMP=$(mktemp -d /tmp/test_rules.XXXXXX)
FAILED=0
COUNT=0

cleanup() {
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() {
	COUNT=$((COUNT + 1))
	echo "ok - $1"
}

not_ok() {
	COUNT=$((COUNT + 1))
	FAILED=$((FAILED + 1))
	echo "not ok - $1 ($2)"
}

# check DESC COMMAND...: ok when the command succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc" "${SEEN:-failed}"; fi
	SEEN=""
}

in_ns() { ip netns exec "$NS" "$@"; }

# Runs dotproxy-rules in the namespace; leaves RC, OUT and ERR.
run() {
	in_ns "$RULES" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

# Everything dotproxy-rules could touch, with counters and timestamps removed.
dump() {
	local t f
	for t in iptables ip6tables; do
		echo "### $t-save"
		in_ns "$t-save" 2>&1 | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//'
	done
	echo "### nft"
	in_ns nft list ruleset 2>&1 | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
	echo "### nft dotproxy"
	in_ns nft list table inet dotproxy 2>/dev/null
	for f in 4 6; do
		echo "### ip -$f rule"
		in_ns ip -"$f" rule show
		echo "### ip -$f route"
		in_ns ip -"$f" route show table all
	done
}

# One section of a dump ("iptables-save", "nft", "ip -4 rule", ...).
section() { awk -v s="### $2" '/^### /{on = ($0 == s); next} on' <<<"$1"; }

# Shows how two dumps differ, on one line.
difference() {
	diff <(echo "$1") <(echo "$2") | grep '^[<>]' | head -4 | tr '\n' ' ' | tr -s '\t ' ' '
}

same_dump() {
	[[ $1 == "$2" ]] && return 0
	SEEN="differs: $(difference "$1" "$2")"
	return 1
}

ran_quietly() {
	[[ $RC == 0 && -z $ERR ]] && return 0
	SEEN="exit $RC, stderr: ${ERR//$'\n'/ | }"
	return 1
}

# has DUMP SECTION REGEX: the section has a line matching the extended regex.
has() {
	grep -qE -- "$3" <<<"$(section "$1" "$2")" && return 0
	SEEN="no line matching '$3' in $2"
	return 1
}

# count_is DUMP SECTION REGEX N: exactly N lines of the section match.
count_is() {
	local n
	n=$(grep -cE -- "$3" <<<"$(section "$1" "$2")")
	[[ $n == "$4" ]] && return 0
	SEEN="$n lines matching '$3' in $2, wanted $4"
	return 1
}

# output_is RC REGEX: the last run exited RC and its stdout matches the extended regex.
output_is() {
	[[ $RC == "$1" && $OUT =~ $2 ]] && return 0
	SEEN="exit $RC, stdout: ${OUT:0:70}"
	return 1
}

lacks() {
	local line
	line=$(grep -E -- "$3" <<<"$(section "$1" "$2")" | head -1)
	[[ -z $line ]] && return 0
	SEEN="unexpected: $line"
	return 1
}

# ----------------------------------------------------------------------- setup

if ((EUID != 0)); then
	echo "not ok - test_rules.sh needs root (ran as uid $EUID)"
	exit 1
fi
for tool in ip iptables ip6tables nft; do
	if ! command -v "$tool" >/dev/null; then
		echo "not ok - test_rules.sh needs $tool (apt-get install -y iptables nftables iproute2)"
		exit 1
	fi
done

ip netns add "$NS" || { echo "not ok - create namespace $NS"; exit 1; }
in_ns ip link set lo up
# Two LAN-side interfaces for gateway scope; their peers stay down, nothing is sent.
in_ns ip link add lan0 type veth peer name lan0-peer
in_ns ip link add lan1 type veth peer name lan1-peer

# Foreign state the script must leave exactly as it is: rules in a table it never uses,
# a rule in a builtin chain it shares (nat PREROUTING), an empty user chain in mangle,
# an nft table, an ip rule, and a route in the routing table it uses.
in_ns iptables -A INPUT -p tcp --dport 22 -j ACCEPT
in_ns ip6tables -A INPUT -p tcp --dport 22 -j ACCEPT
in_ns iptables -t nat -A PREROUTING -i lan1 -p tcp --dport 8080 -j REDIRECT --to-ports 80
in_ns iptables -t mangle -N FOREIGN_EMPTY
in_ns nft add table inet foreign
in_ns nft add chain inet foreign input '{ type filter hook input priority 0; policy accept; }'
in_ns nft add rule inet foreign input udp dport 9 drop
in_ns ip rule add fwmark 0x8 lookup 200
in_ns ip -6 rule add fwmark 0x8 lookup 200
in_ns ip route add blackhole 203.0.113.0/24 table 100
in_ns ip -6 route add blackhole 2001:db8:ffff::/48 table 100

CLEAN=$(dump)

# ------------------------------------------------------------- the expectations

# Checks that dump D holds the rules for BACKEND MODE SCOPE, and nothing for the rest.
expect_installed() {
	local d=$1 backend=$2 mode=$3 scope=$4 what="$2 $3 $4" ifc f t
	local host=0 gw=0
	[[ $scope == gateway ]] || host=1
	[[ $scope == host ]] || gw=1

	if [[ $mode == tproxy ]]; then
		for f in 4 6; do
			check "$what: ip -$f rule fwmark 0x1/0x1 lookup 100" \
				has "$d" "ip -$f rule" 'from all fwmark 0x1/0x1 lookup 100 proto 68'
			check "$what: ip -$f local default route in table 100" \
				has "$d" "ip -$f route" '^local default dev lo table 100 '
		done
	else
		check "$what: no fwmark ip rule" lacks "$d" "ip -4 rule" 'proto 68'
		check "$what: no local route in table 100" lacks "$d" "ip -6 route" '^local default dev lo table 100'
	fi

	if [[ $backend == nft ]]; then
		check "$what: no iptables chains" lacks "$d" iptables-save DOTPROXY
		check "$what: no ip6tables chains" lacks "$d" ip6tables-save DOTPROXY
		check "$what: nft table inet dotproxy" has "$d" nft '^table inet dotproxy \{'
		check "$what: nft skips the daemon's mark" has "$d" nft 'meta mark 0x00000444 return'
		if [[ $mode == tproxy ]]; then
			if ((gw)); then
				check "$what: nft tproxy ipv4 from lan0 and lan1" has "$d" nft \
					'iifname \{ .*"lan0", "lan1".*\} meta nfproto ipv4 .*th dport 53 tproxy ip to :5353 meta mark set meta mark \| 0x00000001 accept'
			fi
			if ((host)); then
				check "$what: nft tproxy ipv6 from lo" has "$d" nft \
					'iifname .*"lo".* meta nfproto ipv6 .*th dport 53 tproxy ip6 to :5353 '
				check "$what: nft route output chain marks port 53" has "$d" nft \
					'type route hook output priority mangle'
				check "$what: nft output mark rule" has "$d" nft \
					'^[[:space:]]+meta l4proto \{ tcp, udp \} th dport 53 meta mark set meta mark \| 0x00000001$'
			else
				check "$what: no nft output chain" lacks "$d" "nft dotproxy" 'hook output'
				check "$what: lo not intercepted" lacks "$d" "nft dotproxy" '"lo"'
			fi
			check "$what: nft drops what tproxy did not take" has "$d" nft 'th dport 53 drop$'
		else
			if ((gw)); then
				check "$what: nft redirect from lan0 and lan1" has "$d" nft \
					'iifname \{ "lan0", "lan1" \} meta l4proto \{ tcp, udp \} th dport 53 redirect to :5353'
			else
				check "$what: no nft prerouting chain" lacks "$d" "nft dotproxy" 'hook prerouting'
			fi
			if ((host)); then
				check "$what: nft nat output redirect" has "$d" nft \
					'^[[:space:]]+meta l4proto \{ tcp, udp \} th dport 53 redirect to :5353$'
			else
				check "$what: no nft output chain" lacks "$d" "nft dotproxy" 'hook output'
			fi
		fi
		return
	fi

	check "$what: no nft table" lacks "$d" nft 'table inet dotproxy'
	for t in iptables ip6tables; do
		if [[ $mode == tproxy ]]; then
			check "$t $what: no nat chains" lacks "$d" "$t-save" 'REDIRECT --to-ports 5353'
			check "$t $what: PREROUTING jumps to DOTPROXY_PRE" has "$d" "$t-save" '^-A PREROUTING -j DOTPROXY_PRE$'
			check "$t $what: DOTPROXY_PRE skips the daemon's mark first" has "$d" "$t-save" \
				'^-A DOTPROXY_PRE -m mark --mark 0x444 -j RETURN$'
			check "$t $what: DOTPROXY_PRE skips local port 5353" has "$d" "$t-save" \
				'^-A DOTPROXY_PRE -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 5353 -j RETURN$'
			local ifaces=()
			((host)) && ifaces+=(lo)
			((gw)) && ifaces+=(lan0 lan1)
			for ifc in "${ifaces[@]}"; do
				check "$t $what: TPROXY udp from $ifc" has "$d" "$t-save" \
					"^-A DOTPROXY_PRE -i $ifc -p udp -m udp --dport 53 -j TPROXY --on-port 5353 .*--tproxy-mark 0x1/0x1$"
				check "$t $what: TPROXY tcp from $ifc" has "$d" "$t-save" \
					"^-A DOTPROXY_PRE -i $ifc -p tcp -m tcp --dport 53 -j TPROXY --on-port 5353 "
			done
			if ((host)); then
				check "$t $what: OUTPUT jumps to DOTPROXY_OUT" has "$d" "$t-save" '^-A OUTPUT -j DOTPROXY_OUT$'
				check "$t $what: DOTPROXY_OUT marks udp 53" has "$d" "$t-save" \
					'^-A DOTPROXY_OUT -p udp -m udp --dport 53 -j MARK --set-xmark 0x1/0x1$'
			else
				check "$t $what: no DOTPROXY_OUT" lacks "$d" "$t-save" 'DOTPROXY_OUT'
				check "$t $what: lo not intercepted" lacks "$d" "$t-save" '-i lo '
			fi
		else
			check "$t $what: no mangle chains" lacks "$d" "$t-save" '-j (TPROXY|MARK)'
			if ((gw)); then
				check "$t $what: nat PREROUTING jumps to DOTPROXY_PRE" has "$d" "$t-save" '^-A PREROUTING -j DOTPROXY_PRE$'
				for ifc in lan0 lan1; do
					check "$t $what: REDIRECT tcp from $ifc" has "$d" "$t-save" \
						"^-A DOTPROXY_PRE -i $ifc -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 5353$"
				done
			else
				check "$t $what: no DOTPROXY_PRE" lacks "$d" "$t-save" 'DOTPROXY_PRE'
			fi
			if ((host)); then
				check "$t $what: nat OUTPUT jumps to DOTPROXY_OUT" has "$d" "$t-save" '^-A OUTPUT -j DOTPROXY_OUT$'
				check "$t $what: DOTPROXY_OUT skips the daemon's mark" has "$d" "$t-save" \
					'^-A DOTPROXY_OUT -m mark --mark 0x444 -j RETURN$'
				check "$t $what: REDIRECT udp from this host" has "$d" "$t-save" \
					'^-A DOTPROXY_OUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 5353$'
			else
				check "$t $what: no DOTPROXY_OUT" lacks "$d" "$t-save" 'DOTPROXY_OUT'
			fi
		fi
	done
}

# ---------------------------------------------------------------------- the tests

run status
check "status with nothing installed says so" output_is 0 '^dotproxy-rules: nothing installed$'
run down
check "down with nothing installed succeeds quietly" ran_quietly
check "down with nothing installed prints nothing" output_is 0 '^$'
check "down with nothing installed changes nothing" same_dump "$CLEAN" "$(dump)"

for backend in iptables nft; do
	for mode in tproxy redirect; do
		for scope in host gateway both; do
			what="$backend $mode $scope"
			args=(--mode "$mode" --scope "$scope" --backend "$backend")
			[[ $scope == host ]] || args+=(--in-interface lan0 --in-interface lan1)

			before=$(dump)
			run up "${args[@]}"
			check "$what: up succeeds quietly" ran_quietly
			installed=$(dump)
			expect_installed "$installed" "$backend" "$mode" "$scope"

			run up "${args[@]}"
			check "$what: second up succeeds quietly" ran_quietly
			check "$what: second up leaves the ruleset byte-identical" same_dump "$installed" "$(dump)"

			run status
			if [[ $backend == nft ]]; then
				check "$what: status shows the rules" output_is 0 'table inet dotproxy'
			else
				check "$what: status shows the rules" output_is 0 'jumps to DOTPROXY_'
			fi

			run down "${args[@]}"
			check "$what: down succeeds quietly" ran_quietly
			check "$what: down restores the ruleset from before up" same_dump "$before" "$(dump)"
			run down "${args[@]}"
			check "$what: second down succeeds quietly" ran_quietly
		done
	done
done

# up with other flags replaces what is there, and down needs no flags to remove it all.
run up --mode tproxy --scope both --in-interface lan0 --port 5300 --tproxy-mark 0x2/0x2 --table 200
check "up with --port/--tproxy-mark/--table succeeds" ran_quietly
d=$(dump)
check "custom: ip rule uses the given mark and table" has "$d" "ip -6 rule" 'fwmark 0x2/0x2 lookup 200 proto 68'
check "custom: TPROXY to the given port and mark" has "$d" iptables-save \
	'-i lan0 -p udp -m udp --dport 53 -j TPROXY --on-port 5300 .*--tproxy-mark 0x2/0x2$'
run up --mode redirect --scope host --backend nft
check "switch to nft redirect succeeds" ran_quietly
d=$(dump)
check "switch: iptables chains gone" lacks "$d" iptables-save DOTPROXY
check "switch: ip rule gone" lacks "$d" "ip -4 rule" 'proto 68'
check "switch: route gone" lacks "$d" "ip -4 route" 'table 200'
check "switch: nft redirect installed" has "$d" nft 'th dport 53 redirect to :5353'
run up --mode tproxy --scope host --backend nft
run up --mode tproxy --scope gateway --in-interface lan1 --table 300
check "switch back to iptables tproxy succeeds" ran_quietly
d=$(dump)
check "switch back: nft table gone" lacks "$d" nft dotproxy
check "switch back: exactly one ip rule of ours" count_is "$d" "ip -4 rule" 'fwmark 0x1/0x1 lookup 300 proto 68$' 1
check "switch back: exactly one route of ours" count_is "$d" "ip -4 route" 'table 300' 1
run down
check "down without flags succeeds quietly" ran_quietly
check "down without flags restores the clean ruleset" same_dump "$CLEAN" "$(dump)"

# An identical ip rule and route someone else added are used, and left in place by down.
in_ns ip rule add fwmark 0x1/0x1 lookup 100
in_ns ip route add local default dev lo table 100
before=$(dump)
run up --mode tproxy --scope host
check "up next to an existing identical ip rule and route succeeds" ran_quietly
d=$(dump)
check "no second v4 ip rule added" count_is "$d" "ip -4 rule" 'fwmark 0x1/0x1 lookup 100' 1
check "no second v4 route added" count_is "$d" "ip -4 route" '^local default dev lo table 100' 1
check "v6 ip rule added" has "$d" "ip -6 rule" 'fwmark 0x1/0x1 lookup 100 proto 68'
run down
check "down keeps the ip rule and route it did not add" same_dump "$before" "$(dump)"
in_ns ip rule del fwmark 0x1/0x1 lookup 100
in_ns ip route del local default dev lo table 100
check "back to the clean ruleset" same_dump "$CLEAN" "$(dump)"

# Bad flags: exit 2, one "dotproxy-rules: " line on stderr, nothing changed.
bad() {
	local desc=$1
	shift
	run "$@"
	local lines
	lines=$(grep -c '' <<<"$ERR")
	if [[ $RC == 2 && $lines == 1 && $ERR == "dotproxy-rules: "* && -z $OUT ]]; then
		check "bad flags: $desc" same_dump "$CLEAN" "$(dump)"
	else
		not_ok "bad flags: $desc" "exit $RC, stdout '${OUT:0:60}', stderr: ${ERR//$'\n'/ | }"
	fi
}
bad "no action" --mode tproxy --scope host
bad "unknown action" sideways --mode tproxy --scope host
bad "two actions" up down --mode tproxy --scope host
bad "up without --mode" up --scope host
bad "up without --scope" up --mode tproxy
bad "bad mode" up --mode dnat --scope host
bad "bad scope" up --mode tproxy --scope galaxy
bad "gateway without --in-interface" up --mode tproxy --scope gateway
bad "both without --in-interface" up --mode redirect --scope both
bad "missing interface" up --mode tproxy --scope gateway --in-interface lan0 --in-interface nosuch0
bad "--in-interface with host scope" up --mode tproxy --scope host --in-interface lan0
bad "port 0" up --mode tproxy --scope host --port 0
bad "port 65536" up --mode tproxy --scope host --port 65536
bad "port not a number" up --mode tproxy --scope host --port 53a
bad "--port without a value" up --mode tproxy --scope host --port
bad "mark 0" up --mode tproxy --scope host --mark 0
bad "mark over 32 bits" up --mode tproxy --scope host --mark 0x100000000
bad "mark not a number" up --mode tproxy --scope host --mark zz
bad "tproxy mark outside its mask" up --mode tproxy --scope host --tproxy-mark 0x3/0x1
bad "daemon mark caught by the tproxy mark" up --mode tproxy --scope host --mark 0x445
bad "table 254 (main)" up --mode tproxy --scope host --table 254
bad "table 0" up --mode tproxy --scope host --table 0
bad "bad backend" up --mode tproxy --scope host --backend pf
bad "unknown option" up --mode tproxy --scope host --bogus
bad "unknown option for down" down --bogus

# A backend whose tool is missing: a PATH with everything but nft.
mkdir "$TMP/bin"
for tool in bash env ip iptables ip6tables grep sed cat; do
	ln -s "$(command -v "$tool")" "$TMP/bin/$tool"
done
in_ns env PATH="$TMP/bin" "$RULES" up --mode tproxy --scope host --backend nft >"$TMP/out" 2>"$TMP/err"
RC=$?
ERR=$(cat "$TMP/err")
if [[ $RC == 2 && $ERR == "dotproxy-rules: nft not found"* && $(grep -c '' <<<"$ERR") == 1 ]]; then
	check "bad flags: --backend nft without nft" same_dump "$CLEAN" "$(dump)"
else
	not_ok "bad flags: --backend nft without nft" "exit $RC, stderr: $ERR"
fi

# tproxy cannot route to lo while lo is down.
in_ns ip link set lo down
down_lo=$(dump)
run up --mode tproxy --scope host
if [[ $RC == 2 && $ERR == "dotproxy-rules: "*lo* ]]; then
	check "bad flags: tproxy with lo down" same_dump "$down_lo" "$(dump)"
else
	not_ok "bad flags: tproxy with lo down" "exit $RC, stderr: $ERR"
fi
in_ns ip link set lo up
# (taking lo down dropped the foreign IPv6 route through lo: put it back)
in_ns ip -6 route replace blackhole 2001:db8:ffff::/48 table 100

run --help
check "--help prints the usage" output_is 0 '^Usage: .*--tproxy-mark'

check "namespace ends as clean as it started" same_dump "$CLEAN" "$(dump)"

echo "# $COUNT assertions, $FAILED failed"
((FAILED == 0))
