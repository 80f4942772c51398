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
#     with the same subcommand, and they succeed: a script the lab does not use fails this test;
#     the dotproxy arguments of the gateway VM work in it;
#   - each script's --vm path runs with the Vagrantfile's arguments in a dry run (namespaces,
#     private overlays of /etc and the like, stand-ins for systemctl and apt-get:
#     tests/lab/vmsim/): the units start, the gateway builds and serves, a LAN client gets the DoT
#     record. The client's DHCP path runs when dhclient and ifup are installed (diag line if not).
# DOTPROXY_SKIP_VMSIM=1 leaves out the dry run.
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

# --- the VMs' provisioning (--vm), dry run ---------------------------------------------------------
# Each script runs with the Vagrantfile's arguments, --vm included, in namespaces of its own where
# the VM's NICs are what Vagrant configures (the first IPv4 of each lab NIC), through
# tests/lab/vmsim/vm.sh: /etc, /var/lib, /var/cache, /usr/local/sbin are overlays on a tmpfs, and
# systemctl and apt-get are stand-ins (units run from their ExecStart=, nothing installed). So the
# --vm steps -- units, configs, AppArmor include, the build, DHCP -- run here as on the VMs.
VS=$LAB_DIR/vmsim
VS_NS=()
vmsim_down() {
	local ns p
	for ns in "${VS_NS[@]}"; do
		# everything in these namespaces was started by this test
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
	done
	((${#VS_NS[@]})) && sleep 0.5
	for ns in "${VS_NS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	VS_NS=()
}
trap 'vmsim_down; lab_down' EXIT
# vm ROLE NS CMD...: CMD as on the VM ROLE, in namespace NS
vm() {
	local role=$1 ns=$2; shift 2
	ip netns exec "$ns" unshare -m --propagation private env VMSIM_DIR="$VS" bash tests/lab/vmsim/vm.sh "$role" "$@"
}
vmsim() {
	local u=vsu-$LAB_ID g=vsg-$LAB_ID c=vsc-$LAB_ID n=vsn-$LAB_ID ns out rc args i dhcp=0
	mkdir -p "$VS" || return 1
	command -v dhclient >/dev/null && command -v ifup >/dev/null && command -v dnsmasq >/dev/null && dhcp=1
	for ns in "$u" "$g" "$c" "$n"; do
		ip netns add "$ns" || return 1
		VS_NS+=("$ns")
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 || return 1
		ip -n "$ns" link set lo up
	done
	# the hypervisor's links and what Vagrant configures: one IPv4 on each lab NIC (none on the
	# client's: auto_config false); the client's NAT NIC gets its lease from a stand-in NAT
	ip link add eth1 netns "$u" type veth peer name eth2 netns "$g" &&
		ip link add eth1 netns "$c" type veth peer name eth1 netns "$g" &&
		ip link add eth0 netns "$c" type veth peer name eth0 netns "$n" || return 1
	ip -n "$u" addr add "$LAB_DOT4/24" dev eth1 && ip -n "$u" link set eth1 up &&
		ip -n "$g" addr add "$LAB_GW4/24" dev eth2 && ip -n "$g" link set eth2 up &&
		ip -n "$g" addr add "$LAB_GL4/24" dev eth1 && ip -n "$g" link set eth1 up &&
		ip -n "$n" addr add 203.0.113.129/25 dev eth0 && ip -n "$n" link set eth0 up || return 1

	mapfile -t args < <(vargs upstream)
	out=$(vm upstream "$u" bash -c 'bash tests/lab/provision/upstream.sh "$@" && cp /etc/dotproxy-lab/ca.pem "$VMSIM_DIR/ca.pem"' \
		_ "${args[@]}" 2>&1)
	rc=$?
	check "upstream.sh ${args[*]:0:2} (dry run, the Vagrantfile's arguments): exit 0" "exit $rc: $(tail -n 3 <<<"$out")" [ $rc == 0 ]
	((rc == 0)) || return 0
	out=$(grep -c '^systemctl restart dotproxy-lab-unbound@dot.service dotproxy-lab-unbound@decoy.service' "$VS/systemctl.log")
	check "upstream --vm: its units run the DoT server and the decoy" "$(cat "$VS/systemctl.log")" [ "$out" == 1 ]

	# the Vagrant trigger copies the CA certificate into the gateway's checkout: here, $VS/ca.pem
	mapfile -t args < <(vargs gateway)
	for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == */vagrant/.lab/ca.pem ]] && args[i]=$VS/ca.pem; done
	out=$(vm gateway "$g" bash tests/lab/provision/gateway.sh "${args[@]}" 2>&1)
	rc=$?
	check "gateway.sh ${args[*]:0:2} (dry run: builds, installs, units, DHCP): exit 0" "exit $rc: $(tail -n 3 <<<"$out")" [ $rc == 0 ]
	((rc == 0)) || return 0
	diag "$(grep 'verified TLS' <<<"$out")"

	if ((dhcp)); then
		ip netns exec "$n" dnsmasq -k --port=0 --interface=eth0 --dhcp-range=203.0.113.130,203.0.113.140,2m \
			--dhcp-option=option:router,203.0.113.129 --dhcp-option=option:dns-server,203.0.113.129 \
			--dhcp-leasefile="$VS/nat.leases" --user=nobody --group=nogroup >"$VS/nat.log" 2>&1 &
		mapfile -t args < <(vargs client)
		# the box's own config: its NAT NIC by DHCP (its default route, its resolver), up before provisioning
		out=$(vm client "$c" bash -c '
			printf "%s\n" "source /etc/network/interfaces.d/*" "allow-hotplug eth0" "iface eth0 inet dhcp" >/etc/network/interfaces
			ifup eth0 >/dev/null 2>&1 || exit 9
			bash tests/lab/provision/client.sh "$@" || exit $?
			# as after a reboot: the NAT NIC comes up first, then the LAN
			ifdown eth1 >/dev/null 2>&1; ifdown eth0 >/dev/null 2>&1
			ifup eth0 >/dev/null 2>&1; ifup eth1 >/dev/null 2>&1
			echo "nat $(ip -o -4 addr show dev eth0 | awk "{ print \$4 }")"
			echo "route $(ip -4 route show default) resolver $(awk "/^nameserver/ { print \$2 }" /etc/resolv.conf)"
			echo "A $(dig +short +tries=1 +time=3 '"$LAB_WWW"' A) AAAA $(dig +short +tries=1 +time=3 '"$LAB_WWW"' AAAA @'"$LAB_DECOY6"')"
			' _ "${args[@]}" 2>&1)
		rc=$?
		check "client.sh ${args[*]:0:3} (dry run, DHCP from the gateway): exit 0" "exit $rc: $(tail -n 3 <<<"$out")" [ $rc == 0 ]
		check "client --vm: its NAT NIC got a new lease ($(grep '^nat' <<<"$out"))" "$out" grep -q '^nat 203\.0\.113\.1[34][0-9]/25$' <<<"$out"
		want="route default via $LAB_GL4 dev eth1 resolver $LAB_DECOY4"
		check "client --vm: after the NICs come up again (NAT first) the default route and resolver are the gateway's" \
			"$(grep '^route' <<<"$out"); want $want" same_nonempty "$(grep '^route' <<<"$out" | sed 's/ *$//;s/  */ /g;s/ proto dhcp//')" "$want"
		check "client --vm: $LAB_WWW through the gateway: the DoT server's records" "$(grep '^A ' <<<"$out")" \
			[ "$(grep '^A ' <<<"$out")" == "A $LAB_WWW_A AAAA $LAB_WWW_AAAA" ]
	else
		diag "SKIP the client's --vm --dhcp path: needs dhclient, ifup and dnsmasq (isc-dhcp-client, ifupdown, dnsmasq-base)"
		out=$(ip netns exec "$c" bash tests/lab/provision/client.sh setup --if eth1 --addr "$LAB_C4/24" --via "$LAB_GL4" 2>&1) ||
			fail "a static client on the gateway VM's LAN" "$out"
		out=$(ip netns exec "$c" dig +short +tries=1 +time=3 "@$LAB_DECOY4" "$LAB_WWW" A 2>&1)
		check "a client on the gateway VM's LAN asks the decoy: $out, the DoT server's record" "$out" [ "$out" == "$LAB_WWW_A" ]
	fi
	out=$(ip netns exec "$g" iptables -w -t mangle -nvxL DPLAB_WAN53 2>&1 | awk 'NR > 2 { s += $1 } END { print s + 0 }')
	check "gateway --vm: 0 packets to port 53 left by its WAN NIC" "$out" [ "$out" == 0 ]

	# the boot units: the gateway's network settings applied again change nothing
	mapfile -t args < <(vargs gateway)
	out=$(vm gateway "$g" bash -c 'bash tests/lab/provision/gateway.sh net "${@:2}" >/dev/null && iptables -w -S FORWARD | grep -c DPLAB_FW' \
		_ "${args[@]}" 2>&1)
	check "gateway.sh net (its boot unit) again: the same rules, once" "$out" [ "$out" == 1 ]
}
if [[ ${DOTPROXY_SKIP_VMSIM:-0} == 1 ]]; then
	diag "SKIP the dry run of the VMs' provisioning (DOTPROXY_SKIP_VMSIM=1)"
else
	vmsim || fail "the dry run's namespaces" "could not build them"
	vmsim_down
fi
lab_finish
