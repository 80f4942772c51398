#!/usr/bin/env bash
# tests/lab.sh: the dotproxy network-namespace lab.
#
# Builds three namespaces with a per-run suffix (client, gateway, upstream) joined by veth links,
# and sets up each role with its provisioning script, tests/lab/provision/{upstream,gateway,
# client}.sh -- the scripts that also provision the VMs of the Vagrant lab (vagrant/): a test CA
# and a server certificate for dot.dotproxy.test, Unbound as a DoT server on 198.51.100.2@853 and
# [2001:db8:2::2]@853, and a plaintext DECOY Unbound on 198.51.100.53 / 2001:db8:2::53 port 53
# that answers the same names with different records; more DoT servers on request
# (lab_unbound_extra: 198.51.100.3, .4, ...). Starts and stops Unbound and dotproxy (through
# the scripts' `serve`, which execs them: same PID) by PID, reads dotproxy's metrics, counts
# port-53 packets leaving the gateway's WAN interface, and prints TAP lines.
#
#   client ns   eth0 192.0.2.2/24 2001:db8:1::2/64      default via the gateway; resolver: the decoy
#   gateway ns  lan0 192.0.2.1/24 2001:db8:1::1/64      forwarding on, no default route
#               wan0 198.51.100.1/24 2001:db8:2::1/64
#   upstream ns eth0 198.51.100.2 + .53/24, 2001:db8:2::2 + ::53/64   the LAN via the gateway
#
# Only documentation address ranges, only veth links between the lab's own namespaces: nothing
# can leave the machine. Everything is stopped by PID and removed by lab_down (a trap).
#
# Use from a test:   . "$(dirname "$0")/../lab.sh"; lab_up; ...; lab_finish
# Use by hand:       tests/lab.sh up     (prints how to reach it)   tests/lab.sh down [ID]

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_CONF_DIR=$LAB_REPO/tests/lab
# the provisioning scripts: the netns lab sets up each role with the same script that provisions
# that role's VM in the Vagrant lab (vagrant/Vagrantfile), so every e2e test exercises them
LAB_PROV=$LAB_CONF_DIR/provision
DOTPROXY=${DOTPROXY:-$LAB_REPO/build/dotproxy}
DOTPROXY_RULES=${DOTPROXY_RULES:-$LAB_REPO/iptables/dotproxy-rules}
LAB_PY=${LAB_PY:-/usr/bin/python3}

# --- addresses and records: the lab's plan (shared with the Vagrant lab); tests compare against these
# shellcheck source=tests/lab/provision/plan.sh
. "$LAB_PROV/plan.sh"
LAB_LAN_IF=lan0           LAB_WAN_IF=wan0   # the gateway's interfaces in the netns lab

# --- TAP ---------------------------------------------------------------------------------------
LAB_PASS=0
LAB_FAIL=0
# ok DESC: one passing assertion.
ok() { LAB_PASS=$((LAB_PASS + 1)); printf 'ok - %s\n' "$*"; }
# fail DESC SEEN: one failing assertion, with what was seen (flattened to one line).
fail() {
	local desc=$1; shift
	LAB_FAIL=$((LAB_FAIL + 1))
	printf 'not ok - %s -- seen: %s\n' "$desc" "$(printf '%s' "$*" | tr '\n\t' '  ' | cut -c1-600)"
}
# check DESC SEEN CMD...: ok if CMD succeeds, else fail with SEEN.
check() {
	local desc=$1 seen=$2; shift 2
	if "$@"; then ok "$desc"; else fail "$desc" "$seen"; fi
}
diag() { printf '# %s\n' "$*"; }
# lab_finish: print the tally and exit 1 if anything failed (the EXIT trap tears the lab down).
lab_finish() {
	diag "$(basename "$0"): $LAB_PASS ok, $LAB_FAIL not ok"
	((LAB_PASS + LAB_FAIL > 0)) || { echo 'not ok - the test ran no assertion'; exit 1; }
	((LAB_FAIL == 0)) || exit 1
	exit 0
}
lab_skip_all() { echo "1..0 # SKIP $*"; exit 0; }
lab_bail() { echo "Bail out! $*"; exit 1; }

# --- namespaces --------------------------------------------------------------------------------
lab_c() { ip netns exec "$LAB_NS_C" "$@"; }
lab_g() { ip netns exec "$LAB_NS_G" "$@"; }
lab_u() { ip netns exec "$LAB_NS_U" "$@"; }

