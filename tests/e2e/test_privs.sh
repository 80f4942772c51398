#!/usr/bin/env bash
# tests/e2e/test_privs.sh: least privilege. Once set up, the daemon runs as an unprivileged user
# with only the capabilities its mode needs at run time, no_new_privs and a seccomp filter, and
# still answers everything it answered as root.
#
# In tproxy, redirect and nfqueue mode with --user nobody (once with --user root, once with the
# default user rule): /proc/PID/status shows non-zero Uid and Gid (all four fields), CapEff and
# CapPrm exactly the mode's set (tproxy: NET_ADMIN + NET_BIND_SERVICE; redirect, nfqueue:
# NET_ADMIN), CapInh and CapAmb empty, CapBnd only the kept ones, NoNewPrivs 1, Seccomp 2. Then
# UDP and TCP, IPv4 and IPv6 queries through the rules get the DoT server's answers (UDP from the
# address asked: tproxy opens its transparent reply sockets after the drop), and again after the
# upstream connection was closed for idleness, on a new connection opened after the drop that
# carries the daemon's SO_MARK; no plaintext leaves, no system call is refused, exit 0 on
# SIGTERM. A --user that does not exist: one line naming it, exit 1, nothing left listening,
# the queue unbound, the firewall as it was.
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

CAP_NET_BIND_SERVICE=$((1 << 10))
CAP_NET_ADMIN=$((1 << 12))
IDLE_MS=1000
MARK=0x444

# status PID FIELD: the value of FIELD in /proc/PID/status (fields separated by one space).
status() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }' "/proc/$1/status" 2>/dev/null; }

# expect_privs T PID USER MASK: the process runs as USER with exactly the capabilities in MASK.
expect_privs() {
	local t=$1 pid=$2 user=$3 mask=$4 uid gid want v f
	uid=$(id -u "$user") gid=$(id -g "$user")
	v=$(status "$pid" Uid)
	check "$t: Uid is $user's in all four fields" "Uid: $v" [ "$v" == "$uid $uid $uid $uid" ]
	v=$(status "$pid" Gid)
	check "$t: Gid is $user's in all four fields" "Gid: $v" [ "$v" == "$gid $gid $gid $gid" ]
	if [[ $user != root ]]; then
		check "$t: Uid and Gid are not root's" "uid=$uid gid=$gid" [ "$uid" != 0 -a "$gid" != 0 ]
		v=$(status "$pid" Groups)
		if [[ " $v " != *" 0 "* ]]; then ok "$t: not in group root"; else fail "$t: not in group root" "Groups: $v"; fi
	fi
	want=$(printf '%016x' "$mask")
	for f in CapEff CapPrm CapBnd; do
		v=$(status "$pid" $f)
		check "$t: $f is $want" "$f: $v" [ "$v" == "$want" ]
	done
	for f in CapInh CapAmb; do
		v=$(status "$pid" $f)
		check "$t: $f is empty" "$f: $v" [ "$v" == 0000000000000000 ]
	done
	v=$(status "$pid" NoNewPrivs)
	check "$t: NoNewPrivs: 1" "NoNewPrivs: $v" [ "$v" == 1 ]
	v=$(status "$pid" Seccomp)
	check "$t: Seccomp: 2 (filter)" "Seccomp: $v" [ "$v" == 2 ]
}

# upstream_marks: the fwmark of each established connection from the gateway to the DoT server.
upstream_marks() {
	lab_g ss -Htne state established dst "$LAB_DOT4:853" 2>/dev/null | grep -o 'fwmark:0x[0-9a-f]*' | sort -u | paste -sd' '
}

# queries T: UDP and TCP, IPv4 and IPv6, from the client to the decoy, through the rules.
queries() {
	local t=$1
	lab_expect_www "$t: UDP/IPv4" c "$LAB_DECOY4" A +notcp
	lab_expect_www "$t: TCP/IPv4" c "$LAB_DECOY4" A +tcp
	lab_expect_www "$t: UDP/IPv6" c "$LAB_DECOY6" AAAA +notcp
	lab_expect_www "$t: TCP/IPv6" c "$LAB_DECOY6" AAAA +tcp
	lab_expect_src "$t: UDP/IPv4 answer's source" c "$LAB_DECOY4" A
	lab_expect_src "$t: UDP/IPv6 answer's source" c "$LAB_DECOY6" AAAA
}

