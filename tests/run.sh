#!/usr/bin/env bash
# Run test suites and count what passed and failed, ending with one line
# "N passed, M failed" over all of them.
#   tests/run.sh unit BIN...        Check suites (built with ASan+UBSan)
#   tests/run.sh fuzz SECONDS BIN...  bounded libFuzzer runs from the seed corpora
#   tests/run.sh e2e                every tests/e2e/test_*.sh (root: namespaces)
#   tests/run.sh all                all three, as `make check` does
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
logdir=$(mktemp -d /tmp/dotproxy-tests.XXXXXX)

# Check prints "NN%: Checks: C, Failures: F, Errors: E".
run_unit() {
	local bin out line checks fails errs
	for bin in "$@"; do
		out="$logdir/$(basename "$bin").log"
		CK_DEFAULT_TIMEOUT=20 "$bin" >"$out" 2>&1
		local rc=$?
		line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$out" | tail -n 1)
		if [ -z "$line" ]; then
			echo "not ok - $(basename "$bin"): no Check summary (exit $rc)"
			tail -n 20 "$out"
			failed=$((failed + 1))
			continue
		fi
		echo "$(basename "$bin"): $line"
		checks=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
		fails=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
		errs=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
		passed=$((passed + checks - fails - errs))
		failed=$((failed + fails + errs))
		if [ $((fails + errs)) -gt 0 ] || [ $rc -ne 0 ]; then
			grep -E ':[EF]:' "$out" | head -n 20
			[ $((fails + errs)) -eq 0 ] && failed=$((failed + 1))
		fi
	done
}

# Each target fuzz_NAME runs from its seed corpus tests/fuzz/corpus/NAME.
run_fuzz() {
	local secs=$1 bin name work
	shift
	for bin in "$@"; do
		name=$(basename "$bin")
		work=$(mktemp -d "$logdir/$name.XXXXXX")
		cp -r "tests/fuzz/corpus/${name#fuzz_}"/. "$work"/ 2>/dev/null || true
		if "$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -artifact_prefix="$logdir/$name-" \
			"$work" >"$logdir/$name.log" 2>&1; then
			echo "ok - $name: $(grep -E '^Done [0-9]+ runs' "$logdir/$name.log" || echo 'ran') in ${secs}s"
			passed=$((passed + 1))
		else
			echo "not ok - $name: crash or leak, see below"
			grep -E 'ERROR|SUMMARY|runtime error' "$logdir/$name.log" | head -n 20
			for f in "$logdir/$name"-crash-* "$logdir/$name"-leak-*; do
				[ -f "$f" ] && echo "# input: $(od -An -tx1 -v "$f" | tr -d ' \n' | head -c 2000)"
			done
			failed=$((failed + 1))
		fi
	done
}

# e2e scripts print TAP-like "ok - ..." / "not ok - ..." lines.
run_e2e() {
	local t out ok nok rc
	if [ "$(id -u)" -ne 0 ]; then
		echo "not ok - e2e tests need root (network namespaces, iptables)"
		failed=$((failed + 1))
		return
	fi
	for t in tests/e2e/test_*.sh; do
		if [ ! -x "$t" ]; then	# a test that would silently not run
			echo "not ok - $t is not executable (chmod +x)"
			failed=$((failed + 1))
			continue
		fi
		out="$logdir/$(basename "$t").log"
		echo "# $t"
		local start=$SECONDS
		timeout 600 "$t" >"$out" 2>&1
		rc=$?
		grep -E '^(not )?ok\b' "$out"
		ok=$(grep -cE '^ok\b' "$out")
		nok=$(grep -cE '^not ok\b' "$out")
		passed=$((passed + ok))
		failed=$((failed + nok))
		if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
			echo "not ok - $t exited $rc without a failing assertion; last lines:"
			tail -n 15 "$out"
			failed=$((failed + 1))
		elif [ "$nok" -gt 0 ]; then
			echo "# last lines of $t:"
			tail -n 25 "$out" | sed 's/^/#   /'
		fi
		echo "# $t: $((SECONDS - start))s"
	done
}

case "${1:-}" in
unit) shift; run_unit "$@" ;;
fuzz) shift; run_fuzz "$@" ;;
e2e) run_e2e ;;
all)
	run_unit build/unit/check_*
	run_fuzz "${FUZZ_SECONDS:-20}" build/fuzz/fuzz_*
	run_e2e
	;;
*) echo "usage: $0 unit BIN...|fuzz SECONDS BIN...|e2e|all" >&2; exit 2 ;;
esac

rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