lab_log() { [[ -n ${LAB_VERBOSE:-} ]] && printf '# lab: %s\n' "$*" >&2; return 0; }

# lab_wait_port NS PROTO(t|u) PORT [SECONDS] [PID]: wait until something listens on PORT in NS.
lab_wait_port() {
	local ns=$1 proto=$2 port=$3 secs=${4:-10} pid=${5:-} i
	for ((i = 0; i < secs * 20; i++)); do
		if [[ -n $(ip netns exec "$ns" ss -Hln"$proto" "sport = :$port" 2>/dev/null) ]]; then return 0; fi
		if [[ -n $pid ]] && ! lab_running "$pid"; then return 1; fi
		sleep 0.05
	done
	return 1
}

# lab_wait_listen NS ADDR PORT [SECONDS] [PID]: wait until something listens on TCP ADDR:PORT in NS
# (ADDR itself, where lab_wait_port takes any address).
lab_wait_listen() {
	local ns=$1 addr=$2 port=$3 secs=${4:-10} pid=${5:-} i
	[[ $addr == *:* ]] && addr="[$addr]"
	for ((i = 0; i < secs * 20; i++)); do
		[[ -n $(ip netns exec "$ns" ss -Hltn "src $addr:$port" 2>/dev/null) ]] && return 0
		[[ -n $pid ]] && ! lab_running "$pid" && return 1
		sleep 0.05
	done
	return 1
}

# lab_wait_queue QUEUE SECONDS [PID]: until a program has bound netfilter queue QUEUE in the gateway.
lab_wait_queue() {
	local q=$1 secs=$2 pid=${3:-} i
	for ((i = 0; i < secs * 20; i++)); do
		ip netns exec "$LAB_NS_G" awk -v q="$q" '$1 == q && $2 != 0 { f = 1 } END { exit !f }' \
			/proc/net/netfilter/nfnetlink_queue 2>/dev/null && return 0
		[[ -n $pid ]] && ! lab_running "$pid" && return 1
		sleep 0.05
	done
	return 1
}

# lab_netns: the namespaces and the veth links between them, up (what the hypervisor and Vagrant
# do for the VMs); addresses and routes are the provisioning scripts' (lab_provision).
lab_netns() {
	local ns
	for ns in "$LAB_NS_C" "$LAB_NS_G" "$LAB_NS_U"; do
		ip netns add "$ns" || return 1
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 || return 1
		ip -n "$ns" link set lo up || return 1
	done
	ip link add name eth0 netns "$LAB_NS_C" type veth peer name "$LAB_LAN_IF" netns "$LAB_NS_G" || return 1
	ip link add name eth0 netns "$LAB_NS_U" type veth peer name "$LAB_WAN_IF" netns "$LAB_NS_G" || return 1
	ip -n "$LAB_NS_C" link set eth0 up &&
		ip -n "$LAB_NS_U" link set eth0 up &&
		ip -n "$LAB_NS_G" link set "$LAB_LAN_IF" up &&
		ip -n "$LAB_NS_G" link set "$LAB_WAN_IF" up
}

# lab_prov NS ROLE ARGS...: run tests/lab/provision/ROLE.sh ARGS inside NS; its output goes to
# $LAB_DIR/provision.log (which tests/e2e/test_vagrant.sh reads), and to stderr if it fails.
lab_prov() {
	local ns=$1 role=$2; shift 2
	echo "+ $role.sh $*" >>"$LAB_DIR/provision.log"
	ip netns exec "$ns" bash "$LAB_PROV/$role.sh" "$@" >>"$LAB_DIR/provision.log" 2>&1 && return 0
	echo "lab: $role.sh $1 failed:" >&2
	tail -n 5 "$LAB_DIR/provision.log" >&2
	return 1
}

