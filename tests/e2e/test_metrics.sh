#!/usr/bin/env bash
# tests/e2e/test_metrics.sh: /metrics counts what a client did, exactly, and /health says whether
# an upstream is usable.
#
#   - tproxy mode: 3 UDP/IPv4, 1 UDP/IPv6 (NXDOMAIN), 2 TCP/IPv6 queries and 1 TCP/IPv4 cache hit
#     from the LAN client move dotproxy_queries_total and dotproxy_answers_total by exactly those
#     amounts under their frontend/transport/family/rcode labels; the cache, the upstream's
#     answers, its answer-time histogram (_count = answers), its TLS handshake and connection
#     reuse agree with them
#   - redirect and nfqueue modes: the frontend label follows the mode (TCP is TPROXY in nfqueue mode)
#   - every page (tproxy, redirect, nfqueue) parses as Prometheus text: HELP and TYPE once per family
#     before its samples, valid names, labels and values, no series twice, counters named _total,
#     histograms with ascending le, cumulative buckets, a last le="+Inf" equal to _count
#   - /health: 200 while the upstream is usable; the DoT server stopped, a query fails, 503 and
#     dotproxy_no_upstream_total counts the SERVFAIL; the server back, 200 again
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"
lab_up

UP="$LAB_DOT4@853#$LAB_AUTH"	# the upstream label
NX=nx-$LAB_ID.dotproxy.test	# a name the DoT server's static zone answers NXDOMAIN

# health_code: the HTTP status of GET /health.
health_code() {
	ip netns exec "$LAB_NS_G" curl -s -o /dev/null -w '%{http_code}' --max-time 3 --noproxy '*' \
		"http://$LAB_METRICS/health"
}

# prom_check FILE: parse FILE as a Prometheus text page (see the header); print what is wrong and
# fail, or print a summary.
prom_check() {
	"$LAB_PY" - "$1" <<'EOF' 2>&1
import math, re, sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$' % (NAME, LABEL, LABEL))
text = open(sys.argv[1]).read()
errors = []
if not text.endswith('\n'):
    errors.append('the page does not end in a newline')
help_, types, seen, hist = set(), {}, set(), {}
nsamples = 0
for ln in text.splitlines():
    m = re.match(r'^# (HELP|TYPE) (%s) (.+)$' % NAME, ln)
    if m:
        kind, name, rest = m.groups()
        if kind == 'HELP':
            if name in help_:
                errors.append('two HELP lines for ' + name)
            help_.add(name)
        else:
            if name in types:
                errors.append('two TYPE lines for ' + name)
            if name not in help_:
                errors.append('TYPE before HELP for ' + name)
            if rest not in ('counter', 'gauge', 'histogram'):
                errors.append('type %s of %s' % (rest, name))
            if rest == 'counter' and not name.endswith('_total'):
                errors.append('counter %s is not named _total' % name)
            types[name] = rest
        continue
    m = SAMPLE.match(ln)
    if not m:
        errors.append('not a HELP, TYPE or sample line: ' + ln)
        continue
    nsamples += 1
    name, labels, value = m.group(1), m.group(2) or '', m.group(3)
    pairs = re.findall(r'(%s)="((?:[^"\\]|\\.)*)"' % r'[a-zA-Z_][a-zA-Z0-9_]*', labels)
    key = (name, tuple(pairs))
    if key in seen:
        errors.append('series twice: ' + ln)
    seen.add(key)
    try:
        v = float(value)
    except ValueError:
        errors.append('bad value: ' + ln)
        continue
    fam, suffix = name, ''
    if name not in types:
        for s in ('_bucket', '_sum', '_count'):
            if name.endswith(s) and types.get(name[:-len(s)]) == 'histogram':
                fam, suffix = name[:-len(s)], s
    if fam not in types:
        errors.append('sample of no declared family: ' + ln)
        continue
    if types[fam] == 'histogram':
        if not suffix:
            errors.append('histogram sample without _bucket/_sum/_count: ' + ln)
            continue
        rest = tuple(p for p in pairs if p[0] != 'le')
        h = hist.setdefault((fam, rest), {'le': [], 'sum': None, 'count': None})
        if suffix == '_bucket':
            le = [p[1] for p in pairs if p[0] == 'le']
            if len(le) != 1:
                errors.append('bucket without one le: ' + ln)
                continue
            h['le'].append((float(le[0]) if le[0] != '+Inf' else math.inf, v, le[0]))
        else:
            h[suffix[1:]] = v
    elif types[fam] == 'counter' and (v < 0 or math.isnan(v)):
        errors.append('counter below 0: ' + ln)
for (fam, rest), h in hist.items():
    what = '%s%s' % (fam, dict(rest))
    les = h['le']
    if not les or les[-1][2] != '+Inf':
        errors.append('%s: last bucket is not le="+Inf"' % what)
        continue
    for (a, ca, _), (b, cb, lb) in zip(les, les[1:]):
        if not b > a:
            errors.append('%s: le not ascending at %s' % (what, lb))
        if cb < ca:
            errors.append('%s: buckets not cumulative at le=%s' % (what, lb))
    if h['count'] is None or h['sum'] is None:
        errors.append('%s: no _count or no _sum' % what)
    elif h['count'] != les[-1][1]:
        errors.append('%s: _count %g but le="+Inf" %g' % (what, h['count'], les[-1][1]))
for e in errors[:10]:
    print(e)
if errors:
    sys.exit(1)
print('%d families, %d samples, %d histograms' % (len(types), nsamples, len(hist)))
EOF
}

