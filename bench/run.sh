#!/usr/bin/env bash
# bench/run.sh: dotproxy against other DNS-over-TLS forwarders, in the netns lab (tests/lab.sh).
#
#   bench/run.sh [--rounds N] [--duration S] [--only LIST] [--out DIR] [--smoke]
#
# The lab's upstream namespace runs Unbound as the DoT server (198.51.100.2@853, the lab CA, name
# dot.dotproxy.test) with a redirect zone: every name under bench.test answers, so every query
# can have a name of its own. One forwarder at a time runs in the gateway namespace and forwards
# over verified DoT to it; dnsperf in the client namespace loads it:
#   plain              no forwarder: dnsperf straight to the upstream over UDP port 53 (baseline)
#   dotproxy-redirect, dotproxy-tproxy, dotproxy-nfqueue
#                      build/dotproxy --mode MODE and dotproxy-rules for it (gateway scope); the
#                      client asks the decoy 198.51.100.53 and is intercepted; default cache
#   dotproxy-nocache   --mode tproxy --cache-size 0
#   unbound, unbound-nocache, dnsdist, dnsdist-nocache, stubby
#                      listening on the gateway's LAN address 192.0.2.1:53 (bench/conf/)
# Workloads: miss (a new name every query), hit (100 names, warmed first; forwarders that
# cache), paced (2000 queries/s of new names: latency at light load). Every forwarder starts
# afresh for every forwarder x workload x round, rounds alternate the forwarders. Figures per run
# go to DIR/runs.tsv, then bench/report.py writes DIR/RESULTS.md and DIR/bench.png.
#
# --rounds N     rounds over every forwarder (default 2)
# --duration S   seconds of the miss and hit workloads (default 8; paced takes min(S, 5))
# --only LIST    comma-separated forwarders from the list above (default all)
# --out DIR      where results go (default bench/results)
# --smoke        dotproxy-tproxy only, miss and paced for 2 s, one round, into a temp dir unless
#                --out is given; a few seconds
# Exits 1 if some run got no answer at all (a broken forwarder), 2 on bad arguments.
# Environment: BENCH_NODELAY=0 runs the peers and the upstream without bench/nodelay.c.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
ALL_FWD=(plain dotproxy-redirect dotproxy-tproxy dotproxy-nfqueue dotproxy-nocache
	unbound unbound-nocache dnsdist dnsdist-nocache stubby)
COLUMNS_TSV="round forwarder workload seconds qps sent completed lost errors p50_ms p99_ms max_ms cpu_us_per_q vmhwm_mb threads wan53 ended"

ROUNDS=2 DURATION=8 ONLY='' OUT='' SMOKE=0 ARGS="$*"
usage() { sed -n '4,25s/^# \{0,1\}//p' "$0" >&2; exit 2; }
while (($#)); do
	case $1 in
	--rounds) ROUNDS=${2:-}; shift 2 || usage ;;
	--duration) DURATION=${2:-}; shift 2 || usage ;;
	--only) ONLY=${2:-}; shift 2 || usage ;;
	--out) OUT=${2:-}; shift 2 || usage ;;
	--smoke) SMOKE=1; shift ;;
	-h|--help) usage ;;
	*) echo "bench: unknown argument $1" >&2; usage ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "bench: --rounds: 1-99" >&2; exit 2; }
[[ $DURATION =~ ^[1-9][0-9]{0,2}$ ]] || { echo "bench: --duration: 1-999 seconds" >&2; exit 2; }
if ((SMOKE)); then
	ROUNDS=1 DURATION=2 ONLY=${ONLY:-dotproxy-tproxy}
	WORKLOADS=(miss paced)
	[[ -n $OUT ]] || OUT=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-bench.XXXXXX")
else
	WORKLOADS=(miss hit paced)
fi
PACED=$((DURATION < 5 ? DURATION : 5))
PACED_QPS=2000
OUT=${OUT:-$BENCH_DIR/results}
FWD=()
if [[ -n $ONLY ]]; then
	IFS=, read -ra FWD <<<"$ONLY"
	for f in "${FWD[@]}"; do
		[[ " ${ALL_FWD[*]} " == *" $f "* ]] || { echo "bench: --only: unknown forwarder $f (${ALL_FWD[*]})" >&2; exit 2; }
	done