# lab_provision: each role set up by its provisioning script, with the netns lab's parameters
# (the Vagrantfile gives the same scripts the VMs' parameters).
lab_provision() {
	lab_prov "$LAB_NS_U" upstream setup --if eth0 --dir "$LAB_DIR" --auth "$LAB_AUTH" \
		--ca-name "dotproxy lab ca $LAB_ID" --days 2 \
		--dot "$LAB_DOT4/24" --dot "$LAB_DOT6/64" --decoy "$LAB_DECOY4/24" --decoy "$LAB_DECOY6/64" \
		--route "$LAB_LAN4@$LAB_GW4" --route "$LAB_LAN6@$LAB_GW6" || return 1
	lab_prov "$LAB_NS_G" gateway setup --lan-if "$LAB_LAN_IF" --wan-if "$LAB_WAN_IF" \
		--lan "$LAB_GL4/24" --lan "$LAB_GL6/64" --wan "$LAB_GW4/24" --wan "$LAB_GW6/64" \
		--count-chain "$LAB_COUNT_CHAIN" || return 1
	lab_prov "$LAB_NS_C" client setup --if eth0 --addr "$LAB_C4/24" --addr "$LAB_C6/64" \
		--via "$LAB_GL4" --via "$LAB_GL6" \
		--resolver "$LAB_DECOY4" --resolv-conf "/etc/netns/$LAB_NS_C/resolv.conf" || return 1
}

# --- certificates ------------------------------------------------------------------------------
# lab_certs: upstream.sh made the CA and the server certificate (and its pin); this adds a
# second CA the server's certificate does not chain to, and the pin of a key it does not have,
# for the tests of verification failures. Sets LAB_CA, LAB_CA_OTHER, LAB_PIN, LAB_PIN_WRONG.
lab_certs() {
	local d=$LAB_DIR
	[[ -s $d/ca.pem && -s $d/server.pin ]] || { echo "lab: upstream.sh made no CA in $d" >&2; return 1; }
	(
		set -e
		cd "$d"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-keyout other-ca.key -out other-ca.pem -subj "/CN=dotproxy lab other-ca $LAB_ID" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		openssl pkey -in other-ca.key -pubout -outform DER | openssl dgst -sha256 -binary | base64 >other.pin
	) >>"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
	LAB_CA=$d/ca.pem
	LAB_CA_OTHER=$d/other-ca.pem
	LAB_PIN=sha256/$(cat "$d/server.pin")
	LAB_PIN_WRONG=sha256/$(cat "$d/other.pin")
}

# --- Unbound (DoT server and decoy) ------------------------------------------------------------
# lab_unbound_start dot|decoy: start it in the upstream ns (upstream.sh serve, which execs
# Unbound with the config upstream.sh setup wrote), wait until it listens; sets LAB_UB_PID_<who>.
lab_unbound_start() {
	local who=$1 port pid
	if [[ $who == dot ]]; then port=853; else port=53; fi
	ip netns exec "$LAB_NS_U" bash "$LAB_PROV/upstream.sh" serve "$who" --dir "$LAB_DIR" \
		>>"$LAB_DIR/unbound-$who.log" 2>&1 &
	pid=$!
	printf -v "LAB_UB_PID_$who" '%s' "$pid"
	if ! lab_wait_port "$LAB_NS_U" t "$port" 10 "$pid"; then
		echo "lab: unbound $who did not start; log:" >&2
		tail -n 20 "$LAB_DIR/unbound-$who.log" >&2
		return 1
	fi
	lab_log "unbound $who pid $pid"
}

# lab_unbound_stop dot|decoy: stop it by PID and wait until it is gone.
lab_unbound_stop() {
	local var=LAB_UB_PID_$1
	lab_stop_pid "${!var:-}"
	printf -v "$var" '%s' ''
}

