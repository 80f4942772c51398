#!/usr/bin/env bash
# test_rules.sh: iptables/dotproxy-rules installs, repeats and removes exactly its own
# rules, for every backend x mode x scope, and rejects bad flags without touching anything;
# then, in a client -> gateway -> server namespace trio (192.0.2.0/24, 198.51.100.0/24, no
# route out), that nfqueue mode with no daemon on the queue fails closed, or open with
# --fail-open. Needs root. Works only in namespaces it creates (removed by a trap).
# Prints TAP lines `ok - ...` / `not ok - ... (what was seen)`; exits 1 if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RULES=$(cd "$HERE/../.." && pwd)/iptables/dotproxy-rules
NS=dprules-$$
C=dprules-$$-c G=dprules-$$-g S=dprules-$$-s     # the behaviour trio
TMP=$(mktemp -d /tmp/test_rules.XXXXXX)
FAILED=0
COUNT=0
SKIPPED=0
RUN_PATH=$PATH      # PATH for dotproxy-rules (a stand-in nft goes first when needed)
RESPONDER=""        # PID of the server's DNS responder

cleanup() {
	local n
	[[ -z $RESPONDER ]] || kill "$RESPONDER" 2>/dev/null
	for n in "$NS" "$C" "$G" "$S"; do ip netns del "$n" 2>/dev/null; done
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

# skip DESC REASON: a TAP skip (an ok line that says what was not checked, and why).
skip() {
	COUNT=$((COUNT + 1))
	SKIPPED=$((SKIPPED + 1))
	echo "ok - $1 # SKIP $2"
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
	in_ns env PATH="$RUN_PATH" "$RULES" "$@" >"$TMP/out" 2>"$TMP/err"
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

# tables DUMP TOOL: a dump of one section per table of TOOL-save ("iptables raw", ...).
tables() {
	section "$1" "$2-save" | awk -v t="$2" '/^\*/{print "### " t " " substr($0, 2); next} /^COMMIT/{next} 1'
}

# chain_is DUMP SECTION CHAIN LINE...: the rules of CHAIN in the section are exactly the
# LINEs, in order.
chain_is() {
	local got want
	got=$(grep -- "^-A $3 " <<<"$(section "$1" "$2")")
	want=$(printf '%s\n' "${@:4}")
	[[ $got == "$want" ]] && return 0
	SEEN="$3 holds: ${got//$'\n'/ | }"
	return 1
}

# nft_chain_is DUMP CHAIN LINE...: chain CHAIN of our nft table holds exactly the LINEs
# (its hook line first), in order.
nft_chain_is() {
	local got want
	got=$(section "$1" "nft dotproxy" | awk -v c="chain $2 {" '$1 " " $2 " " $3 == c {on = 1; next}
		on && /^[[:space:]]*}/ {exit} on && NF {sub(/^[[:space:]]+/, ""); print}')
	want=$(printf '%s\n' "${@:3}")
	[[ $got == "$want" ]] && return 0
	SEEN="$2 holds: ${got//$'\n'/ | }"
	return 1
}

# first_is DUMP SECTION CHAIN LINE: the first rule of CHAIN in the section is LINE.
first_is() {
	local first
	first=$(grep -m1 -- "^-A $3 " <<<"$(section "$1" "$2")")
	[[ $first == "$4" ]] && return 0
	SEEN="first rule of $3: ${first:-none}"
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
# rules in builtin chains it shares (nat PREROUTING, raw OUTPUT; ip6tables raw stays
# empty, so down must remove that table again), an empty user chain in mangle, an nft
# table, an ip rule, and a route in the routing table it uses.
in_ns iptables -A INPUT -p tcp --dport 22 -j ACCEPT
in_ns ip6tables -A INPUT -p tcp --dport 22 -j ACCEPT
in_ns iptables -t nat -A PREROUTING -i lan1 -p tcp --dport 8080 -j REDIRECT --to-ports 80
in_ns iptables -t mangle -N FOREIGN_EMPTY
in_ns iptables -t raw -A OUTPUT -p udp --dport 123 -j CT --notrack
in_ns nft add table inet foreign
in_ns nft add chain inet foreign input '{ type filter hook input priority 0; policy accept; }'
in_ns nft add rule inet foreign input udp dport 9 drop
in_ns ip rule add fwmark 0x8 lookup 200
in_ns ip -6 rule add fwmark 0x8 lookup 200
in_ns ip route add blackhole 203.0.113.0/24 table 100
in_ns ip -6 route add blackhole 2001:db8:ffff::/48 table 100

CLEAN=$(dump)

# This kernel may lack nft_queue (CONFIG_NFT_QUEUE is often off): nft then refuses every
# `queue` statement, and dotproxy-rules refuses nfqueue mode with the nft backend. The nft
# nfqueue table is then checked through a stand-in nft that writes "queue num N [bypass]"
# as the comment "queue num N [bypass]": the rest of the table is the kernel's own.
if in_ns nft -c -f - <<<'table inet dprules_probe { chain c { queue num 0; }; }' 2>/dev/null; then
	NFT_QUEUE=1
else
	NFT_QUEUE=0
	mkdir "$TMP/standin"
	REAL_NFT=$(command -v nft)
	export REAL_NFT
	cat >"$TMP/standin/nft" <<'EOF'
#!/usr/bin/env bash
# Stand-in nft: "queue num N [bypass]" becomes a comment; the rest goes to the real nft.
if [[ " $* " == *" -f - "* ]]; then
	sed -E 's/queue num ([0-9]+)( bypass)?/comment "queue num \1\2"/' | "$REAL_NFT" "$@"
	exit "${PIPESTATUS[1]}"
fi
exec "$REAL_NFT" "$@"
EOF
	chmod +x "$TMP/standin/nft"
	echo "# this kernel has no nft_queue: nft nfqueue tables are checked with a stand-in queue"
fi

# use_standin BACKEND MODE: dotproxy-rules runs with the stand-in nft when it needs one.
use_standin() {
	RUN_PATH=$PATH
	if [[ ${1:-} == nft && ${2:-} == nfqueue ]] && ((!NFT_QUEUE)); then RUN_PATH=$TMP/standin:$PATH; fi
}

# nft_queue_str N [bypass]: how `nft list` shows our queue statement (or its stand-in).
nft_queue_str() {
	local q="queue num $1${2:+ $2}"
	if ((NFT_QUEUE)); then echo "$q"; else echo "comment \"$q\""; fi
}

# ------------------------------------------------------------- the expectations

# Checks that dump D holds the rules for BACKEND MODE SCOPE, and nothing for the rest.
expect_installed() {
	local d=$1 backend=$2 mode=$3 scope=$4 what="$2 $3 $4" ifc f t tb
	local host=0 gw=0
	[[ $scope == gateway ]] || host=1
	[[ $scope == host ]] || gw=1

	if [[ $mode != redirect ]]; then    # tproxy, and nfqueue for TCP
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
			check "$what: no nft queue" lacks "$d" "nft dotproxy" 'priority raw'
		elif [[ $mode == nfqueue ]]; then
			expect_nft_nfqueue "$d" "$what" "$host" "$gw"
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
		tb=$(tables "$d" "$t")
		if [[ $mode == tproxy ]]; then
			check "$t $what: no nat chains" lacks "$d" "$t-save" 'REDIRECT --to-ports 5353'
			check "$t $what: no raw chains" lacks "$tb" "$t raw" DOTPROXY
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
		elif [[ $mode == nfqueue ]]; then
			expect_ipt_nfqueue "$tb" "$t" "$t $what" "$host" "$gw"
		else
			check "$t $what: no mangle chains" lacks "$d" "$t-save" '-j (TPROXY|MARK)'
			check "$t $what: no raw chains" lacks "$tb" "$t raw" DOTPROXY
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

# expect_ipt_nfqueue TABLES TOOL WHAT HOST GW: the default nfqueue chains (queue 0, no
# bypass) of TOOL, given its dump per table: UDP queued in raw, TCP tproxied in mangle.
expect_ipt_nfqueue() {
	local tb=$1 t=$2 what=$3 host=$4 gw=$5 ifc onip=0.0.0.0
	local -a pre=() ifaces=()
	[[ $t == iptables ]] || onip=::
	((host)) && ifaces+=(lo)
	((gw)) && ifaces+=(lan0 lan1)

	check "$what: raw OUTPUT jumps to DOTPROXY_OUT first" first_is "$tb" "$t raw" OUTPUT '-A OUTPUT -j DOTPROXY_OUT'
	if ((host)); then
		check "$what: raw DOTPROXY_OUT: answers untracked, daemon's mark returns, udp 53 queued" \
			chain_is "$tb" "$t raw" DOTPROXY_OUT \
			'-A DOTPROXY_OUT -p udp -m udp --sport 53 -m mark --mark 0x444 -j CT --notrack' \
			'-A DOTPROXY_OUT -m mark --mark 0x444 -j RETURN' \
			'-A DOTPROXY_OUT -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0'
	else
		check "$what: raw DOTPROXY_OUT only keeps the daemon's answers untracked" \
			chain_is "$tb" "$t raw" DOTPROXY_OUT \
			'-A DOTPROXY_OUT -p udp -m udp --sport 53 -m mark --mark 0x444 -j CT --notrack'
	fi
	if ((gw)); then
		check "$what: raw PREROUTING jumps to DOTPROXY_PRE first" first_is "$tb" "$t raw" PREROUTING '-A PREROUTING -j DOTPROXY_PRE'
		check "$what: raw DOTPROXY_PRE: daemon's mark returns, udp 53 from lan0 and lan1 queued" \
			chain_is "$tb" "$t raw" DOTPROXY_PRE \
			'-A DOTPROXY_PRE -m mark --mark 0x444 -j RETURN' \
			'-A DOTPROXY_PRE -i lan0 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0' \
			'-A DOTPROXY_PRE -i lan1 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0'
	else
		check "$what: no raw DOTPROXY_PRE" lacks "$tb" "$t raw" DOTPROXY_PRE
	fi
	check "$what: no --queue-bypass without --fail-open" lacks "$tb" "$t raw" 'bypass'

	pre=('-A DOTPROXY_PRE -m mark --mark 0x444 -j RETURN'
		'-A DOTPROXY_PRE -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 5353 -j RETURN')
	for ifc in "${ifaces[@]}"; do
		pre+=("-A DOTPROXY_PRE -i $ifc -p tcp -m tcp --dport 53 -j TPROXY --on-port 5353 --on-ip $onip --tproxy-mark 0x1/0x1")
	done
	check "$what: mangle PREROUTING jumps to DOTPROXY_PRE first" first_is "$tb" "$t mangle" PREROUTING '-A PREROUTING -j DOTPROXY_PRE'
	check "$what: mangle DOTPROXY_PRE: TPROXY tcp only, from ${ifaces[*]}" chain_is "$tb" "$t mangle" DOTPROXY_PRE "${pre[@]}"
	if ((host)); then
		check "$what: mangle OUTPUT jumps to DOTPROXY_OUT" first_is "$tb" "$t mangle" OUTPUT '-A OUTPUT -j DOTPROXY_OUT'
		check "$what: mangle DOTPROXY_OUT marks tcp 53 only" chain_is "$tb" "$t mangle" DOTPROXY_OUT \
			'-A DOTPROXY_OUT -m mark --mark 0x444 -j RETURN' \
			'-A DOTPROXY_OUT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 5353 -j RETURN' \
			'-A DOTPROXY_OUT -p tcp -m tcp --dport 53 -j MARK --set-xmark 0x1/0x1'
	else
		check "$what: no mangle DOTPROXY_OUT" lacks "$tb" "$t mangle" DOTPROXY_OUT
	fi
	check "$what: no nat chains" lacks "$tb" "$t nat" DOTPROXY
}

# expect_nft_nfqueue DUMP WHAT HOST GW: the default nfqueue table (queue 0, no bypass).
expect_nft_nfqueue() {
	local d=$1 what=$2 host=$3 gw=$4 queue
	queue=$(nft_queue_str 0)
	if ((host)); then
		check "$what: nft raw output: answers untracked, daemon's mark returns, udp 53 queued" \
			nft_chain_is "$d" raw_output 'type filter hook output priority raw; policy accept;' \
			'udp sport 53 meta mark 0x00000444 notrack' \
			'meta mark 0x00000444 return' \
			"udp dport 53 $queue"
		check "$what: nft tproxy ipv6 tcp from lo" has "$d" nft \
			'iifname .*"lo".* meta nfproto ipv6 tcp dport 53 tproxy ip6 to :5353 meta mark set meta mark \| 0x00000001 accept$'
		check "$what: nft route output chain marks tcp 53 only" \
			nft_chain_is "$d" output 'type route hook output priority mangle; policy accept;' \
			'meta mark 0x00000444 return' \
			'fib daddr type local tcp dport 5353 return' \
			'tcp dport 53 meta mark set meta mark | 0x00000001'
	else
		check "$what: nft raw output only keeps the daemon's answers untracked" \
			nft_chain_is "$d" raw_output 'type filter hook output priority raw; policy accept;' \
			'udp sport 53 meta mark 0x00000444 notrack'
		check "$what: no nft mangle output chain" lacks "$d" "nft dotproxy" 'hook output priority mangle'
		check "$what: lo not intercepted" lacks "$d" "nft dotproxy" '"lo"'
	fi
	if ((gw)); then
		check "$what: nft raw prerouting: daemon's mark returns, udp 53 from lan0 and lan1 queued" \
			nft_chain_is "$d" raw_prerouting 'type filter hook prerouting priority raw; policy accept;' \
			'meta mark 0x00000444 return' \
			"iifname { \"lan0\", \"lan1\" } udp dport 53 $queue"
		check "$what: nft tproxy ipv4 tcp from lan0 and lan1" has "$d" nft \
			'iifname \{ .*"lan0", "lan1".*\} meta nfproto ipv4 tcp dport 53 tproxy ip to :5353 meta mark set meta mark \| 0x00000001 accept$'
	else
		check "$what: no nft raw prerouting chain" lacks "$d" "nft dotproxy" 'hook prerouting priority raw'
	fi
	check "$what: nft drops tcp that tproxy did not take" has "$d" nft 'iifname .* tcp dport 53 drop$'
	check "$what: nft tproxies no udp" lacks "$d" "nft dotproxy" 'udp.*tproxy|l4proto \{ tcp, udp \}'
	check "$what: nft has no bypass without --fail-open" lacks "$d" "nft dotproxy" 'bypass'
}

# ---------------------------------------------------------------------- the tests

run status
check "status with nothing installed says so" output_is 0 '^dotproxy-rules: nothing installed$'
run down
check "down with nothing installed succeeds quietly" ran_quietly
check "down with nothing installed prints nothing" output_is 0 '^$'
check "down with nothing installed changes nothing" same_dump "$CLEAN" "$(dump)"

for backend in iptables nft; do
	for mode in tproxy redirect nfqueue; do
		use_standin "$backend" "$mode"
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
use_standin

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

# nfqueue: --queue and --fail-open reach every queue rule, and up without --fail-open
# takes the bypass away again.
for backend in iptables nft; do
	use_standin "$backend" nfqueue
	args=(--mode nfqueue --scope both --in-interface lan0 --queue 65535 --backend "$backend")
	run up "${args[@]}" --fail-open
	check "$backend nfqueue --queue 65535 --fail-open: up succeeds quietly" ran_quietly
	d=$(dump)
	if [[ $backend == iptables ]]; then
		for t in iptables ip6tables; do
			check "$t --fail-open: both queue rules use queue 65535 with bypass" count_is "$(tables "$d" "$t")" "$t raw" \
				'^-A DOTPROXY_(PRE -i lan0|OUT) -p udp -m udp --dport 53 -j NFQUEUE --queue-num 65535 --queue-bypass$' 2
		done
	else
		check "nft --fail-open: both queue rules use queue 65535 with bypass" count_is "$d" "nft dotproxy" \
			"udp dport 53 $(nft_queue_str 65535 bypass)\$" 2
	fi
	run up "${args[@]}"
	check "$backend nfqueue without --fail-open: up succeeds quietly" ran_quietly
	d=$(dump)
	if [[ $backend == iptables ]]; then
		for t in iptables ip6tables; do
			check "$t without --fail-open: both queue rules, no bypass" count_is "$(tables "$d" "$t")" "$t raw" \
				'^-A DOTPROXY_(PRE -i lan0|OUT) -p udp -m udp --dport 53 -j NFQUEUE --queue-num 65535$' 2
		done
		check "without --fail-open: no bypass left" lacks "$d" iptables-save 'bypass'
	else
		check "nft without --fail-open: both queue rules, no bypass" count_is "$d" "nft dotproxy" \
			"udp dport 53 $(nft_queue_str 65535)\$" 2
		check "nft without --fail-open: no bypass left" lacks "$d" "nft dotproxy" 'bypass'
	fi
	run down "${args[@]}"
	check "$backend nfqueue --queue 65535: down restores the clean ruleset" same_dump "$CLEAN" "$(dump)"
done
use_standin

# Switching to and from nfqueue replaces the rules of the previous mode.
run up --mode tproxy --scope both --in-interface lan0
run up --mode nfqueue --scope both --in-interface lan0
check "switch tproxy -> nfqueue succeeds quietly" ran_quietly
d=$(dump)
for t in iptables ip6tables; do
	check "switch tproxy -> nfqueue: no udp TPROXY left in $t" lacks "$d" "$t-save" '-p udp .*-j TPROXY'
	check "switch tproxy -> nfqueue: no udp MARK left in $t" lacks "$d" "$t-save" '-p udp .*-j MARK'
	check "switch tproxy -> nfqueue: $t raw queues udp from lan0" has "$(tables "$d" "$t")" "$t raw" \
		'^-A DOTPROXY_PRE -i lan0 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0$'
done
check "switch tproxy -> nfqueue: exactly one ip rule of ours" count_is "$d" "ip -4 rule" 'proto 68' 1
run up --mode redirect --scope host
check "switch nfqueue -> redirect succeeds quietly" ran_quietly
d=$(dump)
for t in iptables ip6tables; do
	check "switch nfqueue -> redirect: no raw chains left in $t" lacks "$(tables "$d" "$t")" "$t raw" DOTPROXY
	check "switch nfqueue -> redirect: no mangle chains left in $t" lacks "$(tables "$d" "$t")" "$t mangle" DOTPROXY
done
check "switch nfqueue -> redirect: ip rule gone" lacks "$d" "ip -4 rule" 'proto 68'
run up --mode nfqueue --scope host
use_standin nft nfqueue
run up --mode nfqueue --scope gateway --in-interface lan1 --backend nft
check "switch to nft nfqueue succeeds quietly" ran_quietly
d=$(dump)
check "switch to nft nfqueue: iptables chains gone" lacks "$d" iptables-save DOTPROXY
check "switch to nft nfqueue: ip6tables chains gone" lacks "$d" ip6tables-save DOTPROXY
check "switch to nft nfqueue: nft queues udp from lan1" has "$d" "nft dotproxy" \
	"iifname \"lan1\" udp dport 53 $(nft_queue_str 0)\$"
use_standin
run up --mode tproxy --scope gateway --in-interface lan1 --backend nft
check "switch nft nfqueue -> nft tproxy succeeds quietly" ran_quietly
check "switch nft nfqueue -> nft tproxy: no raw chains left" lacks "$(dump)" "nft dotproxy" 'priority raw'
use_standin nft nfqueue
run up --mode nfqueue --scope both --in-interface lan0 --backend nft --fail-open
use_standin
run down
check "down without flags removes nft nfqueue and restores the clean ruleset" same_dump "$CLEAN" "$(dump)"

# nfqueue with the nft backend on a kernel without nft_queue: refused before any change,
# here while iptables tproxy rules are up (they stay as they are).
if ((NFT_QUEUE)); then
	skip "nft nfqueue refused without nft_queue" "this kernel has nft_queue"
else
	run up --mode tproxy --scope host
	before=$(dump)
	run up --mode nfqueue --scope both --in-interface lan0 --backend nft
	if [[ $RC == 2 && $ERR == "dotproxy-rules: "*queue* && $(grep -c '' <<<"$ERR") == 1 && -z $OUT ]]; then
		check "nft nfqueue refused without nft_queue, nothing changed" same_dump "$before" "$(dump)"
	else
		not_ok "nft nfqueue refused without nft_queue, nothing changed" "exit $RC, stderr: ${ERR//$'\n'/ | }"
	fi
	run down
fi

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
bad "--queue 70000" up --mode nfqueue --scope host --queue 70000
bad "--queue x" up --mode nfqueue --scope host --queue x
bad "--queue -1" up --mode nfqueue --scope host --queue -1
bad "--queue without a value" up --mode nfqueue --scope host --queue
bad "--queue with tproxy" up --mode tproxy --scope host --queue 3
bad "--queue with down and no mode" down --queue 3
bad "--fail-open with redirect" up --mode redirect --scope host --fail-open
bad "--fail-open with tproxy" up --mode tproxy --scope both --in-interface lan0 --fail-open
bad "--fail-open with a value" up --mode nfqueue --scope host --fail-open=yes
bad "nfqueue: daemon mark caught by the tproxy mark" up --mode nfqueue --scope host --mark 0x445
bad "nfqueue: gateway without --in-interface" up --mode nfqueue --scope gateway --queue 1
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
run up --mode nfqueue --scope gateway --in-interface lan0
if [[ $RC == 2 && $ERR == "dotproxy-rules: "*lo* ]]; then
	check "bad flags: nfqueue with lo down" same_dump "$down_lo" "$(dump)"
else
	not_ok "bad flags: nfqueue with lo down" "exit $RC, stderr: $ERR"
fi
in_ns ip link set lo up
# (taking lo down dropped the foreign IPv6 route through lo: put it back)
in_ns ip -6 route replace blackhole 2001:db8:ffff::/48 table 100

run --help
check "--help prints the usage" output_is 0 '^Usage: .*--tproxy-mark'
check "--help documents nfqueue, --queue and --fail-open" output_is 0 \
	'--mode tproxy\|redirect\|nfqueue.*--queue N.*--fail-open.*fails closed'

check "namespace ends as clean as it started" same_dump "$CLEAN" "$(dump)"

# ------------------------------------------- behaviour: nfqueue with no daemon on the queue
#
#   client C 192.0.2.2 --lan0-- 192.0.2.1 gateway G 198.51.100.1 --wan0-- 198.51.100.53 server S
#
# S runs a tiny DNS responder and counts every port-53 packet that reaches it. G forwards,
# with a stateful firewall so that conntrack runs there, as on a real gateway. No route
# leads anywhere else. Only dotproxy-rules changes G's rules; no daemon reads the queue.

PY=${LAB_PY:-/usr/bin/python3}
WAN_SERVER=198.51.100.53

nsx() {
	local n=$1
	shift
	ip netns exec "$n" "$@"
}

# Builds the trio and starts the responder; fails when something is missing.
trio_up() {
	local n i
	for n in "$C" "$G" "$S"; do
		ip netns add "$n" && nsx "$n" ip link set lo up || return 1
	done
	ip -n "$C" link add lan0 type veth peer name lan0 netns "$G" &&
		ip -n "$G" link add wan0 type veth peer name wan0 netns "$S" || return 1
	# one client address per test, so each finds its own conntrack entries on G
	for i in 2 3 4 5 6 7 8; do ip -n "$C" addr add "192.0.2.$i/24" dev lan0 || return 1; done
	ip -n "$G" addr add 192.0.2.1/24 dev lan0 &&
		ip -n "$G" addr add 198.51.100.1/24 dev wan0 &&
		ip -n "$S" addr add "$WAN_SERVER/24" dev wan0 || return 1
	for n in "$C:lan0" "$G:lan0" "$G:wan0" "$S:wan0"; do ip -n "${n%%:*}" link set "${n#*:}" up || return 1; done
	ip -n "$C" route add 198.51.100.0/24 via 192.0.2.1 &&
		ip -n "$S" route add 192.0.2.0/24 via 198.51.100.1 &&
		nsx "$G" sysctl -qw net.ipv4.ip_forward=1 || return 1
	nsx "$G" nft -f - <<-'NFT' || return 1
		table inet gwfirewall {
			chain forward {
				type filter hook forward priority filter; policy accept;
				ct state established,related accept
			}
		}
	NFT
	nsx "$S" nft -f - <<-'NFT' || return 1
		table inet seen {
			counter udp53 { }
			counter tcp53 { }
			chain input {
				type filter hook input priority filter; policy accept;
				udp dport 53 counter name udp53
				tcp dport 53 counter name tcp53
			}
		}
	NFT
	# Echoes each query back as an empty NOERROR answer (QR set, rcode 0). Started
	# without a function or subshell around it, so that $! is its PID (ip netns exec
	# keeps it) and the trap can end it by PID.
	ip netns exec "$S" timeout 600 "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("'"$WAN_SERVER"'", 53))
while True:
    q, a = s.recvfrom(4096)
    if len(q) >= 12:
        s.sendto(q[:2] + bytes([q[2] | 0x80, 0]) + q[4:], a)
' &
	RESPONDER=$!
	for i in $(seq 50); do
		[[ -n $(nsx "$S" ss -Hlun "src $WAN_SERVER:53") ]] && return 0
		sleep 0.1
	done
	return 1
}

# seen PROTO: how many port-53 packets of PROTO (udp, tcp) have reached the server.
seen() { nsx "$S" nft list counter inet seen "${1}53" | sed -nE 's/.*packets ([0-9]+).*/\1/p'; }

# ask NS SRC PROTO: one DNS query from NS (source address SRC) to the server, over PROTO
# (notcp, tcp), waiting at most a second or so; leaves DIG (its output) and DELTA (how
# many packets of that protocol reached the server meanwhile).
ask() {
	local before proto=udp
	[[ $3 == tcp ]] && proto=tcp
	before=$(seen "$proto")
	DIG=$(timeout 10 ip netns exec "$1" dig @"$WAN_SERVER" -b "$2" probe.test A +"$3" \
		+tries=1 +time=1 +noedns 2>&1)
	DELTA=$(($(seen "$proto") - before))
}

answered() {
	[[ $DIG == *"status: NOERROR"* && $DIG == *"SERVER: $WAN_SERVER#53"* && $DELTA -ge 1 ]] && return 0
	SEEN="$DELTA packets reached the server; dig: $(grep -m1 -E 'status:|timed out|failed|refused|reached' <<<"$DIG")"
	return 1
}

unanswered() {
	[[ $DIG != *"status:"* && $DELTA == 0 ]] && return 0
	SEEN="$DELTA packets reached the server; dig: $(grep -m1 -E 'status:|timed out|failed|refused|reached' <<<"$DIG")"
	return 1
}

# tracked SRC DPORT: G's conntrack has an entry from SRC to DPORT (pass "" for any SRC).
tracked() { grep -qE "src=${1:-[^ ]+} dst=[^ ]+ sport=[0-9]+ dport=$2 " <(nsx "$G" cat /proc/net/nf_conntrack); }
untracked() {
	tracked "$@" || return 0
	SEEN="conntrack: $(grep -m1 -E "src=${1:-[^ ]+} dst=[^ ]+ sport=[0-9]+ dport=$2 " <(nsx "$G" cat /proc/net/nf_conntrack))"
	return 1
}

# Runs dotproxy-rules on G; fails loudly.
rules_g() {
	ip netns exec "$G" env PATH="$RUN_PATH" "$RULES" "$@" >"$TMP/out" 2>"$TMP/err" && return 0
	SEEN="dotproxy-rules $*: exit $?: $(head -1 "$TMP/err")"
	return 1
}

# behave BACKEND: fail closed, fail open (UDP only), from the LAN and from G itself.
behave() {
	local b=$1 t="behaviour $1 nfqueue"
	check "$t gateway: up" rules_g up --mode nfqueue --scope gateway --in-interface lan0 --backend "$b"
	ask "$C" 192.0.2.3 notcp
	check "$t gateway, no daemon: a UDP query from the LAN gets no answer and never reaches the server" unanswered
	check "$t gateway, no daemon: the queued query left no conntrack entry on the gateway" untracked 192.0.2.3 53
	ask "$C" 192.0.2.3 tcp
	check "$t gateway, no daemon: a TCP query from the LAN never reaches the server" unanswered
	# What the daemon's injected answers and its upstream connections look like to G's
	# rules: SO_MARK 0x444, from port 53 and from another port; and an unmarked packet.
	nsx "$G" timeout 10 "$PY" -c '
import socket
for mark, sport, dport in ((0x444, 53, 4441), (0x444, 5300, 4442), (0, 53, 4443)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if mark:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    s.bind(("192.0.2.1", sport))
    s.sendto(b"x", ("192.0.2.2", dport))
    s.close()
'
	check "$t: the daemon's answers (mark, port 53) make no conntrack entry" untracked 192.0.2.1 4441
	SEEN="no conntrack entry"
	check "$t: the daemon's other packets (mark, port 5300) stay tracked" tracked 192.0.2.1 4442
	SEEN="no conntrack entry"
	check "$t: unmarked packets from port 53 stay tracked" tracked 192.0.2.1 4443

	check "$t gateway --fail-open: up" rules_g up --mode nfqueue --scope gateway --in-interface lan0 --backend "$b" --fail-open
	ask "$C" 192.0.2.4 notcp
	check "$t gateway --fail-open, no daemon: a UDP query from the LAN is answered by the server" answered
	SEEN="no conntrack entry"
	check "$t gateway --fail-open: the bypassed query goes on through conntrack" tracked 192.0.2.4 53
	ask "$C" 192.0.2.4 tcp
	check "$t gateway --fail-open, no daemon: TCP still fails closed" unanswered

	check "$t host: up" rules_g up --mode nfqueue --scope host --backend "$b"
	ask "$G" 198.51.100.1 notcp
	check "$t host, no daemon: the gateway's own UDP query never reaches the server" unanswered
	ask "$C" 192.0.2.5 notcp
	check "$t host: a forwarded UDP query is not intercepted" answered
	check "$t host --fail-open: up" rules_g up --mode nfqueue --scope host --backend "$b" --fail-open
	ask "$G" 198.51.100.1 notcp
	check "$t host --fail-open, no daemon: the gateway's own UDP query is answered" answered

	check "$t: down" rules_g down
	ask "$C" 192.0.2.6 notcp
	check "$t: after down a UDP query from the LAN is answered again" answered
}

if [[ ! -x $PY ]] || ! command -v dig >/dev/null; then
	skip "nfqueue behaviour" "needs $PY and dig (tests/install-deps.sh)"
elif ! trio_up; then
	not_ok "nfqueue behaviour: build the client/gateway/server namespaces" "see stderr"
else
	ask "$C" 192.0.2.2 notcp
	check "behaviour control: without rules the server answers the client" answered
	ask "$C" 192.0.2.2 tcp
	SEEN="$DELTA TCP packets reached the server"
	check "behaviour control: without rules TCP reaches the server" [ "$DELTA" -ge 1 ]
	behave iptables
	if ((NFT_QUEUE)); then
		behave nft
	else
		skip "behaviour nft nfqueue" "this kernel has no nft_queue (CONFIG_NFT_QUEUE)"
	fi
	# G's ruleset after down: only the firewall the test put there
	SEEN="G's ruleset: $(nsx "$G" nft list ruleset | grep -E '^table|hook' | tr '\n' ' ')"
	check "behaviour: down leaves only the gateway's own firewall" \
		[ "$(nsx "$G" nft list ruleset | grep -c '^table')" == 1 ]
fi

echo "# $COUNT assertions, $FAILED failed, $SKIPPED skipped"
((FAILED == 0))