# page_valid DESC: the whole /metrics page passes prom_check; one TAP line.
page_valid() {
	local desc=$1 f=$LAB_DIR/page.$RANDOM.txt out
	if ! lab_metrics >"$f" 2>&1; then
		fail "$desc: /metrics is served" "$(head -c 300 "$f")"
		return
	fi
	if out=$(prom_check "$f"); then
		ok "$desc: the /metrics page is valid Prometheus text ($out)"
	else
		fail "$desc: the /metrics page is valid Prometheus text" "$out"
	fi
}

# --- control: the checker rejects what it must ----------------------------------------------------------
H='# HELP h_seconds x
# TYPE h_seconds histogram'
GOOD="$H"'
h_seconds_bucket{u="a",le="0.001"} 1
h_seconds_bucket{u="a",le="+Inf"} 2
h_seconds_sum{u="a"} 0.003
h_seconds_count{u="a"} 2'
BAD=(
	"buckets not cumulative|$H"$'\nh_seconds_bucket{u="a",le="0.001"} 3\nh_seconds_bucket{u="a",le="+Inf"} 2\nh_seconds_sum{u="a"} 1\nh_seconds_count{u="a"} 2'
	"no +Inf bucket|$H"$'\nh_seconds_bucket{u="a",le="0.001"} 1\nh_seconds_sum{u="a"} 1\nh_seconds_count{u="a"} 1'
	"_count other than +Inf|$H"$'\nh_seconds_bucket{u="a",le="+Inf"} 2\nh_seconds_sum{u="a"} 1\nh_seconds_count{u="a"} 3'
	"an undeclared family|$GOOD"$'\nx_total 1'
	"a series twice|# HELP x_total x"$'\n# TYPE x_total counter\nx_total{a="1"} 1\nx_total{a="1"} 2'
	"no TYPE line|# HELP x_total x"$'\nx_total 1'
	"an unquoted label|# HELP x_total x"$'\n# TYPE x_total counter\nx_total{a=1} 1'
	"a counter not named _total|# HELP x x"$'\n# TYPE x counter\nx 1'
)
printf '%s\n' "$GOOD" >"$LAB_DIR/good.txt"
if out=$(prom_check "$LAB_DIR/good.txt"); then ok "control: the page checker takes a valid page ($out)"
else fail "control: the page checker takes a valid page" "$out"; fi
for b in "${BAD[@]}"; do
	printf '%s\n' "${b#*|}" >"$LAB_DIR/bad.txt"
	if out=$(prom_check "$LAB_DIR/bad.txt"); then
		fail "control: the page checker rejects ${b%%|*}" "accepted: $out"
	else
		ok "control: the page checker rejects ${b%%|*} ($out)"
	fi