# lab_unbound_extra WHO ADDR4 ADDR6 [OPTION LINES...]: configure and start one more DoT Unbound,
# named WHO, on ADDR4@853 and [ADDR6]@853 in the upstream ns (the addresses are added to its eth0):
# the lab's certificate and zone, statistics through unbound-control (lab_ub_stat), and the server:
# OPTION LINES (e.g. 'tcp-idle-timeout: 2000'; a line 'dnstap:' opens that clause). Sets
# LAB_UB_PID_<WHO>; lab_unbound_stop WHO stops it, lab_unbound_extra_start WHO starts it again.
lab_unbound_extra() {
	local who=$1 a4=$2 a6=$3 conf=$LAB_DIR/unbound-$1.conf; shift 3
	[[ $who =~ ^[a-z0-9]+$ && $who != dot && $who != decoy ]] || { echo "lab: bad extra name $who" >&2; return 1; }
	ip -n "$LAB_NS_U" addr replace "$a4/24" dev eth0 || return 1
	ip -n "$LAB_NS_U" addr replace "$a6/64" dev eth0 nodad || return 1
	printf 'server:\n' >"$LAB_DIR/unbound-$who.opts"
	(($# == 0)) || printf '\t%s\n' "$@" >>"$LAB_DIR/unbound-$who.opts"
	sed -e "s|@DIR@|$LAB_DIR|g" -e "s|@NAME@|$who|g" -e "s|@ADDR4@|$a4|g" -e "s|@ADDR6@|$a6|g" \
		"$LAB_CONF_DIR/unbound-dot-extra.conf.in" >"$conf"
	unbound-checkconf "$conf" >"$LAB_DIR/checkconf-$who.log" 2>&1 ||
		{ cat "$LAB_DIR/checkconf-$who.log" >&2; return 1; }
	printf -v "LAB_UB_ADDR4_$who" '%s' "$a4"
	[[ " ${LAB_UB_EXTRA:-} " == *" $who "* ]] || LAB_UB_EXTRA="${LAB_UB_EXTRA:-} $who"
	lab_unbound_extra_start "$who"
}

# lab_unbound_extra_start WHO: (re)start the extra Unbound WHO; wait until it listens on its
# address and unbound-control reaches it.
lab_unbound_extra_start() {
	local who=$1 pid var=LAB_UB_ADDR4_$1 i
	ip netns exec "$LAB_NS_U" unbound -d -c "$LAB_DIR/unbound-$who.conf" >>"$LAB_DIR/unbound-$who.log" 2>&1 &
	pid=$!
	printf -v "LAB_UB_PID_$who" '%s' "$pid"
	if lab_wait_listen "$LAB_NS_U" "${!var}" 853 10 "$pid"; then
		for ((i = 0; i < 100; i++)); do
			if lab_ubctl "$who" status >/dev/null 2>&1; then
				lab_log "unbound $who pid $pid"
				return 0
			fi
			lab_running "$pid" || break
			sleep 0.05
		done
	fi
	echo "lab: unbound $who did not start; log:" >&2
	tail -n 20 "$LAB_DIR/unbound-$who.log" >&2
	return 1
}

# lab_ubctl WHO ARGS...: unbound-control of the extra Unbound WHO (bounded in time).
lab_ubctl() {
	local who=$1; shift
	timeout 5 unbound-control -c "$LAB_DIR/unbound-$who.conf" "$@"
}

# lab_ub_stat WHO NAME: one counter of the extra Unbound WHO (e.g. num.query.tls), without
# resetting them; 0 if Unbound does not list it (it leaves out some zero counters). Prints nothing
# and returns 1 if unbound-control fails.
lab_ub_stat() {
	local out
	out=$(lab_ubctl "$1" stats_noreset 2>&1) || return 1
	awk -F= -v k="$2" '$1 == k { v = $2 } END { printf "%d\n", v + 0 }' <<<"$out"
}

# lab_running PID: true while PID exists and has not exited (an exited child stays a zombie
# until it is waited for, and kill -0 still succeeds on a zombie).
lab_running() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[[ -n $st && $st != Z && $st != X ]]
}

# lab_stop_pid PID: SIGTERM, up to 5 s, then SIGKILL. Returns the exit status if PID is our child.
lab_stop_pid() {
	local pid=$1 i rc=0
	[[ -n $pid ]] || return 0
	lab_running "$pid" || { wait "$pid" 2>/dev/null; return $?; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		lab_running "$pid" || break
		sleep 0.05
	done
	if lab_running "$pid"; then
		echo "lab: pid $pid ignored SIGTERM for 5 s, sending SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	return $rc
}

# --- WAN port-53 counter ------------------------------------------------------------------------
# gateway.sh setup installs it: a mangle chain that counts every packet to udp/tcp port 53 that
# leaves the gateway through its WAN interface, forwarded or locally generated (mangle
# POSTROUTING sees both), IPv4 and IPv6.
LAB_COUNT_CHAIN=DPLAB_WAN53
lab_wan53_reset() {
	ip netns exec "$LAB_NS_G" iptables -w -t mangle -Z "$LAB_COUNT_CHAIN" &&
		ip netns exec "$LAB_NS_G" ip6tables -w -t mangle -Z "$LAB_COUNT_CHAIN"
}
# lab_wan53_count: packets to port 53 out of the WAN interface since the last reset (v4+v6,
# udp+tcp). Prints "error: ..." and returns 1 if the counter chain is missing.
lab_wan53_count() {
	local t out sum=0 n
	for t in iptables ip6tables; do
		if ! out=$(ip netns exec "$LAB_NS_G" $t -w -t mangle -L "$LAB_COUNT_CHAIN" -nvx 2>&1); then
			echo "error: $t counter chain: $out"
			return 1
		fi
		n=$(awk 'NR > 2 && $1 ~ /^[0-9]+$/ { s += $1 } END { print s + 0 }' <<<"$out")
		sum=$((sum + n))
	done
	echo "$sum"
}

# lab_spawn NS(c|g|u) OUTFILE CMD...: run CMD in the background inside NS with its output to
# OUTFILE; sets LAB_SPAWN_PID to CMD's own PID (not a subshell's, so stopping it by PID stops CMD)
# and adds it to LAB_EXTRA_PIDS, which lab_down stops.
lab_spawn() {
	local ns=$1 outf=$2; shift 2
	case $ns in c) ns=$LAB_NS_C ;; g) ns=$LAB_NS_G ;; u) ns=$LAB_NS_U ;; esac
	ip netns exec "$ns" "$@" >"$outf" 2>&1 &
	LAB_SPAWN_PID=$!
	LAB_EXTRA_PIDS="${LAB_EXTRA_PIDS:-} $LAB_SPAWN_PID"
}

