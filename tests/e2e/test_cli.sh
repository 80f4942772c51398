#!/usr/bin/env bash
# tests/e2e/test_cli.sh: what a user sees from the daemon's command line. Bad flags: one line on
# stderr naming the flag, exit 2, nothing served. Setup failures (port taken, CA file unloadable):
# one line, exit 1, before serving. --help documents every flag the daemon accepts; --version.
set -u
cd "$(dirname "$0")/../.."
DOTPROXY=${DOTPROXY:-build/dotproxy}
NS=dpcli-$$
pass=0 failn=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { failn=$((failn + 1)); echo "not ok - $*"; }
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$NS" && ip -n "$NS" link set lo up || { echo "not ok - cannot create namespace"; exit 1; }
run() { ip netns exec "$NS" timeout 5 "$DOTPROXY" "$@"; }

# bad ARGS... -- FLAG: exit 2, exactly one stderr line that names FLAG, nothing on stdout
bad() {
	local args=() flag out err rc
	while [[ $1 != -- ]]; do args+=("$1"); shift; done
	flag=$2
	err=$(run "${args[@]}" 2>&1 >/dev/null)
	rc=$?
	out=$(run "${args[@]}" 2>/dev/null)
	if [[ $rc == 2 && $(wc -l <<<"$err") == 1 && $err == "dotproxy: "*"$flag"* && -z $out ]]; then
		ok "bad flags ${args[*]}: exit 2, one line: $err"
	else
		fail "bad flags ${args[*]}: want exit 2 and one line naming $flag; got exit $rc: $err"
	fi
}
bad --mode nat -- --mode
bad --port 0 -- --port
bad --port 70000 -- --port
bad --port 53x -- --port
bad --upstream 192.0.2.1 -- "missing #AUTHNAME"
bad --upstream "192.0.2.1#" -- "missing auth name"
bad --upstream "192.0.2.300#x" -- --upstream
bad --upstream "192.0.2.1@0#x" -- --upstream
bad --upstream "192.0.2.1#x^sha256/short" -- pin
bad --pin sha256/AAAA -- --pin
bad --listen 127.0.0.1 -- --listen
bad --mode redirect --listen 127.0.0.1@abc -- --listen
bad --metrics 127.0.0.1 -- --metrics
bad --timeout 5 -- --timeout
bad --max-inflight 0 -- --max-inflight
bad --queue 1 -- --queue
bad --mode nfqueue --queue 65536 -- --queue
bad --mode nfqueue --queue-len 0 -- --queue-len
bad --fail-open -- --fail-open
bad --policy random -- --policy
bad --upstream-ca /tmp/x.pem -- --upstream-ca
bad --cache-size 0 --serve-stale 60 -- --serve-stale
bad --no-such-flag -- --no-such-flag
bad --port -- --port
bad stray -- stray

# --help names every long option the daemon accepts (read from the binary's option table)
help=$(run --help)
rc=$?
missing=""
for f in mode port listen upstream pin upstream-ca ca-file metrics mark timeout idle-timeout max-inflight max-tcp-clients \
	queue queue-len fail-open policy max-conns cache-size serve-stale ratelimit verbose help version; do
	grep -q -- "--$f" <<<"$help" || missing+=" --$f"
	# and the flag really exists: an unknown one would say "unknown option"
	if run "--$f" 2>&1 | grep -q "unknown option"; then missing+=" (--$f unknown to the parser)"; fi
done
if [[ $rc == 0 && -z $missing ]]; then ok "--help documents every flag, exit 0"; else fail "--help: exit $rc, missing:$missing"; fi
v=$(run --version)
if [[ $? == 0 && $v =~ ^dotproxy\ [0-9]+\.[0-9]+\.[0-9]+$ ]]; then ok "--version: $v"; else fail "--version: $v"; fi

# setup failures: exit 1, one line, before serving
ip netns exec "$NS" "$DOTPROXY" --mode redirect --port 5300 --listen 127.0.0.1 --upstream 127.0.0.1@853#x 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$NS" ss -Hlnu 'sport = :5300' | grep -q . && break; sleep 0.05; done
err=$(run --mode redirect --port 5300 --listen 127.0.0.1 --upstream 127.0.0.1@853#x 2>&1 >/dev/null)
rc=$?
if [[ $rc == 1 && $err == *"cannot listen on UDP 127.0.0.1:5300: Address already in use"* ]]; then
	ok "a second daemon on a taken UDP port exits 1: ${err##*$'\n'}"
else
	fail "a second daemon on a taken port: want exit 1 and 'cannot listen on UDP ...'; got exit $rc: $err"
fi
err=$(run --mode redirect --port 5301 --listen 127.0.0.1 --upstream 127.0.0.1@853#x --ca-file /nonexistent.pem 2>&1 >/dev/null)
rc=$?
if [[ $rc == 1 && $(wc -l <<<"$err") == 1 && $err == *'--ca-file "/nonexistent.pem"'* ]]; then
	ok "an unloadable --ca-file exits 1 with one line: $err"
else
	fail "unloadable --ca-file: exit $rc: $err"
fi
if ip netns exec "$NS" ss -Hlnu 'sport = :5301' | grep -q .; then fail "nothing listens after a failed start"; else ok "nothing listens after a failed start"; fi

# nfqueue: a queue another program reads is refused with a line that says so
ip netns exec "$NS" "$DOTPROXY" --mode nfqueue --queue 7 --port 5302 --upstream 127.0.0.1@853#x 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do
	ip netns exec "$NS" awk '$1 == 7 && $2 != 0 { f = 1 } END { exit !f }' /proc/net/netfilter/nfnetlink_queue 2>/dev/null && break
	sleep 0.05
done
err=$(run --mode nfqueue --queue 7 --port 5303 --upstream 127.0.0.1@853#x 2>&1 >/dev/null)
rc=$?
if [[ $rc == 1 && $(wc -l <<<"$err") == 1 && $err == *"--queue 7: another program reads this netfilter queue"* ]]; then
	ok "a second daemon on a queue in use exits 1 with one line: $err"
else
	fail "a second daemon on queue 7: want exit 1 and 'another program reads'; got exit $rc: $err"
fi
if ip netns exec "$NS" ss -Hlnt 'sport = :5303' | grep -q .; then fail "nothing listens after the refused start"; else ok "nothing listens after the refused start"; fi

echo "# test_cli.sh: $pass ok, $failn not ok"
[[ $failn == 0 ]]
