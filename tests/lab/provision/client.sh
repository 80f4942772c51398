#!/usr/bin/env bash
# tests/lab/provision/client.sh: provisions the lab's CLIENT, the same script for both labs:
# tests/lab.sh runs it inside the client network namespace of every e2e test and `make demo`,
# vagrant/Vagrantfile runs it (with --vm --dhcp) as the shell provisioner of the client VM.
#
# The client sits behind the gateway and uses the gateway as its router, and asks whatever
# resolver it likes (--resolver; with --dhcp, by default the one the gateway's DHCP names).
# Static (the netns lab): --addr on the interface, default routes via --via, the resolver into
# --resolv-conf (e.g. /etc/netns/NS/resolv.conf, which `ip netns exec NS` shows as
# /etc/resolv.conf).
# --vm --dhcp (the Vagrant lab): installs dig and the DHCP client, configures the LAN interface
# by DHCP and router advertisements from the gateway (ifupdown), and keeps Vagrant's NAT
# management interface from giving a default route or a resolver (a dhclient enter hook drops
# both; the NAT default route is deleted now): `vagrant ssh` keeps working on the NAT subnet,
# everything else goes through the gateway. With --expect it then asks its resolver for
# www.dotproxy.test and fails unless the answer is the DoT server's record.
# Must never: write the machine's own /etc/resolv.conf without --vm; change anything before every
# argument is checked.
#
#   client.sh setup [--if IF] --addr ADDR/LEN... --via ROUTER... [--resolver ADDR]... [--resolv-conf FILE]
#   client.sh setup --vm --dhcp [--if IF] [--resolver ADDR]... [--expect ADDR]
#
# --check-args: check the arguments only (tests/e2e/test_vagrant.sh checks the Vagrantfile's).
# With --dhcp, --if defaults to the one Ethernet interface that is not the NAT interface.
set -uo pipefail
PROV_NAME=client.sh
PROV_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/provision/common.sh
. "$PROV_HERE/common.sh"
# shellcheck source=tests/lab/provision/plan.sh
. "$PROV_HERE/plan.sh"

cmd=${1:-}
shift || true
[[ $cmd == setup ]] || prov_usage "usage: client.sh setup ... (see the header)"
iface='' addrs=() vias=() resolvers=() resolv_conf='' dhcp=0 expect=''
while (($#)); do
	case $1 in
	--vm) PROV_VM=1; shift; continue ;;
	--check-args) PROV_CHECK=1; shift; continue ;;
	--dhcp) dhcp=1; shift; continue ;;
	--if | --addr | --via | --resolver | --resolv-conf | --expect) prov_need_arg "$1" "${2:-}" ;;
	*) prov_usage "unknown argument: $1" ;;
	esac
	case $1 in
	--if) iface=$2 ;;
	--addr) addrs+=("$2") ;;
	--via) vias+=("$2") ;;
	--resolver) resolvers+=("$2") ;;
	--resolv-conf) resolv_conf=$2 ;;
	--expect) expect=$2 ;;
	esac
	shift 2
done

