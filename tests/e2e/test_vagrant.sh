#!/usr/bin/env bash
# tests/e2e/test_vagrant.sh: the Vagrant lab (vagrant/) without VMs. There is no hypervisor here,
# so this checks what can be checked and that the Vagrant lab cannot drift away from the netns lab:
#   - vagrant/Vagrantfile parses (ruby -c) and evaluates (tests/lab/vagrant_probe.rb stands in
#     for Vagrant): three Debian 12 machines, their lab addresses those of the plan, the client's
#     LAN NIC left to the gateway's DHCP, the checkout synced where the provisioners look;
#   - every provisioning script it names exists under tests/lab/provision, passes bash -n (and
#     ShellCheck, when installed) and accepts the very arguments the Vagrantfile gives it
#     (--check-args: checked, nothing changed);
#   - the netns lab (tests/lab.sh lab_up, as every e2e test runs it) runs each of those scripts
#     with the same subcommand, and they succeed: a script the lab does not use fails this test.
set -u
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lab.sh
. tests/lab.sh

VF=vagrant/Vagrantfile
PROBE=tests/lab/vagrant_probe.rb

command -v ruby >/dev/null || lab_bail "ruby is missing (tests/install-deps.sh installs it)"
[[ -f $VF ]] || lab_bail "$VF is missing"

# --- the Vagrantfile itself --------------------------------------------------------------------
out=$(ruby -c "$VF" 2>&1)
check "ruby -c $VF: $out" "$out" [ "$out" == "Syntax OK" ]

if ! probe=$(ruby "$PROBE" "$VF" 2>&1); then
	fail "$VF evaluates (with $PROBE standing in for Vagrant)" "$probe"
	lab_finish
fi
ok "$VF evaluates: $(grep -c '^provision' <<<"$probe") provisioners"
rec() { awk -F'\t' -v k="$1" '$1 == k' <<<"$probe"; }
# vargs MACHINE: the arguments of MACHINE's provisioner, one a line
vargs() { rec arg | awk -F'\t' -v m="$1" '$2 == m { print $4 }'; }
same_nonempty() { [[ -n $1 && $1 == "$2" ]]; }
not() { ! "$@"; }

box=$(rec box | cut -f2)
check "the boxes are Debian 12 (debian/bookworm64)" "box=$box" [ "$box" == debian/bookworm64 ]
machines=$(rec machine | cut -f2 | paste -sd' ' -)
check "three machines: upstream gateway client" "machines=$machines" [ "$machines" == "upstream gateway client" ]

# the lab's addresses come from the plan the netns lab uses (tests/lab/provision/plan.sh)
nets=$(rec network | cut -f2,4,5 | tr '\t' ' ' | paste -sd, -)
want="upstream $LAB_DOT4 true,gateway $LAB_GL4 true,gateway $LAB_GW4 true,client $LAB_C4 false"
check "lab networks: upstream on the WAN, gateway on LAN and WAN, client LAN left to DHCP (auto_config false)" \
	"$nets; want $want" [ "$nets" == "$want" ]

