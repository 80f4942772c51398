#!/usr/bin/env bash
# tests/e2e/test_bench.sh: the benchmark harness (bench/run.sh) as a user sees it, in its smoke
# form (dotproxy --mode tproxy, a miss and a paced workload of 2 s each, a lab of its own):
#   - it exits 0 within a minute and leaves RESULTS.md, runs.tsv and a PNG chart
#   - runs.tsv has exactly the documented columns and one row per workload
#   - RESULTS.md's table of runs has dotproxy rows with qps > 0, nothing lost, every answer
#     NOERROR, a positive CPU per query, ordered latencies, and no plaintext packet out
set -u
# shellcheck source=tests/lab.sh
. "$(dirname "$0")/../lab.sh"   # ok / fail / check / lab_finish only: run.sh builds its own lab
cd "$LAB_REPO" || lab_bail "no repository at $LAB_REPO"
[[ $(id -u) == 0 ]] || lab_bail "the bench needs root (network namespaces, iptables)"
[[ -x build/dotproxy ]] || lab_bail "build/dotproxy is missing (run make)"

OUT=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-test-bench.XXXXXX") || lab_bail "mktemp failed"
trap 'rm -rf "$OUT"' EXIT
COLS="round forwarder workload seconds qps sent completed lost errors p50_ms p99_ms max_ms cpu_us_per_q vmhwm_mb threads wan53 ended"

t0=$SECONDS
timeout 60 bench/run.sh --smoke --out "$OUT" >"$OUT/run.log" 2>&1
rc=$?
check "bench/run.sh --smoke exits 0 ($((SECONDS - t0)) s)" "exit $rc; $(tail -n 5 "$OUT/run.log")" [ "$rc" == 0 ]
check "it takes under 30 s" "$((SECONDS - t0)) s" [ $((SECONDS - t0)) -lt 30 ]

for f in RESULTS.md runs.tsv; do
	check "$f is there and not empty" "$(ls -l "$OUT")" [ -s "$OUT/$f" ]
done
magic=$(head -c 8 "$OUT/bench.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
check "bench.png is a PNG image" "first bytes: ${magic:-none}" [ "$magic" == 89504e470d0a1a0a ]

head=$(head -n 1 "$OUT/runs.tsv" 2>/dev/null | tr '\t' ' ')
check "runs.tsv has the documented columns" "header: ${head:-none}" [ "$head" == "$COLS" ]
rows=$(awk -F'\t' 'NR > 1 && NF == 17 { print $2 "/" $3 }' "$OUT/runs.tsv" 2>/dev/null | paste -sd' ')
check "runs.tsv has one full row per workload" "rows: ${rows:-none}" [ "$rows" == "dotproxy-tproxy/miss dotproxy-tproxy/paced" ]

# the table of every run in RESULTS.md, by column name:
# "workload qps sent completed lost errors cpu p50 p99 max wan53"
table=$(awk -F' *\\| *' '
	/^\| round \|/ { for (i = 2; i < NF; i++) c[$i] = i; next }
	c["forwarder"] && $c["forwarder"] ~ /^dotproxy/ {
		print $c["workload"], $c["qps"], $c["sent"], $c["completed"], $c["lost"], $c["errors"], $c["cpu_us_per_q"], $c["p50_ms"], $c["p99_ms"], $c["max_ms"], $c["wan53"] }
	' "$OUT/RESULTS.md" 2>/dev/null)
check "RESULTS.md lists the dotproxy runs" "$(grep -c '^| ' "$OUT/RESULTS.md" 2>/dev/null) table lines" \
	[ "$(wc -l <<<"$table")" == 2 -a -n "$table" ]
while read -r wl qps sent completed lost errors cpu p50 p99 mx wan; do
	[[ -n ${wl:-} ]] || continue
	check "RESULTS.md, dotproxy $wl: qps > 0" "qps=$qps" awk -v q="$qps" 'BEGIN { exit !(q + 0 > 0) }'
	check "RESULTS.md, dotproxy $wl: every query sent was answered, none lost" \
		"sent=$sent completed=$completed lost=$lost" [ "$sent" -gt 0 -a "$completed" == "$sent" -a "$lost" == 0 ]
	check "RESULTS.md, dotproxy $wl: every answer NOERROR" "errors=$errors" [ "$errors" == 0 ]
	check "RESULTS.md, dotproxy $wl: CPU per query is a positive number" "cpu_us_per_q=$cpu" \
		awk -v v="$cpu" 'BEGIN { exit !(v ~ /^[0-9]+(\.[0-9]+)?$/ && v + 0 > 0) }'
	check "RESULTS.md, dotproxy $wl: latencies 0 < p50 <= p99 <= max" "p50=$p50 p99=$p99 max=$mx" \
		awk -v a="$p50" -v b="$p99" -v c="$mx" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && a + 0 > 0 && a + 0 <= b + 0 && b + 0 <= c + 0) }'
	check "RESULTS.md, dotproxy $wl: no plaintext port-53 packet left the gateway" "wan53=$wan" [ "$wan" == 0 ]
done <<<"$table"
out=$(grep -E '^\| dotproxy-tproxy \| 1 \| [1-9][0-9.]*k? \|' "$OUT/RESULTS.md")
check "RESULTS.md's summary has a dotproxy-tproxy row with its miss qps" "${out:-no such row}" [ -n "$out" ]
lab_finish