# --- check every argument before changing anything -------------------------------------------
for a in "${addrs[@]}"; do prov_is_cidr "$a" || prov_usage "--addr: not ADDR/LEN: $a"; done
for a in "${vias[@]}"; do prov_is_ip "$a" || prov_usage "--via: not an address: $a"; done
for a in "${resolvers[@]}"; do prov_is_ip "$a" || prov_usage "--resolver: not an address: $a"; done
[[ -z $expect ]] || prov_is_ip "$expect" || prov_usage "--expect: not an address: $expect"
if ((dhcp)); then
	((PROV_VM)) || prov_usage "--dhcp is for a VM (--vm)"
	((${#addrs[@]} + ${#vias[@]} == 0)) || prov_usage "--dhcp takes no --addr or --via"
	[[ -z $resolv_conf ]] || prov_usage "--dhcp writes /etc/resolv.conf through the DHCP client, not --resolv-conf"
else
	((${#addrs[@]})) || prov_usage "give --addr (or --vm --dhcp)"
	[[ -n $iface ]] || prov_usage "--if is required without --dhcp"
fi
if ((${#resolvers[@]})) && ((!dhcp)); then
	[[ -n $resolv_conf ]] || prov_usage "--resolver needs --resolv-conf FILE"
	((PROV_VM)) || [[ $resolv_conf == /etc/netns/?*/resolv.conf ]] ||
		prov_usage "--resolv-conf: outside a VM only /etc/netns/NS/resolv.conf, not $resolv_conf"
fi
[[ -z $iface ]] || prov_is_ifname "$iface" || prov_usage "--if: not an interface name: $iface"
prov_checked
[[ $(id -u) == 0 ]] || prov_die "needs root"

# --- static: the netns lab ----------------------------------------------------------------------
if ((!dhcp)); then
	prov_is_ifname "$iface" && prov_iface_exists "$iface" || prov_usage "--if: no interface $iface"
	prov_link_up "$iface"
	for a in "${addrs[@]}"; do prov_addr "$iface" "$a"; done
	for v in "${vias[@]}"; do prov_route default "$v"; done
	if ((${#resolvers[@]})); then
		mkdir -p "$(dirname "$resolv_conf")" &&
			{ echo "# written by client.sh: the lab client's resolver"; printf 'nameserver %s\n' "${resolvers[@]}"; } \
				>"$resolv_conf" || prov_die "could not write $resolv_conf"
	fi
	prov_say "setup done: $iface ${addrs[*]}, default via ${vias[*]:-nothing}, resolver ${resolvers[*]:-unchanged}"
	exit 0
fi

# --- --vm --dhcp: the Vagrant lab ----------------------------------------------------------------
# what was found the first time: later the default route is the LAN's
state=$PROV_ETC/client.ifaces
if [[ -s $state ]]; then
	read -r nat_if lan_found <"$state"
else
	nat_if=$(prov_default_iface)
	lan_found=$(ip -o link show | awk -F': ' -v nat="$nat_if" '/link\/ether/ { sub(/@.*/, "", $2); if ($2 != nat) print $2 }')
fi
[[ -n $nat_if ]] || prov_die "no default route: which interface is Vagrant's NAT link?"
[[ -n $iface ]] || iface=$lan_found
[[ $iface != *[[:space:]]* && -n $iface ]] || prov_usage "no --if, and not one other Ethernet interface than $nat_if: '${lan_found//$'\n'/ }'"
prov_is_ifname "$iface" && prov_iface_exists "$iface" || prov_usage "--if: no interface $iface"
[[ $iface != "$nat_if" ]] || prov_usage "--if $iface is the NAT interface"

# packages first, while the NAT link still routes to the mirrors
prov_packages dnsutils isc-dhcp-client ifupdown iproute2
mkdir -p "$PROV_ETC" && echo "$nat_if $iface" >"$state" || prov_die "cannot write $state"

hook=/etc/dhcp/dhclient-enter-hooks.d/dotproxy-lab
{
	echo "# written by client.sh (dotproxy lab): Vagrant's NAT link $nat_if gives no default route and"
	echo "# no resolver; everything but vagrant ssh goes through the gateway on $iface."
	echo "if [ \"\$interface\" = \"$nat_if\" ]; then"
	echo "	unset new_routers new_domain_name_servers new_domain_search new_domain_name"
	echo "fi"
	if ((${#resolvers[@]})); then
		echo "# the client's own choice of resolver, instead of the one the gateway's DHCP names"
		echo "if [ \"\$interface\" = \"$iface\" ]; then"
		echo "	new_domain_name_servers=\"${resolvers[*]}\""
		echo "fi"
	fi
} >"$hook" || prov_die "could not write $hook"

grep -qE '^[[:space:]]*source(-directory)?[[:space:]]+/etc/network/interfaces\.d' /etc/network/interfaces ||
	echo 'source /etc/network/interfaces.d/*' >>/etc/network/interfaces
mkdir -p /etc/network/interfaces.d && cat >/etc/network/interfaces.d/dotproxy-lab <<-EOF || prov_die "could not write the ifupdown stanza"
	# written by client.sh: the dotproxy lab's LAN, configured by the gateway (DHCP, router advertisements)
	auto $iface
	iface $iface inet dhcp
	iface $iface inet6 auto
EOF

# the NAT default route goes now (the hook keeps it from coming back), then the LAN comes up
while ip -4 route show default dev "$nat_if" | grep -q .; do
	ip -4 route del default dev "$nat_if" || prov_die "could not delete the default route via $nat_if"
done
ip -6 route del default dev "$nat_if" 2>/dev/null
ifup "$iface" >/dev/null 2>&1 || { ifdown "$iface" >/dev/null 2>&1; ifup "$iface"; } ||
	prov_die "ifup $iface failed: does the gateway's DHCP run? (vagrant up gateway first)"
for ((i = 0; i < 300; i++)); do
	gw=$(ip -4 route show default dev "$iface" | awk '{ print $3; exit }')
	[[ -n $gw ]] && break
	sleep 0.1
done
[[ -n ${gw:-} ]] || prov_die "no default route via $iface from the gateway's DHCP"
prov_say "LAN $iface: $(ip -o -4 addr show dev "$iface" | awk '{ print $4; exit }'), default via $gw; $nat_if (Vagrant's NAT) keeps only its own subnet"
prov_say "resolver: $(awk '/^nameserver/ { printf "%s ", $2 }' /etc/resolv.conf)"

if [[ -n $expect ]]; then
	got=$(dig +short +tries=2 +time=3 "$LAB_WWW" A 2>&1)
	prov_say "dig $LAB_WWW (the resolver above): ${got:-nothing}"
	[[ $got == "$expect" ]] || prov_die "expected $expect, the DoT server's record: is dotproxy up on the gateway?"
fi
prov_say "setup done"