# --- every provisioning script it names ----------------------------------------------------------
mapfile -t provs < <(rec provision | cut -f2,4)
((${#provs[@]} > 0)) || fail "the Vagrantfile names provisioning scripts" "no provisioner"
scripts=()
for p in "${provs[@]}"; do
	machine=${p%%$'\t'*} script=${p#*$'\t'}
	if [[ $script != tests/lab/provision/*.sh || ! -f $script ]]; then
		fail "$machine: its provisioner is a script under tests/lab/provision" "names '$script'"
		continue
	fi
	scripts+=("$script")
	out=$(bash -n "$script" 2>&1)
	check "$machine: bash -n $script" "$out" [ -z "$out" ]
	if command -v shellcheck >/dev/null; then
		out=$(shellcheck -x -S warning "$script" 2>&1)
		check "$machine: shellcheck $script" "$out" [ -z "$out" ]
	fi
	mapfile -t args < <(vargs "$machine")
	out=$(bash "$script" "${args[@]}" --check-args 2>&1)
	check "$machine: $(basename "$script") accepts the Vagrantfile's arguments (${args[*]:0:2} ...)" "$out" \
		[ "$out" == "$(basename "$script"): arguments ok" ]
	# the checkout must be synced where the provisioner runs the script from
	synced=$(rec synced | awk -F'\t' -v r="$PWD" '$2 == r && $4 == "false" { print $3 }')
	guest=$(rec provision | awk -F'\t' -v m="$machine" '$2 == m { print $5; exit }')
	check "$machine: the checkout is synced to ${synced:-nowhere}, where the provisioner runs the script" \
		"synced: $(rec synced | paste -sd' ' -); the provisioner runs $guest/$script" \
		same_nonempty "$synced" "$guest"
done

# --- the netns lab runs the same scripts ----------------------------------------------------------
# lab_ran LOG SCRIPT SUBCMD: the lab's provision.log shows SCRIPT run with SUBCMD, and succeed.
lab_ran() {
	local log=$1 name; name=$(basename "$2")
	grep -q "^+ $name $3 " "$log" && grep -q "^$name: $3 done" "$log"
}
lab_up
log=$LAB_DIR/provision.log
for script in "${scripts[@]}"; do
	machine=$(rec provision | awk -F'\t' -v s="$script" '$4 == s { print $2; exit }')
	sub=$(rec arg | awk -F'\t' -v m="$machine" '$2 == m && $3 == 0 { print $4; exit }')
	check "the netns lab runs $(basename "$script") $sub too (as the Vagrant $machine does)" \
		"$(grep "^+ " "$log" | cut -c1-80 | paste -sd'|' -)" lab_ran "$log" "$script" "$sub"
done
# and the check above can fail: a script the lab never runs is reported
check "a script the netns lab does not run is caught" "lab_ran accepted nosuch.sh" \
	not lab_ran "$log" tests/lab/provision/nosuch.sh setup

# --- the Vagrant gateway's dotproxy, in the netns lab -------------------------------------------
# The client's own resolver (client.sh wrote it) is the plaintext decoy: without dotproxy, a plain
# `dig NAME` gets the decoy's record; with dotproxy run as gateway.sh runs it on the Vagrant gateway
# (its --mode, --port, --upstream list; the lab's CA) and the rules in gateway scope for the LAN,
# the same dig gets the DoT server's record and no port-53 packet leaves by the WAN: what
# `vagrant ssh client -c 'dig www.dotproxy.test'` shows in the VMs.
out=$(lab_c dig +short +tries=1 +time=3 "$LAB_WWW" A 2>&1)
check "the client's resolver (from client.sh) is the decoy: without dotproxy, $LAB_WWW is its record" \
	"$out" [ "$out" == "$LAB_DECOY_WWW_A" ]
mapfile -t gargs < <(vargs gateway)
dp=() mode='' port=''
for ((i = 0; i + 1 < ${#gargs[@]}; i++)); do
	case ${gargs[i]} in
	--upstream) dp+=(--upstream "${gargs[i + 1]}") ;;
	--mode) mode=${gargs[i + 1]} ;;
	--port) port=${gargs[i + 1]} ;;
	esac
done
if ((${#dp[@]} == 0)) || [[ -z $mode || -z $port ]]; then
	fail "the Vagrant gateway's provisioner gives --mode, --port and --upstream" "${gargs[*]}"
elif ! lab_dotproxy_start --mode "$mode" --port "$port" "${dp[@]}" --ca-file "$LAB_CA" --metrics "$LAB_METRICS"; then
	fail "dotproxy starts with the Vagrant gateway's arguments" "$(tail -n 3 "$LAB_DP_LOG")"
elif ! lab_rules up --mode "$mode" --scope gateway --in-interface "$LAB_LAN_IF" --port "$port"; then
	fail "dotproxy-rules up in gateway scope" "$(tail -n 3 "$LAB_DIR/rules.log")"
else
	lab_wan53_reset
	lab_expect_www "with the Vagrant gateway's dotproxy (${dp[*]}), the client's resolver" c "$LAB_DECOY4" A
	out=$(lab_c dig +short +tries=1 +time=3 "$LAB_WWW" AAAA 2>&1)
	check "a plain dig $LAB_WWW AAAA on the client: $out, the DoT server's record" "$out" [ "$out" == "$LAB_WWW_AAAA" ]
	lab_expect_wan53_zero "the Vagrant gateway's dotproxy"
	n=$(lab_metric0 dotproxy_tls_handshakes_total)
	check "dotproxy's metrics count TLS handshakes with the upstream ($n)" "$n" [ "$n" -ge 1 ]
	lab_rules down
	lab_dotproxy_stop
	check "dotproxy exits 0 on SIGTERM" "exit $LAB_DP_RC" [ "$LAB_DP_RC" == 0 ]
fi
lab_finish