# --- dotproxy ----------------------------------------------------------------------------------
# lab_dotproxy_args [UPSTREAM]: the arguments every test starts from, one per line: one upstream
# (default: the lab's DoT server over IPv4), the lab's CA, metrics on 127.0.0.1:9153.
# shellcheck disable=SC2120  # the argument is optional
lab_dotproxy_args() {
	printf '%s\n' --port "$LAB_PORT" --upstream "${1:-$LAB_DOT4@853#$LAB_AUTH}" --ca-file "$LAB_CA" --metrics "$LAB_METRICS"
	# a test about what upstreams do sets LAB_DP_CACHE=0, so every query reaches one
	[[ -z ${LAB_DP_CACHE:-} ]] || printf '%s\n' --cache-size "$LAB_DP_CACHE"
}

# lab_dotproxy_start ARGS...: start build/dotproxy with ARGS in the gateway ns (through gateway.sh
# serve, as the Vagrant lab's dotproxy unit does) and wait until its
# UDP and TCP port (--port, or the port of the first --listen) listen and /health answers
# (if --metrics is given). Sets LAB_DP_PID. Returns 1 with the log on stderr if it does not come up.
lab_dotproxy_start() {
	local port=5353 listen='' metrics='' mode=tproxy queue=0 a prev=''
	for a in "$@"; do
		case $prev in
		--port) port=$a ;;
		--mode) mode=$a ;;
		--queue) queue=$a ;;
		--listen) [[ -z $listen ]] && listen=$a ;;
		--metrics) metrics=$a ;;
		esac
		prev=$a
	done
	if [[ $listen == *@* ]]; then port=${listen##*@}; fi
	[[ -x $DOTPROXY ]] || { echo "lab: $DOTPROXY is missing (run make)" >&2; return 1; }
	LAB_DP_LOG=$LAB_DIR/dotproxy.$((++LAB_DP_RUNS)).log
	echo "+ dotproxy $*" >"$LAB_DP_LOG"
	# gateway.sh serve execs the daemon: LAB_DP_PID is dotproxy's own PID
	ip netns exec "$LAB_NS_G" bash "$LAB_PROV/gateway.sh" serve "$DOTPROXY" "$@" >>"$LAB_DP_LOG" 2>&1 &
	LAB_DP_PID=$!
	LAB_DP_METRICS=$metrics
	# nfqueue mode reads UDP from the queue: ready when the queue is bound
	if { if [[ $mode == nfqueue ]]; then ! lab_wait_queue "$queue" 10 "$LAB_DP_PID"
	     else ! lab_wait_port "$LAB_NS_G" u "$port" 10 "$LAB_DP_PID"; fi; } ||
		! lab_wait_port "$LAB_NS_G" t "$port" 10 "$LAB_DP_PID"; then
		echo "lab: dotproxy did not listen on port $port (or queue $queue); log:" >&2
		tail -n 20 "$LAB_DP_LOG" >&2
		lab_dotproxy_stop
		return 1
	fi
	if [[ -n $metrics ]]; then
		local i
		for ((i = 0; i < 100; i++)); do
			[[ $(lab_http /health 2>/dev/null) == *ok* ]] && break
			sleep 0.05
		done
		((i < 100)) || { echo "lab: dotproxy /health did not answer on $metrics" >&2; lab_dotproxy_stop; return 1; }
	fi
	lab_log "dotproxy pid $LAB_DP_PID: $*"
}