else
	FWD=("${ALL_FWD[@]}")
fi
for t in dnsperf awk sort python3; do
	command -v "$t" >/dev/null || { echo "bench: missing $t (make bench installs it)" >&2; exit 2; }
done
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)

# shellcheck source=tests/lab.sh
. "$REPO/tests/lab.sh"

# fwd_workloads F: the workloads forwarder F runs (hit only where there is a cache to hit).
fwd_workloads() {
	local w
	for w in "${WORKLOADS[@]}"; do
		if [[ $w == hit ]]; then
			case $1 in plain|*nocache|stubby) continue ;; esac
		fi
		echo "$w"
	done
}

bench_log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }

# --- the upstream: the lab's DoT Unbound, replaced by one with the bench zone and load tuning ----
# Same certificate, addresses and test zone (lab_unbound_extra), plus: two threads, connections
# spread over them, 512 TCP/TLS connections per thread, no logging, every name under bench.test
# answered from one record, and a plain UDP/TCP port 53 on the same address for the baseline.
upstream_start() {
	lab_unbound_stop dot
	# LD_PRELOAD reaches the Unbound that lab_unbound_extra starts (and the tools it runs on the
	# way, which the shim leaves alone: it only touches TCP sockets)
	LD_PRELOAD=${SHIM:-} lab_unbound_extra bench "$LAB_DOT4" "$LAB_DOT6" \
		'num-threads: 2' 'so-reuseport: no' 'incoming-num-tcp: 512' 'verbosity: 0' \
		'extended-statistics: no' 'log-queries: no' 'log-replies: no' \
		"interface: $LAB_DOT4@53" 'do-udp: yes' \
		'local-zone: "bench.test." redirect' 'local-data: "bench.test. 300 IN A 203.0.113.1"' ||
		return 1
	# shellcheck disable=SC2154  # set by lab_unbound_extra
	UPSTREAM_THREADS=$(nthreads "$LAB_UB_PID_bench")
}

# --- forwarders --------------------------------------------------------------------------------
# fill TEMPLATE OUT: substitute the bench's addresses and paths into a bench/conf template.
fill() {
	sed -e "s|@DIR@|$WORK|g" -e "s|@LISTEN@|$LAB_GL4|g" -e "s|@AUTH@|$LAB_AUTH|g" -e "s|@CA@|$LAB_CA|g" \
		-e "s|@UPSTREAM_IP@|$LAB_DOT4|g" -e "s|@CHECK@|health.bench.test.|g" \
		-e "s|@UB_UPSTREAM@|$LAB_DOT4@853#$LAB_AUTH|g" -e "s|@DD_UPSTREAM@|$LAB_DOT4:853|g" \
		-e "s|@CACHE@|${3:-}|g" "$1" >"$2"
}

# fwd_target F: the address the client sends its queries to for forwarder F.
fwd_target() {
	case $1 in
	plain) echo "$LAB_DOT4" ;;
	dotproxy-*) echo "$LAB_DECOY4" ;;
	*) echo "$LAB_GL4" ;;
	esac
}

