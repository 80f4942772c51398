#!/usr/bin/env bash
# tests/e2e/test_notify.sh: the daemon as systemd (Type=notify, WatchdogSec=) sees it. A python3
# unix datagram listener plays the service manager at NOTIFY_SOCKET (a path, then an abstract
# name) and records every message with the sender's PID (SCM_CREDENTIALS, as systemd checks
# NotifyAccess=main). dotproxy runs in redirect mode on the lab gateway's loopback with the lab's
# DoT server. Asserts: READY=1 (with STATUS=) is the first message and comes from the daemon's PID;
# a query sent the moment READY=1 arrives is answered with the DoT server's record; WATCHDOG=1
# keeps coming at WATCHDOG_USEC/2, never a gap as long as WATCHDOG_USEC; SIGHUP gives
# RELOADING=1 (with MONOTONIC_USEC) then READY=1 (once the daemon reloads); STOPPING=1 is the last
# message after SIGTERM; a watchdog meant for another PID sends no keep-alives; a bad
# NOTIFY_SOCKET is one error line and exit 1 before anything listens.
set -u
. "$(dirname "$0")/../lab.sh"

WD_USEC=400000            # keep-alives expected every 200 ms
lab_up

LISTENER=$LAB_DIR/notify-listener.py
cat >"$LISTENER" <<'EOF'
# The service manager's end of sd_notify for the test: prints one line per datagram,
# "MONOTONIC_SECONDS SENDER_PID MESSAGE" (newlines in MESSAGE shown as |), and when READY=1
# first arrives sends one DNS query from another thread and prints "ready-query ...".
import os, random, socket, struct, sys, threading, time
labdir, name, out, server, port, qname = sys.argv[1:7]
sys.path.insert(0, labdir)
import dnsclient

lock = threading.Lock()
f = open(out, "w", buffering=1)

def emit(line):
    with lock:
        f.write(line + "\n")

def ready_query():
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    q.settimeout(3)
    qid = random.randrange(65536)
    try:
        q.connect((server, int(port)))
        q.send(dnsclient.query(qid, qname, "A"))
        rid, flags, _q, answers = dnsclient.parse(q.recv(65535))
        emit("ready-query id_match=%d rcode=%s answers=%s"
             % (rid == qid, dnsclient.rcode_name(flags), ",".join(sorted(answers)) or "none"))
    except OSError as e:
        emit("ready-query none (%s)" % e)

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\0" + name[1:] if name.startswith("@") else name)
emit("listening")
deadline = time.monotonic() + 60          # bounded, whatever the test does
ready = False
while time.monotonic() < deadline:
    s.settimeout(deadline - time.monotonic())
    try:
        msg, anc, _fl, _addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        break
    pid = -1
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    emit("%.6f %d %s" % (time.monotonic(), pid, msg.decode(errors="replace").replace("\n", "|")))
    if not ready and b"READY=1" in msg.split(b"\n"):
        ready = True
        threading.Thread(target=ready_query, daemon=True).start()
EOF

# listener_start NAME OUT: the listener in the gateway ns (an abstract name is per network
# namespace); waits until it is bound.
listener_start() {
	local i
	lab_spawn g "$LAB_DIR/listener.err" "$LAB_PY" "$LISTENER" "$LAB_CONF_DIR" "$1" "$2" 127.0.0.1 "$LAB_PORT" "$LAB_WWW"
	LISTENER_PID=$LAB_SPAWN_PID
	for ((i = 0; i < 100; i++)); do
		grep -q '^listening' "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	lab_bail "the notify listener did not start: $(cat "$LAB_DIR/listener.err")"
}

# wait_line FILE REGEX SECONDS: until a line of FILE matches.
wait_line() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

dp_args=(--mode redirect --listen "127.0.0.1@$LAB_PORT" --upstream "$LAB_DOT4@853#$LAB_AUTH" --ca-file "$LAB_CA"
	--metrics "$LAB_METRICS")