# lab_dotproxy_stop: SIGTERM by PID; returns its exit status (0 expected), sets LAB_DP_RC.
lab_dotproxy_stop() {
	LAB_DP_RC=0
	[[ -n ${LAB_DP_PID:-} ]] || return 0
	lab_stop_pid "$LAB_DP_PID"
	LAB_DP_RC=$?
	LAB_DP_PID=
	return $LAB_DP_RC
}

lab_dotproxy_alive() { [[ -n ${LAB_DP_PID:-} ]] && lab_running "$LAB_DP_PID"; }

# lab_http PATH: GET PATH from dotproxy's --metrics address inside the gateway ns.
lab_http() {
	local hostport=${LAB_DP_METRICS:-$LAB_METRICS}
	ip netns exec "$LAB_NS_G" curl -sS --max-time 3 --noproxy '*' "http://$hostport$1"
}
lab_metrics() { lab_http /metrics; }

# lab_metric SELECTOR: the sum of the series SELECTOR picks, as an integer, as PromQL's sum()
# would: a name (every series of it, e.g. dotproxy_tls_handshakes_total over all upstreams), or
# 'NAME{k="v",...}' (the series of NAME whose labels include those, e.g.
# 'dotproxy_answers_total{rcode="SERVFAIL"}' over every front-end, transport and family).
# Prints nothing and returns 1 if no series matches.
lab_metric() {
	# (reads to the end: exiting early would leave curl writing into a closed pipe)
	lab_metrics | awk -v s="$1" '
		BEGIN {
			name = s; i = index(s, "{")
			if (i) { name = substr(s, 1, i - 1); n = split(substr(s, i + 1, length(s) - i - 1), want, ",") }
		}
		/^#/ { next }
		{
			j = index($1, "{")
			if ((j ? substr($1, 1, j - 1) : $1) != name) next
			have = j ? "," substr($1, j + 1, length($1) - j - 1) "," : ","
			for (k = 1; k <= n; k++) if (!index(have, "," want[k] ",")) next
			sum += $2; f = 1
		}
		END { if (f) printf "%d\n", sum; exit !f }'
}
# lab_metric0 SERIES: like lab_metric, 0 if the series is absent (labelled series may appear late).
lab_metric0() { lab_metric "$1" || echo 0; }

# lab_rules up|down ARGS...: iptables/dotproxy-rules in the gateway ns. Output goes to the run log.
lab_rules() {
	[[ -x $DOTPROXY_RULES ]] || { echo "lab: $DOTPROXY_RULES is missing" >&2; return 1; }
	echo "+ dotproxy-rules $*" >>"$LAB_DIR/rules.log"
	ip netns exec "$LAB_NS_G" "$DOTPROXY_RULES" "$@" >>"$LAB_DIR/rules.log" 2>&1 ||
		{ echo "lab: dotproxy-rules $* failed:" >&2; tail -n 10 "$LAB_DIR/rules.log" >&2; return 1; }
}

# --- queries -----------------------------------------------------------------------------------
# lab_dig NS ARGS...: dig inside the client (c), gateway (g) or upstream (u) ns, one try, 3 s.
lab_dig() {
	local ns=$1; shift
	case $ns in c) ns=$LAB_NS_C ;; g) ns=$LAB_NS_G ;; u) ns=$LAB_NS_U ;; esac
	ip netns exec "$ns" dig +tries=1 +time=3 "$@" 2>&1
}
# Pieces of a dig answer (full dig output on stdin).
dig_status() { grep -o 'status: [A-Z]*' | head -n1 | cut -d' ' -f2; }
dig_flags() { sed -n 's/.*;; flags: \([a-z ]*\);.*/\1/p' | head -n1; }
dig_server() { sed -n 's/^;; SERVER: \([^#]*\)#\([0-9]*\)(.*/\1#\2/p' | head -n1; }
# dig_answers TYPE: rdata of the answer section's TYPE records, sorted, one per line (TXT unquoted).
dig_answers() {
	awk -v t="$1" '/^;; ANSWER SECTION:/ { a = 1; next } /^$/ { a = 0 } a && $4 == t {
		$1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); gsub(/"/, ""); gsub(/" "/, ""); print }' | sort
}

dig_proto() { sed -n 's/^;; SERVER: .*(\(UDP\|TCP\))$/\1/p' | head -n1; }