# fwd_start F LOG: start forwarder F in the gateway ns (and its rules); sets PID (empty for plain).
fwd_start() {
	local f=$1 log=$2 mode args pre=()
	PID=''
	[[ -n $SHIM ]] && pre=(env "LD_PRELOAD=$SHIM")
	case $f in
	plain) return 0 ;;
	dotproxy-*)
		mode=${f#dotproxy-}
		[[ $mode == nocache ]] && mode=tproxy
		mapfile -t args < <(if [[ $f == dotproxy-nocache ]]; then LAB_DP_CACHE=0 lab_dotproxy_args; else lab_dotproxy_args; fi)
		lab_dotproxy_start --mode "$mode" "${args[@]}" 2>>"$log" || { cat "$LAB_DP_LOG" >>"$log"; return 1; }
		PID=$LAB_DP_PID
		lab_rules up --mode "$mode" --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT" 2>>"$log"
		return
		;;
	unbound|unbound-nocache)
		fill "$BENCH_DIR/conf/unbound-fwd.conf.in" "$WORK/$f.conf" \
			"$BENCH_DIR/conf/unbound-fwd-$([[ $f == unbound ]] && echo cache || echo nocache).conf"
		unbound-checkconf "$WORK/$f.conf" >>"$log" 2>&1 || return 1
		ip netns exec "$LAB_NS_G" "${pre[@]}" unbound -d -c "$WORK/$f.conf" >>"$log" 2>&1 &
		PID=$!
		;;
	dnsdist|dnsdist-nocache)
		fill "$BENCH_DIR/conf/dnsdist.conf.in" "$WORK/$f.conf" "$([[ $f == dnsdist ]] && echo 100000 || echo 0)"
		ip netns exec "$LAB_NS_G" "${pre[@]}" dnsdist --supervised --disable-syslog -C "$WORK/$f.conf" >>"$log" 2>&1 &
		PID=$!
		;;
	stubby)
		fill "$BENCH_DIR/conf/stubby.yml.in" "$WORK/$f.yml"
		ip netns exec "$LAB_NS_G" "${pre[@]}" stubby -C "$WORK/$f.yml" >>"$log" 2>&1 &
		PID=$!
		;;
	esac
	BENCH_PEER_PID=$PID
	lab_wait_port "$LAB_NS_G" u 53 10 "$PID" || return 1
}

# fwd_stop F: stop forwarder F (by PID) and remove its rules.
fwd_stop() {
	case $1 in
	plain) ;;
	dotproxy-*) lab_rules down; lab_dotproxy_stop ;;
	*) lab_stop_pid "${BENCH_PEER_PID:-}" ;;
	esac
	BENCH_PEER_PID=''
}

# answers TARGET NAME: true once dig from the client gets NAME's bench.test record (10 s at most;
# dnsdist answers once its first health check has passed).
answers() {
	local i out
	for ((i = 0; i < 20; i++)); do
		out=$(lab_c dig +tries=1 +time=1 +short "@$1" "$2" A 2>&1)
		[[ $out == 203.0.113.1 ]] && return 0
		[[ -n $PID ]] && ! lab_running "$PID" && return 1
		sleep 0.25
	done
	return 1
}

# udp_drops: "client/gateway/upstream" UDP datagrams dropped for a full receive buffer, so far.
udp_drops() {
	local ns out=()
	for ns in "$LAB_NS_C" "$LAB_NS_G" "$LAB_NS_U"; do
		# shellcheck disable=SC2016  # awk's own $ fields
		out+=("$(ip netns exec "$ns" awk '$1 == "Udp:" && $2 ~ /^[0-9]/ { print $6 }' /proc/net/snmp)")
	done
	(IFS=/; echo "${out[*]}")
}