done

# snapshot SELECTOR...: remember each selector's value (lab_metric sums what it picks) in BEFORE.
declare -A BEFORE
snapshot() {
	local s
	for s in "$@"; do BEFORE[$s]=$(lab_metric0 "$s"); done
}
# moved DESC SELECTOR N: assert the selector's value grew by exactly N since snapshot.
moved() {
	local desc=$1 sel=$2 want=$3 now
	now=$(lab_metric0 "$sel")
	check "$desc: $sel moved by $want" "from ${BEFORE[$sel]:-unset} to $now" \
		[ "$((now - ${BEFORE[$sel]:-0}))" == "$want" ]
}

# ask DESC SERVER NAME TYPE WANT_STATUS [DIG ARGS...]: one query from the LAN client; assert its rcode.
ask() {
	local desc=$1 server=$2 name=$3 type=$4 want=$5; shift 5
	local st
	st=$(lab_dig c "@$server" "$name" "$type" "$@" | dig_status)
	check "$desc: $name $type from $server ${*}: $want" "status=${st:-none}" [ "$st" == "$want" ]
}

# --- tproxy: known queries, exact counts ---------------------------------------------------------------
mapfile -t ARGS < <(lab_dotproxy_args)
RULES=(--mode tproxy --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT")
lab_dotproxy_start --mode tproxy "${ARGS[@]}" || lab_bail "dotproxy did not start: $(tail -n 3 "$LAB_DP_LOG")"
lab_rules up "${RULES[@]}" || lab_bail "dotproxy-rules up ${RULES[*]} failed"
code=$(health_code)
check "tproxy: /health is 200 with the upstream usable" "HTTP ${code:-none}" [ "$code" == 200 ]

Q='dotproxy_queries_total{frontend="tproxy",transport='
A='dotproxy_answers_total{frontend="tproxy",transport='
SELS=(
	"${Q}\"udp\",family=\"ipv4\"}" "${Q}\"udp\",family=\"ipv6\"}" "${Q}\"tcp\",family=\"ipv4\"}"
	"${Q}\"tcp\",family=\"ipv6\"}" dotproxy_queries_total
	"${A}\"udp\",family=\"ipv4\",rcode=\"NOERROR\"}" "${A}\"udp\",family=\"ipv6\",rcode=\"NXDOMAIN\"}"
	"${A}\"tcp\",family=\"ipv4\",rcode=\"NOERROR\"}" "${A}\"tcp\",family=\"ipv6\",rcode=\"NOERROR\"}"
	dotproxy_answers_total 'dotproxy_answers_total{rcode="NOERROR"}' 'dotproxy_answers_total{rcode="NXDOMAIN"}'
	dotproxy_cache_hits_total dotproxy_cache_misses_total dotproxy_malformed_total dotproxy_no_upstream_total
	dotproxy_timeouts_total
	"dotproxy_upstream_answers_total{upstream=\"$UP\"}"
	"dotproxy_upstream_answer_duration_seconds_count{upstream=\"$UP\"}"
	"dotproxy_upstream_answer_duration_seconds_bucket{upstream=\"$UP\",le=\"+Inf\"}"
	"dotproxy_upstream_queries_total{upstream=\"$UP\"}"
	"dotproxy_upstream_queries_total{upstream=\"$UP\",connection=\"new\"}"
	"dotproxy_upstream_queries_total{upstream=\"$UP\",connection=\"reused\"}"
	"dotproxy_upstream_connects_total{upstream=\"$UP\"}"
	"dotproxy_tls_handshakes_total{upstream=\"$UP\"}"
)
snapshot "${SELS[@]}"
t0=$(lab_ms)
ask "UDP/IPv4 1" "$LAB_DECOY4" "$LAB_WWW" A NOERROR +notcp
ask "UDP/IPv4 2" "$LAB_DECOY4" "$LAB_SHORT" A NOERROR +notcp
ask "UDP/IPv4 3" "$LAB_DECOY4" "$LAB_WWW" AAAA NOERROR +notcp
ask "UDP/IPv6" "$LAB_DECOY6" "$NX" A NXDOMAIN +notcp
ask "TCP/IPv6 1" "$LAB_DECOY6" "$LAB_MID" TXT NOERROR +tcp
ask "TCP/IPv6 2" "$LAB_DECOY6" "$LAB_BIG" TXT NOERROR +tcp
ask "TCP/IPv4, the cache hit" "$LAB_DECOY4" "$LAB_WWW" A NOERROR +tcp
diag "7 queries in $(($(lab_ms) - t0)) ms"
moved "tproxy" "${Q}\"udp\",family=\"ipv4\"}" 3
moved "tproxy" "${Q}\"udp\",family=\"ipv6\"}" 1
moved "tproxy" "${Q}\"tcp\",family=\"ipv4\"}" 1
moved "tproxy" "${Q}\"tcp\",family=\"ipv6\"}" 2
moved "tproxy" dotproxy_queries_total 7
moved "tproxy" "${A}\"udp\",family=\"ipv4\",rcode=\"NOERROR\"}" 3
moved "tproxy" "${A}\"udp\",family=\"ipv6\",rcode=\"NXDOMAIN\"}" 1
moved "tproxy" "${A}\"tcp\",family=\"ipv4\",rcode=\"NOERROR\"}" 1
moved "tproxy" "${A}\"tcp\",family=\"ipv6\",rcode=\"NOERROR\"}" 2
moved "tproxy" dotproxy_answers_total 7
moved "tproxy" 'dotproxy_answers_total{rcode="NOERROR"}' 6
moved "tproxy" 'dotproxy_answers_total{rcode="NXDOMAIN"}' 1
moved "tproxy" dotproxy_cache_hits_total 1
moved "tproxy" dotproxy_cache_misses_total 6
moved "tproxy" dotproxy_malformed_total 0
moved "tproxy" dotproxy_no_upstream_total 0
moved "tproxy" dotproxy_timeouts_total 0
moved "tproxy: 6 answered upstream" "dotproxy_upstream_answers_total{upstream=\"$UP\"}" 6
moved "tproxy: the histogram counts each" "dotproxy_upstream_answer_duration_seconds_count{upstream=\"$UP\"}" 6
moved "tproxy: the histogram counts each" \
	"dotproxy_upstream_answer_duration_seconds_bucket{upstream=\"$UP\",le=\"+Inf\"}" 6
moved "tproxy: 6 written upstream" "dotproxy_upstream_queries_total{upstream=\"$UP\"}" 6
moved "tproxy: the first waited for the connection" \
	"dotproxy_upstream_queries_total{upstream=\"$UP\",connection=\"new\"}" 1
moved "tproxy: the others reused it" "dotproxy_upstream_queries_total{upstream=\"$UP\",connection=\"reused\"}" 5
moved "tproxy: one connection" "dotproxy_upstream_connects_total{upstream=\"$UP\"}" 1
moved "tproxy: one handshake" "dotproxy_tls_handshakes_total{upstream=\"$UP\"}" 1
n=$(lab_metric dotproxy_inflight)
check "tproxy: nothing in flight afterwards" "dotproxy_inflight=${n:-absent}" [ "${n:-x}" == 0 ]
# the answer times are real: no more than the 7 queries took together
s=$(lab_metrics | awk -v k="dotproxy_upstream_answer_duration_seconds_sum{upstream=\"$UP\"}" '$1 == k { print $2 }')
check "tproxy: the histogram's _sum ($s s) is within the time the queries took" "sum=${s:-absent}" \
	awk -v s="${s:-x}" -v ms="$(($(lab_ms) - t0))" 'BEGIN { exit !(s ~ /^[0-9.]+$/ && s * 1000 <= ms) }'
page_valid "tproxy"

# --- /health follows the upstream ------------------------------------------------------------------------
lab_unbound_stop dot
snapshot dotproxy_no_upstream_total 'dotproxy_answers_total{rcode="SERVFAIL"}'
ask "DoT server stopped" "$LAB_DECOY4" "down-$LAB_ID.dotproxy.test" A SERVFAIL +notcp
code='' t0=$(lab_ms)
for ((i = 0; i < 50; i++)); do	# at most 5 s
	code=$(health_code)
	[[ $code == 503 ]] && break
	sleep 0.1
done
check "DoT server stopped: /health is 503 ($(($(lab_ms) - t0)) ms after the failed query)" "HTTP ${code:-none}" \
	[ "$code" == 503 ]
body=$(lab_http /health)
check "DoT server stopped: /health says why" "$body" [ "$body" == "no upstream usable" ]
n=$(lab_metric "dotproxy_upstream_up{upstream=\"$UP\"}")
check "DoT server stopped: dotproxy_upstream_up is 0" "${n:-absent}" [ "${n:-x}" == 0 ]
moved "DoT server stopped: the SERVFAIL is counted" 'dotproxy_answers_total{rcode="SERVFAIL"}' 1
moved "DoT server stopped: as a query with no upstream usable" dotproxy_no_upstream_total 1
ask "DoT server still stopped" "$LAB_DECOY6" "down2-$LAB_ID.dotproxy.test" A SERVFAIL +tcp
moved "DoT server stopped: every such query counts" dotproxy_no_upstream_total 2

lab_unbound_start dot || lab_bail "could not restart the DoT Unbound"
code='' t0=$(lab_ms)
for ((i = 0; i < 150; i++)); do	# at most 15 s: the probe backs off up to 5 s (+25%)
	code=$(health_code)
	[[ $code == 200 ]] && break
	sleep 0.1
done
check "DoT server back: /health is 200 again ($(($(lab_ms) - t0)) ms after its restart, no query needed)" \
	"HTTP ${code:-none}" [ "$code" == 200 ]
ask "DoT server back" "$LAB_DECOY4" "$LAB_WWW" TXT NOERROR +notcp
lab_rules down "${RULES[@]}"
lab_dotproxy_stop
check "tproxy: dotproxy exits 0" "exit status $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]

# --- redirect and nfqueue: the frontend label follows the mode -------------------------------------------
# mode_labels MODE UDP_FRONTEND TCP_FRONTEND: one UDP/IPv4, one UDP/IPv6, one TCP/IPv4 query.
mode_labels() {
	local mode=$1 fu=$2 ft=$3 other
	lab_dotproxy_start --mode "$mode" "${ARGS[@]}" || { fail "$mode: dotproxy starts" "$(tail -n 3 "$LAB_DP_LOG")"; return; }
	if ! lab_rules up --mode "$mode" --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT"; then
		fail "$mode: rules up" "$(tail -n 3 "$LAB_DIR/rules.log")"
		lab_dotproxy_stop
		return
	fi
	ask "$mode UDP/IPv4" "$LAB_DECOY4" "$LAB_WWW" A NOERROR +notcp
	ask "$mode UDP/IPv6" "$LAB_DECOY6" "$NX" A NXDOMAIN +notcp
	ask "$mode TCP/IPv4" "$LAB_DECOY4" "$LAB_MID" TXT NOERROR +tcp
	BEFORE=()
	moved "$mode" "dotproxy_queries_total{frontend=\"$fu\",transport=\"udp\",family=\"ipv4\"}" 1
	moved "$mode" "dotproxy_answers_total{frontend=\"$fu\",transport=\"udp\",family=\"ipv6\",rcode=\"NXDOMAIN\"}" 1
	moved "$mode" "dotproxy_answers_total{frontend=\"$ft\",transport=\"tcp\",family=\"ipv4\",rcode=\"NOERROR\"}" 1
	moved "$mode" dotproxy_queries_total 3
	for other in tproxy redirect nfqueue; do
		[[ $other == "$fu" || $other == "$ft" ]] && continue
		n=$(lab_metric "dotproxy_queries_total{frontend=\"$other\"}")
		check "$mode: no series for frontend=\"$other\"" "dotproxy_queries_total{frontend=\"$other\"}=${n:-absent}" \
			[ -z "$n" ]
	done
	page_valid "$mode"
	lab_rules down --mode "$mode" --scope gateway --in-interface "$LAB_LAN_IF" --port "$LAB_PORT"
	lab_dotproxy_stop
}
mode_labels redirect redirect redirect
mode_labels nfqueue nfqueue tproxy

lab_finish