# lab_expect_www DESC NS SERVER TYPE [DIG ARGS...]: assert that `dig @SERVER www.dotproxy.test TYPE`
# run in NS (c|g) answers NOERROR with exactly the DoT server's record (A or AAAA), and that
# dig's SERVER line names SERVER and the port asked (53 unless -p is among the args).
lab_expect_www() {
	local desc=$1 ns=$2 server=$3 type=$4; shift 4
	local want decoy out st ans srv port=53 prev='' a why
	for a in "$@"; do [[ $prev == -p ]] && port=$a; prev=$a; done
	if [[ $type == A ]]; then want=$LAB_WWW_A decoy=$LAB_DECOY_WWW_A; else want=$LAB_WWW_AAAA decoy=$LAB_DECOY_WWW_AAAA; fi
	out=$(lab_dig "$ns" "@$server" "$LAB_WWW" "$type" "$@")
	st=$(dig_status <<<"$out")
	ans=$(dig_answers "$type" <<<"$out" | paste -sd, -)
	srv=$(dig_server <<<"$out")
	if [[ $st == NOERROR && $ans == "$want" && $srv == "$server#$port" ]]; then
		ok "$desc: $ans from $srv ($(dig_proto <<<"$out"))"
	else
		why="status=${st:-none} answer=${ans:-none} server=${srv:-none}; want $want from $server#$port"
		[[ -n $ans && $ans == "$decoy" ]] && why+=" (that is the DECOY's record: not intercepted)"
		[[ -z $st ]] && why+="; dig said: $(grep -v '^;; global\|^; <<>>\|^$' <<<"$out" | tail -n 2)"
		fail "$desc" "$why"
	fi
}

# lab_expect_status DESC NS SERVER RCODE [DIG ARGS...]: assert dig's status for www.dotproxy.test
# is RCODE with an empty answer section (so no record, DoT or decoy, reached the client).
lab_expect_status() {
	local desc=$1 ns=$2 server=$3 want=$4; shift 4
	local out st ans
	out=$(lab_dig "$ns" "@$server" "$LAB_WWW" A "$@")
	st=$(dig_status <<<"$out")
	ans=$(dig_answers A <<<"$out" | paste -sd, -)
	if [[ $st == "$want" && -z $ans ]]; then ok "$desc: $st"
	else fail "$desc" "status=${st:-none} answer=${ans:-none}; want $want and no answer"; fi
}

# lab_expect_src DESC NS SERVER TYPE: a UDP query from an unconnected socket: the answer must come
# from SERVER port 53 (the address the client asked) and carry the DoT server's record.
lab_expect_src() {
	local desc=$1 ns=$2 server=$3 type=$4 out want
	[[ $ns == c ]] && ns=$LAB_NS_C
	[[ $ns == g ]] && ns=$LAB_NS_G
	if [[ $type == A ]]; then want=$LAB_WWW_A; else want=$LAB_WWW_AAAA; fi
	out=$(ip netns exec "$ns" "$LAB_PY" "$LAB_CONF_DIR/dnsclient.py" src "$server" "$LAB_WWW" "$type" 2>&1)
	if [[ $out == "from=$server port=53 id_match=1 rcode=NOERROR answers=$want" ]]; then
		ok "$desc: answer came from $server port 53"
	else
		fail "$desc" "$out; want from=$server port=53 id_match=1 rcode=NOERROR answers=$want"
	fi
}

# lab_expect_wan53 DESC: assert the gateway sent no packet to port 53 out of its WAN interface
# since the last lab_wan53_reset.
lab_expect_wan53_zero() {
	local n
	n=$(lab_wan53_count)
	if [[ $n == 0 ]]; then ok "$1: 0 packets to port 53 left the gateway's WAN interface"
	else fail "$1" "$n packets to port 53 left the gateway's WAN interface ($LAB_WAN_IF)"; fi
}

# lab_ms: monotonic-enough milliseconds.
lab_ms() { echo $(($(date +%s%N) / 1000000)); }