# nthreads PID: how many threads PID has.
nthreads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# ticks PID: user+system CPU clock ticks of PID, all its threads, alive or exited.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# --- one run -------------------------------------------------------------------------------------
# run_one ROUND F WORKLOAD: start F afresh, warm it, load it, append one line to runs.tsv.
run_one() {
	local round=$1 f=$2 w=$3 log="$WORK/$2.$3.$1.log" target secs out t0=0 t1=0 hwm='-' cpu='-' \
		threads='-' wan lat p50='-' p99='-' mx='-' sent completed lost qps noerr errors ended kids drops0 drops1
	local perf=(-s "$(fwd_target "$f")" -c 8 -q 200)
	target=$(fwd_target "$f")
	case $w in
	miss) secs=$DURATION; perf+=(-d "$NAMES" -n 1 -l "$secs") ;;
	hit) secs=$DURATION; perf+=(-d "$HITS" -l "$secs") ;;
	paced) secs=$PACED; perf+=(-d "$NAMES" -n 1 -l "$secs" -Q "$PACED_QPS") ;;
	esac
	bench_log "round $round: $f $w (${secs}s)"
	lab_wan53_reset
	if ! fwd_start "$f" "$log" || ! answers "$target" "warmup-$round-$w.bench.test"; then
		bench_log "$f did not start or answer; log: $(tail -n 3 "$log" | tr '\n' ' ')"
		{ echo "== round $round $f $w: did not start or answer"; tail -n 20 "$log"; } >>"$OUT/failures.log"
		fwd_stop "$f"
		printf '%s\n' "$round $f $w $secs 0 0 0 0 0 - - - - - - - failed" | tr ' ' '\t' >>"$TSV"
		return
	fi
	if [[ $w == hit ]]; then   # every one of the 100 names into the cache first
		lab_c timeout 30 dnsperf -s "$target" -d "$HITS" -n 1 -c 1 -q 10 >"$WORK/warm.out" 2>&1
	fi
	[[ -n $PID ]] && t0=$(ticks "$PID")
	drops0=$(udp_drops)
	lab_c timeout $((secs + 30)) dnsperf "${perf[@]}" -v >"$WORK/perf.out" 2>&1
	if [[ -n $PID ]]; then
		t1=$(ticks "$PID")
		hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status" 2>/dev/null)
		threads=$(nthreads "$PID")
		kids=$(cat /proc/"$PID"/task/*/children 2>/dev/null | wc -w)
		((kids == 0)) || echo "== round $round $f $w: $kids child processes (their CPU is not counted)" >>"$OUT/failures.log"
	fi
	wan=$(lab_wan53_count)
	drops1=$(udp_drops)
	fwd_stop "$f"

	sent=$(awk '/Queries sent:/ { print $3 }' "$WORK/perf.out")
	completed=$(awk '/Queries completed:/ { print $3 }' "$WORK/perf.out")
	lost=$(awk '/Queries lost:/ { print $3 }' "$WORK/perf.out")
	qps=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$WORK/perf.out")
	noerr=$(sed -n 's/.*Response codes:.*NOERROR \([0-9]*\).*/\1/p' "$WORK/perf.out")
	ended=$(sed -n 's/.*Testing complete (\(.*\)).*/\1/p' "$WORK/perf.out" | tr ' ' _)
	errors=$(( ${completed:-0} - ${noerr:-0} ))
	if [[ -n $PID && ${completed:-0} -gt 0 ]]; then
		cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$completed" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
	fi
	# per-query latencies from -v: "> RCODE NAME TYPE SECONDS"; nearest-rank percentiles
	lat=$(awk '$1 == ">" && NF == 5 { printf "%.3f\n", $5 * 1000 }' "$WORK/perf.out" | sort -n |
		awk '{ a[NR] = $1 } END {
			if (NR == 0) { print "- - -"; exit }
			i = int(NR * 0.5); if (i < NR * 0.5) i++; if (i < 1) i = 1; p50 = a[i]
			i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1; p99 = a[i]
			print p50, p99, a[NR] }')
	read -r p50 p99 mx <<<"$lat"
	if [[ -z $sent ]]; then
		{ echo "== round $round $f $w: dnsperf printed no statistics"; tail -n 5 "$WORK/perf.out"; } >>"$OUT/failures.log"
	elif ((${completed:-0} == 0)); then
		{ echo "== round $round $f $w: nothing answered"; tail -n 20 "$log"; } >>"$OUT/failures.log"
	fi
	if ((${lost:-0} > 0)); then
		printf 'round %s %s %s: %s of %s queries lost (no answer within 5 s); UDP receive-buffer drops in the client/gateway/upstream namespaces meanwhile: %s\n' \
			"$round" "$f" "$w" "$lost" "$sent" "$(awk -F/ -v a="$drops0" 'BEGIN { split(a, b, "/") } { print $1 - b[1] "/" $2 - b[2] "/" $3 - b[3] }' <<<"$drops1")" \
			>>"$OUT/notes.txt"
	fi
	printf '%s\n' "$round $f $w $secs ${qps:-0} ${sent:-0} ${completed:-0} ${lost:-0} $errors $p50 $p99 $mx $cpu ${hwm:--} $threads ${wan:--} ${ended:-none}" |
		tr ' ' '\t' >>"$TSV"
	bench_log "  qps=${qps:-0} completed=${completed:-0} lost=${lost:-0} errors=$errors p50=$p50 p99=$p99 max=$mx ms cpu/q=$cpu us hwm=${hwm:--} MB wan53=$wan"
	rm -f "$WORK/perf.out"
}