# --- 1: a path socket, with a watchdog -------------------------------------------------------
OUT=$LAB_DIR/notify-1.log
listener_start "$LAB_DIR/notify.sock" "$OUT"
export NOTIFY_SOCKET=$LAB_DIR/notify.sock WATCHDOG_USEC=$WD_USEC
unset WATCHDOG_PID
lab_dotproxy_start "${dp_args[@]}" || lab_bail "dotproxy did not start"
unset NOTIFY_SOCKET WATCHDOG_USEC
DP=$LAB_DP_PID

wait_line "$OUT" '^ready-query' 10
msgs=$(grep -E '^[0-9.]+ -?[0-9]+ ' "$OUT")
first=$(head -n1 <<<"$msgs")
want="$DP READY=1|STATUS=redirect mode on port $LAB_PORT, 1 upstream"
if [[ ${first#* } == "$want" ]]; then ok "READY=1 is the first message, from the daemon's PID, with STATUS=: ${first#* }"
else fail "READY=1 first, from pid $DP" "first message: ${first:-none}; want: $want"; fi
rq=$(grep '^ready-query' "$OUT")
if [[ $rq == "ready-query id_match=1 rcode=NOERROR answers=$LAB_WWW_A" ]]; then
	ok "a query sent when READY=1 arrived was answered: $LAB_WWW_A from the DoT server"
else
	fail "a query sent when READY=1 arrived is answered" "${rq:-no ready-query line}"
fi

sleep 2.5
# keep-alives: count, sender, and the gaps between them (ms)
wd=$(grep -E '^[0-9.]+ -?[0-9]+ WATCHDOG=1$' "$OUT")
nwd=$(grep -c . <<<"$wd")
others=$(awk '$2 != '"$DP"'' <<<"$wd")
read -r mingap maxgap medgap < <(awk '{ if (NR > 1) print int(($1 - p) * 1000); p = $1 }' <<<"$wd" | sort -n |
	awk '{ v[NR] = $1 } END { if (NR) print v[1], v[NR], v[int((NR + 1) / 2)]; else print -1, -1, -1 }')
if ((nwd >= 10)) && [[ -z $others ]] && ((medgap >= 150 && medgap <= 260 && maxgap < WD_USEC / 1000)); then
	ok "WATCHDOG=1 repeats: $nwd in about 3 s, gaps ${mingap}-${maxgap} ms (median $medgap; WATCHDOG_USEC/2 = $((WD_USEC / 2000)))"
else
	fail "WATCHDOG=1 every $((WD_USEC / 2000)) ms from the daemon" \
		"$nwd keep-alives, gaps min $mingap max $maxgap median $medgap ms, from other pids: ${others:-none}"
fi

# a stuck loop misses its keep-alives: stop the process for 1 s, none may arrive meanwhile
before=$nwd
kill -STOP "$DP"
sleep 1
n_stopped=$(grep -cE ' WATCHDOG=1$' "$OUT")
kill -CONT "$DP"
sleep 0.5
n_after=$(grep -cE ' WATCHDOG=1$' "$OUT")
if ((n_stopped <= before + 1 && n_after > n_stopped)); then
	ok "no keep-alive while the daemon is stopped (SIGSTOP), and they resume after SIGCONT ($before, $n_stopped, $n_after)"
else
	fail "keep-alives stop while the daemon does" "before $before, after 1 s stopped $n_stopped, after resuming $n_after"
fi

# SIGHUP (systemctl reload): RELOADING=1 with the time on CLOCK_MONOTONIC, then READY=1 again
if "$DOTPROXY" --help | grep -q -- --check-config; then
	hup_at=$(grep -cE '^[0-9.]+ -?[0-9]+ ' "$OUT")
	kill -HUP "$DP"
	for ((i = 0; i < 60; i++)); do
		tail -n +"$((hup_at + 1))" "$OUT" | grep -qE " $DP READY=1" && break
		sleep 0.05
	done
	after=$(tail -n +"$((hup_at + 1))" "$OUT" | grep -vE ' WATCHDOG=1$')
	read -r t_rel usec < <(sed -n 's/^\([0-9.]*\) '"$DP"' RELOADING=1|MONOTONIC_USEC=\([0-9]*\)$/\1 \2/p' <<<"$after" | head -n1)
	seq=$(cut -d' ' -f3 <<<"$after" | cut -d'|' -f1 | paste -sd' ' -)
	# MONOTONIC_USEC is the daemon's clock when it began; the listener got it a moment later
	lag=$(awk -v t="${t_rel:-0}" -v u="${usec:-0}" 'BEGIN { printf "%d", (t * 1e6 - u) / 1000 }')
	if [[ $seq == "RELOADING=1 READY=1" ]] && ((lag >= 0 && lag < 1000)) && lab_dotproxy_alive; then
		ok "SIGHUP: RELOADING=1 (MONOTONIC_USEC ${lag} ms before it arrived), then READY=1"
	else
		fail "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1" "messages after SIGHUP: ${seq:-none}; lag ${lag} ms; $(tail -n 3 "$LAB_DP_LOG")"
	fi
else
	echo "ok - SIGHUP: RELOADING=1, then READY=1 # SKIP this daemon has no reload (no --check-config) yet"
fi

lab_dotproxy_stop
rc=$LAB_DP_RC
sleep 0.2
last=$(grep -E '^[0-9.]+ -?[0-9]+ ' "$OUT" | tail -n1)
if [[ $rc == 0 && ${last#* } == "$DP STOPPING=1" ]]; then ok "SIGTERM: STOPPING=1 is the last message, exit 0"
else fail "SIGTERM: STOPPING=1 last, exit 0" "exit $rc, last message: ${last:-none}"; fi
lab_stop_pid "$LISTENER_PID"

# --- 2: an abstract name; the watchdog is another process's ------------------------------------
OUT=$LAB_DIR/notify-2.log
listener_start "@dotproxy-test-notify-$LAB_ID" "$OUT"
export NOTIFY_SOCKET=@dotproxy-test-notify-$LAB_ID WATCHDOG_USEC=$WD_USEC WATCHDOG_PID=1
lab_dotproxy_start "${dp_args[@]}" || lab_bail "dotproxy did not start (abstract socket)"
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
DP=$LAB_DP_PID
wait_line "$OUT" '^ready-query' 10
sleep 1
lab_dotproxy_stop
rc=$LAB_DP_RC
sleep 0.2
got=$(grep -E '^[0-9.]+ -?[0-9]+ ' "$OUT" | cut -d' ' -f2- | paste -sd'/' -)
want="$DP READY=1|STATUS=redirect mode on port $LAB_PORT, 1 upstream/$DP STOPPING=1"
if [[ $rc == 0 && $got == "$want" ]]; then
	ok "abstract NOTIFY_SOCKET: READY=1 then STOPPING=1, and no keep-alive for WATCHDOG_PID=1"
else
	fail "abstract NOTIFY_SOCKET, watchdog for another pid" "exit $rc, messages: ${got:-none}; want $want"
fi
rq=$(grep '^ready-query' "$OUT")
[[ $rq == *"rcode=NOERROR answers=$LAB_WWW_A" ]] || fail "abstract NOTIFY_SOCKET: answered at READY=1" "${rq:-none}"
lab_stop_pid "$LISTENER_PID"

# --- 3: a NOTIFY_SOCKET that cannot be used ----------------------------------------------------
for bad in relative/notify "$LAB_DIR/no-such-socket"; do
	err=$(NOTIFY_SOCKET=$bad ip netns exec "$LAB_NS_G" timeout 5 "$DOTPROXY" "${dp_args[@]}" 2>&1 >/dev/null)
	rc=$?
	if [[ $rc == 1 && $(wc -l <<<"$err") == 1 && $err == "dotproxy: NOTIFY_SOCKET \"$bad\": "* ]] &&
		[[ -z $(ip netns exec "$LAB_NS_G" ss -Hlnu "sport = :$LAB_PORT") ]]; then
		ok "NOTIFY_SOCKET=$bad: exit 1, one line, nothing listens: $err"
	else
		fail "NOTIFY_SOCKET=$bad: exit 1 with one line" "exit $rc: $err"
	fi
done

lab_finish