# --- up / down ---------------------------------------------------------------------------------
lab_up() {
	[[ $(id -u) == 0 ]] || lab_bail "the lab needs root (network namespaces, iptables)"
	local t
	for t in ip iptables ip6tables unbound openssl dig kdig curl ss; do
		command -v "$t" >/dev/null || lab_bail "missing tool: $t (make installs the lab's packages)"
	done
	LAB_ID=${LAB_ID:-$(printf '%04x%04x' $$ $RANDOM | tail -c 8)}
	LAB_NS_C=dpc-$LAB_ID LAB_NS_G=dpg-$LAB_ID LAB_NS_U=dpu-$LAB_ID
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-lab.$LAB_ID.XXXXXX") || lab_bail "mktemp failed"
	LAB_DP_RUNS=0
	LAB_DP_PID='' LAB_UB_PID_dot='' LAB_UB_PID_decoy='' LAB_UB_EXTRA=''
	if [[ ${LAB_KEEP:-0} != 1 ]]; then
		trap lab_down EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
		trap 'exit 129' HUP
		trap 'exit 141' PIPE
	fi
	lab_netns || lab_bail "could not build the namespaces"
	lab_provision || lab_bail "could not provision the lab (tests/lab/provision)"
	lab_certs || lab_bail "could not make the test certificates"
	local who
	for who in dot decoy; do
		lab_unbound_start "$who" || lab_bail "unbound $who did not start"
	done
	lab_log "up: $LAB_NS_C $LAB_NS_G $LAB_NS_U in $LAB_DIR"
}

# lab_down: stop everything started in the lab's namespaces (by PID), delete them and the temp dir.
# Safe to call twice.
lab_down() {
	local rc=$? ns pid who
	trap - EXIT INT TERM HUP PIPE
	[[ -n ${LAB_ID:-} ]] || return $rc
	lab_stop_pid "${LAB_DP_PID:-}"
	lab_stop_pid "${LAB_UB_PID_dot:-}"
	lab_stop_pid "${LAB_UB_PID_decoy:-}"
	for who in ${LAB_UB_EXTRA:-}; do lab_unbound_stop "$who"; done
	for pid in ${LAB_EXTRA_PIDS:-}; do lab_stop_pid "$pid"; done
	for ns in ${LAB_NS_C:-} ${LAB_NS_G:-} ${LAB_NS_U:-}; do
		[[ -e /run/netns/$ns ]] || continue
		# anything still running inside our own namespaces was started by this lab
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns delete "$ns" 2>/dev/null
	done
	# the client's resolv.conf (client.sh --resolv-conf)
	if [[ -n ${LAB_NS_C:-} && -d /etc/netns/$LAB_NS_C ]]; then
		rm -rf "/etc/netns/$LAB_NS_C"
		rmdir /etc/netns 2>/dev/null
	fi
	if [[ -n ${LAB_DIR:-} && -d $LAB_DIR && ${LAB_KEEP_DIR:-0} != 1 ]]; then rm -rf "$LAB_DIR"; fi
	LAB_ID=
	return $rc
}

# --- run by hand -------------------------------------------------------------------------------
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	state=/tmp/dotproxy-lab.last
	case ${1:-} in
	up)
		trap lab_down EXIT   # undo a half-built lab; cleared once it is up
		LAB_KEEP=1 lab_up
		trap - EXIT
		{
			declare -p LAB_ID LAB_NS_C LAB_NS_G LAB_NS_U LAB_DIR LAB_UB_PID_dot LAB_UB_PID_decoy \
				LAB_CA LAB_CA_OTHER LAB_PIN LAB_PIN_WRONG
		} | sed 's/^declare -[-a-z]* //' >"$LAB_DIR/env"
		echo "$LAB_DIR/env" >"$state"
		cat <<-EOF
			lab $LAB_ID is up (state: $LAB_DIR/env)
			  ip netns exec $LAB_NS_C dig $LAB_WWW @$LAB_DECOY4
			  ip netns exec $LAB_NS_G kdig +tls-ca=$LAB_CA +tls-hostname=$LAB_AUTH @$LAB_DOT4 $LAB_WWW
			  ip netns exec $LAB_NS_G $DOTPROXY $(lab_dotproxy_args | tr '\n' ' ')
			  $0 down
		EOF
		;;
	down)
		envf=$(cat "$state" 2>/dev/null)
		[[ -n ${2:-} ]] && envf=$(find "${TMPDIR:-/tmp}" -maxdepth 2 -path "*/dotproxy-lab.$2.*/env" 2>/dev/null | head -n1)
		[[ -f $envf ]] || { echo "no lab state found (${envf:-$state})" >&2; exit 1; }
		# shellcheck disable=SC1090
		. "$envf"
		id=$LAB_ID
		lab_down
		rm -f "$state"
		echo "lab $id is down"
		;;
	*)
		echo "usage: $0 up | down [ID]   (or source it from a test)" >&2
		exit 2
		;;
	esac
fi