# --- main ----------------------------------------------------------------------------------------
START=$SECONDS
HZ=$(getconf CLK_TCK)
BENCH_PEER_PID=''
lab_up
WORK=$LAB_DIR/bench
mkdir -p "$WORK"
# stop a peer that is still running before the lab goes down, keep lab_down's exit status
trap 'rc=$?; [[ -n ${BENCH_PEER_PID:-} ]] && lab_stop_pid "$BENCH_PEER_PID"; (exit $rc); lab_down' EXIT

SHIM=''
if [[ ${BENCH_NODELAY:-1} != 0 ]]; then
	if cc -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -o "$WORK/nodelay.so" "$BENCH_DIR/nodelay.c" -ldl \
		>"$WORK/nodelay.log" 2>&1; then
		SHIM=$WORK/nodelay.so
	else
		bench_log "could not build bench/nodelay.c (running without it): $(head -n 3 "$WORK/nodelay.log")"
	fi
fi
upstream_start || lab_bail "the bench upstream Unbound did not start"

# names: enough for the fastest forwarder never to run out within --duration (dnsperf -n 1)
NAMES=$WORK/miss.txt HITS=$WORK/hit.txt
nnames=$((SMOKE ? 500000 : (DURATION * 200000 > 1000000 ? DURATION * 200000 : 1000000)))
awk -v n="$nnames" 'BEGIN { for (i = 0; i < n; i++) printf "m%07d.bench.test A\n", i }' >"$NAMES"
awk 'BEGIN { for (i = 0; i < 100; i++) printf "h%03d.bench.test A\n", i }' >"$HITS"

TSV=$OUT/runs.tsv
rm -f "$OUT/failures.log" "$OUT/notes.txt"
tr ' ' '\t' <<<"$COLUMNS_TSV" >"$TSV"
dp_sum() { sha256sum "$DOTPROXY" 2>/dev/null | cut -c1-12; }
{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'command\t%s\n' "${BENCH_VIA:+$BENCH_VIA: }bench/run.sh${ARGS:+ $ARGS} (in effect: --rounds $ROUNDS --duration $DURATION${ONLY:+ --only $ONLY}$( ((SMOKE)) && echo ' --smoke'))"
	printf 'nproc\t%s\n' "$(nproc)"
	printf 'cpu\t%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	printf 'kernel\t%s\n' "$(uname -sr)"
	printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
	printf 'memory\t%s\n' "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	for p in unbound dnsdist stubby dnsperf; do
		printf 'pkg_%s\t%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo missing)"
	done
	printf 'dotproxy_commit\t%s\n' "$(git -C "$REPO" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
	printf 'dotproxy_sha256\t%s\n' "$(dp_sum)"
	printf 'upstream\tUnbound %s, %s threads, DoT on %s@853, plain UDP on %s@53\n' \
		"$(dpkg-query -W -f='${Version}' unbound 2>/dev/null)" "$UPSTREAM_THREADS" "$LAB_DOT4" "$LAB_DOT4"
	printf 'nodelay\t%s\n' "$([[ -n $SHIM ]] && echo yes || echo no)"
	printf 'durations\tmiss/hit %s s, paced %s s at %s qps\n' "$DURATION" "$PACED" "$PACED_QPS"
	printf 'dnsperf\t-c 8 -q 200 -v (every workload)\n'
	printf 'loadavg_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/meta.txt"
DP_SUM0=$(dp_sum)

for ((round = 1; round <= ROUNDS; round++)); do
	for f in "${FWD[@]}"; do
		for w in $(fwd_workloads "$f"); do
			run_one "$round" "$f" "$w"
		done
	done
done

{
	printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	[[ $(dp_sum) == "$DP_SUM0" ]] || printf 'warning\tbuild/dotproxy changed during the run (sha256 %s then %s)\n' "$DP_SUM0" "$(dp_sum)"
	printf 'wall_seconds\t%s\n' "$((SECONDS - START))"
} >>"$OUT/meta.txt"
python3 "$BENCH_DIR/report.py" "$OUT" || { echo "bench: report.py failed" >&2; exit 1; }
bench_log "results in $OUT ($((SECONDS - START)) s)"
# a run that got no answer at all means a broken forwarder (or bench)
awk -F'\t' 'NR > 1 && $7 == 0 { bad = 1 } END { exit bad }' "$TSV" || { echo "bench: some run got no answer (see $OUT/failures.log)" >&2; exit 1; }
exit 0