# scenario MODE USER MASK [DOTPROXY ARGS...]: start, check privileges, query, reconnect, query.
scenario() {
	local mode=$1 user=$2 mask=$3; shift 3
	local t="$mode/$user" args rules h1 h2 marks uid gid i v
	[[ $# == 0 ]] && t="$mode/default user ($user)"
	LAB_DP_CACHE=0	# every query reaches the upstream
	mapfile -t args < <(lab_dotproxy_args)
	if ! lab_dotproxy_start --mode "$mode" "${args[@]}" --idle-timeout "$IDLE_MS" --mark "$MARK" "$@"; then
		fail "$t: dotproxy starts" "$(tail -n 5 "$LAB_DP_LOG" 2>/dev/null)"
		return
	fi
	expect_privs "$t" "$LAB_DP_PID" "$user" "$mask"
	uid=$(id -u "$user") gid=$(id -g "$user")
	check "$t: the log says who it runs as and what it kept" "$(grep 'running as' "$LAB_DP_LOG")" \
		grep -q "running as $user (uid $uid, gid $gid), capabilities .*, no_new_privs, seccomp on" "$LAB_DP_LOG"

	rules=(--mode "$mode" --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" --backend iptables)
	if ! lab_rules up "${rules[@]}"; then
		fail "$t: dotproxy-rules up ${rules[*]}" "$(tail -n 5 "$LAB_DIR/rules.log")"
		lab_dotproxy_stop
		return
	fi
	lab_wan53_reset
	queries "$t"
	h1=$(lab_metric dotproxy_tls_handshakes_total)
	marks=$(upstream_marks)
	check "$t: the upstream connection opened after the drop carries SO_MARK $MARK" "marks: ${marks:-none}" \
		[ "$marks" == "fwmark:$MARK" ]

	# past --idle-timeout the connection is closed; the next queries need a new one
	for ((i = 0; i < 60; i++)); do
		[[ -z $(lab_g ss -Htn state established dst "$LAB_DOT4:853") ]] && break
		sleep 0.1
	done
	check "$t: the idle upstream connection was closed" "still open after 6 s" [ "$i" -lt 60 ]
	queries "$t, new upstream connection"
	h2=$(lab_metric dotproxy_tls_handshakes_total)
	check "$t: a second TLS connection was opened, after the drop" "handshakes ${h1:-?} -> ${h2:-?}" \
		[ "${h2:-0}" -gt "${h1:-0}" ]
	marks=$(upstream_marks)
	check "$t: ... and it carries SO_MARK $MARK too" "marks: ${marks:-none}" [ "$marks" == "fwmark:$MARK" ]
	lab_expect_wan53_zero "$t: nothing in plaintext"
	if [[ $mode == nfqueue ]]; then
		# the kernel takes a verdict only from a sender with CAP_NET_ADMIN
		v=$(lab_metric dotproxy_nfq_verdict_errors_total)
		check "$t: the kernel accepted every verdict sent after the drop" \
			"dotproxy_nfq_verdict_errors_total=${v:-absent}" [ "${v:-x}" == 0 ]
	fi
	v=$(grep "seccomp: system call" "$LAB_DP_LOG")
	check "$t: no system call was refused" "$v" [ -z "$v" ]

	lab_rules down "${rules[@]}" || fail "$t: dotproxy-rules down" "$(tail -n 5 "$LAB_DIR/rules.log")"
	lab_dotproxy_stop
	check "$t: exits 0 on SIGTERM" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
}

id nobody >/dev/null 2>&1 || lab_bail "no user nobody on this machine"
scenario tproxy nobody $((CAP_NET_ADMIN | CAP_NET_BIND_SERVICE)) --user nobody
scenario redirect nobody $CAP_NET_ADMIN --user nobody
scenario nfqueue nobody $CAP_NET_ADMIN --user nobody
# root keeps its uid but not its capabilities, and gets no_new_privs and seccomp all the same
scenario redirect root $CAP_NET_ADMIN --user root
# no --user: dotproxy if that user exists, else nobody
if id dotproxy >/dev/null 2>&1; then default_user=dotproxy; else default_user=nobody; fi
scenario tproxy "$default_user" $((CAP_NET_ADMIN | CAP_NET_BIND_SERVICE))

# --- a --user that does not exist: one line, exit 1, nothing changed ---------------------------------
firewall() { lab_g iptables-save | grep -v '^#'; lab_g ip6tables-save | grep -v '^#'; lab_g nft list ruleset 2>/dev/null; }
for mode in tproxy nfqueue; do
	t="$mode --user no-such-user-dp"
	before=$(firewall)
	mapfile -t args < <(lab_dotproxy_args)
	[[ $mode == nfqueue ]] && args+=(--queue 5)
	err=$(lab_g timeout 10 "$DOTPROXY" --mode "$mode" "${args[@]}" --user no-such-user-dp 2>&1 >/dev/null)
	rc=$?
	check "$t: exits 1" "exit status $rc: $err" [ "$rc" == 1 ]
	check "$t: one line naming the user" "$err" [ "$err" == 'dotproxy: --user "no-such-user-dp": no such user' ]
	seen=$(lab_g ss -Hlnut "sport = :$LAB_PORT"; lab_g ss -Hlnt "sport = :${LAB_METRICS##*:}")
	check "$t: nothing left listening" "$seen" [ -z "$seen" ]
	seen=$(lab_g grep -E '^ +5 ' /proc/net/netfilter/nfnetlink_queue 2>/dev/null)
	check "$t: netfilter queue 5 left unbound" "$seen" [ -z "$seen" ]
	after=$(firewall)
	check "$t: the firewall is as it was" "$(diff <(echo "$before") <(echo "$after") | head -n 5)" \
		[ "$before" == "$after" ]
done

lab_finish
