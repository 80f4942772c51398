#!/usr/bin/env bash
# tests/lab/provision/gateway.sh: provisions the lab's GATEWAY, the same script for both labs:
# tests/lab.sh runs it inside the gateway network namespace of every e2e test and `make demo`
# (and starts every dotproxy there through `serve`), vagrant/Vagrantfile runs it (with --vm) as
# the shell provisioner of the gateway VM.
#
# net (and setup): the LAN and WAN addresses, IPv4 and IPv6 forwarding, and a counter of the
# packets to port 53 that leave through the WAN interface (mangle chain COUNT_CHAIN, iptables and
# ip6tables: `iptables -t mangle -nvxL DPLAB_WAN53` shows it); with --vm also a filter that
# forwards LAN traffic to the WAN only (never out of the VM's NAT interface).
# setup --vm also: installs the build and lab packages, builds dotproxy from this checkout and
# installs it with iptables/dotproxy-rules in /usr/local/sbin, and runs as systemd units
# dotproxy (gateway scope, the upstreams given, the CA given), its rules for the LAN interface,
# and with --dhcp, DHCP and router advertisements for the LAN from dnsmasq with its DNS turned
# off (port=0): the client's resolver is whatever it likes, dotproxy answers it.
# Must never: send a query in plaintext to the WAN (the daemon is the only resolver path), change
# anything before every argument is checked.
#
#   gateway.sh setup [--vm] --lan ADDR/LEN... --wan ADDR/LEN... [--lan-if IF] [--wan-if IF]
#                    [--count-chain NAME]
#          with --vm: --ca FILE --upstream SPEC... [--mode tproxy|redirect|nfqueue] [--port N]
#                     [--metrics ADDR:PORT] [--dhcp FIRST,LAST] [--dhcp-dns ADDR]...
#   gateway.sh net   (the same arguments): only addresses, forwarding and chains (the VM's boot unit)
#   gateway.sh serve DOTPROXY [ARGS...]   exec the daemon in the foreground (same PID)
# --check-args: check the arguments only (tests/e2e/test_vagrant.sh checks the Vagrantfile's).
#
# --lan-if / --wan-if default to the interface that already holds the first IPv4 --lan / --wan
# address (Vagrant puts it there).
set -uo pipefail
PROV_NAME=gateway.sh
PROV_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROV_SELF=$PROV_HERE/gateway.sh
# shellcheck source=tests/lab/provision/common.sh
. "$PROV_HERE/common.sh"
# shellcheck source=tests/lab/provision/plan.sh
. "$PROV_HERE/plan.sh"
REPO=$(cd "$PROV_HERE/../../.." && pwd)

cmd=${1:-}
shift || true
if [[ $cmd == serve ]]; then
	(($#)) || prov_usage "serve: which dotproxy binary?"
	[[ -x $1 ]] || prov_die "$1 is missing or not executable (run make)"
	exec "$@"
fi
[[ $cmd == setup || $cmd == net ]] || prov_usage "usage: gateway.sh setup|net|serve ... (see the header)"

lan=() wan=() lan_if='' wan_if='' chain=DPLAB_WAN53 ca='' upstreams=() mode=tproxy
port=$LAB_PORT metrics=$LAB_METRICS dhcp='' dhcp_dns=() args=("$@")
while (($#)); do
	case $1 in
	--vm) PROV_VM=1; shift; continue ;;
	--check-args) PROV_CHECK=1; shift; continue ;;
	--lan | --wan | --lan-if | --wan-if | --count-chain | --ca | --upstream | --mode | --port | \
		--metrics | --dhcp | --dhcp-dns) prov_need_arg "$1" "${2:-}" ;;
	*) prov_usage "unknown argument: $1" ;;
	esac
	case $1 in
	--lan) lan+=("$2") ;;
	--wan) wan+=("$2") ;;
	--lan-if) lan_if=$2 ;;
	--wan-if) wan_if=$2 ;;
	--count-chain) chain=$2 ;;
	--ca) ca=$2 ;;
	--upstream) upstreams+=("$2") ;;
	--mode) mode=$2 ;;
	--port) port=$2 ;;
	--metrics) metrics=$2 ;;
	--dhcp) dhcp=$2 ;;
	--dhcp-dns) dhcp_dns+=("$2") ;;
	esac
	shift 2
done

# --- check every argument before changing anything -------------------------------------------
((${#lan[@]} && ${#wan[@]})) || prov_usage "--lan and --wan are required"
first4() { local a; for a in "$@"; do [[ $a != *:* ]] && { echo "${a%/*}"; return; }; done; }
for a in "${lan[@]}" "${wan[@]}"; do prov_is_cidr "$a" || prov_usage "not ADDR/LEN: $a"; done
lan4=$(first4 "${lan[@]}") wan4=$(first4 "${wan[@]}")
[[ -n $lan4 && -n $wan4 ]] || prov_usage "--lan and --wan each need an IPv4 ADDR/LEN"
[[ $chain =~ ^[A-Za-z0-9_]{1,28}$ ]] || prov_usage "--count-chain: not a chain name: $chain"
for i in "$lan_if" "$wan_if"; do [[ -z $i ]] || prov_is_ifname "$i" || prov_usage "not an interface name: $i"; done
if ((PROV_VM)) && [[ $cmd == setup ]]; then
	[[ -n $ca ]] || prov_usage "--vm needs --ca FILE (the upstream's CA certificate)"
	((${#upstreams[@]})) || prov_usage "--vm needs at least one --upstream"
	[[ $mode == tproxy || $mode == redirect || $mode == nfqueue ]] || prov_usage "--mode: tproxy, redirect or nfqueue: $mode"
	[[ $port =~ ^[0-9]{1,5}$ ]] && ((port > 0 && port < 65536)) || prov_usage "--port: not a port: $port"
	[[ $metrics =~ ^[0-9.]+:[0-9]+$ ]] || prov_usage "--metrics: not IPv4:PORT: $metrics"
	if [[ -n $dhcp ]]; then
		prov_is_ip4 "${dhcp%,*}" && prov_is_ip4 "${dhcp#*,}" && [[ $dhcp == *,* ]] ||
			prov_usage "--dhcp: not FIRST,LAST (IPv4): $dhcp"
	fi
	for a in "${dhcp_dns[@]}"; do prov_is_ip "$a" || prov_usage "--dhcp-dns: not an address: $a"; done
fi
prov_checked
[[ -n $lan_if ]] || lan_if=$(prov_iface_of "$lan4")
[[ -n $wan_if ]] || wan_if=$(prov_iface_of "$wan4")
[[ -n $lan_if ]] || prov_usage "no --lan-if, and no interface holds $lan4 yet"
[[ -n $wan_if ]] || prov_usage "no --wan-if, and no interface holds $wan4 yet"
for i in "$lan_if" "$wan_if"; do
	prov_is_ifname "$i" && prov_iface_exists "$i" || prov_usage "no interface $i"
done
[[ $lan_if != "$wan_if" ]] || prov_usage "the LAN and the WAN are both on $lan_if"
if ((PROV_VM)) && [[ $cmd == setup ]]; then
	[[ -r $ca ]] && grep -q 'BEGIN CERTIFICATE' "$ca" ||
		prov_usage "--ca: no CA certificate at $ca (the upstream VM makes it: vagrant up upstream first)"
fi
[[ $(id -u) == 0 ]] || prov_die "needs root"

# --- net: addresses, forwarding, the WAN port-53 counter ----------------------------------------
prov_link_up "$lan_if"
prov_link_up "$wan_if"
for a in "${lan[@]}"; do prov_addr "$lan_if" "$a"; done
for a in "${wan[@]}"; do prov_addr "$wan_if" "$a"; done
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null || prov_die "could not turn on forwarding"
for t in iptables ip6tables; do
	{ $t -w -t mangle -N "$chain" 2>/dev/null || $t -w -t mangle -F "$chain"; } &&
		$t -w -t mangle -A "$chain" -p udp --dport 53 -j RETURN &&
		$t -w -t mangle -A "$chain" -p tcp --dport 53 -j RETURN &&
		{ $t -w -t mangle -C POSTROUTING -o "$wan_if" -j "$chain" 2>/dev/null ||
			$t -w -t mangle -I POSTROUTING 1 -o "$wan_if" -j "$chain"; } ||
		prov_die "could not install the WAN port-53 counter ($t mangle $chain)"
done
if ((PROV_VM)); then
	# the LAN reaches the WAN and nothing else: nothing of the client leaves by the NAT interface
	for t in iptables ip6tables; do
		{ $t -w -N DPLAB_FW 2>/dev/null || $t -w -F DPLAB_FW; } &&
			$t -w -A DPLAB_FW -i "$lan_if" -o "$wan_if" -j RETURN &&
			$t -w -A DPLAB_FW -i "$wan_if" -o "$lan_if" -j RETURN &&
			$t -w -A DPLAB_FW -i "$lan_if" -j DROP &&
			$t -w -A DPLAB_FW -o "$lan_if" -j DROP &&
			{ $t -w -C FORWARD -j DPLAB_FW 2>/dev/null || $t -w -I FORWARD 1 -j DPLAB_FW; } ||
			prov_die "could not install the forwarding filter ($t DPLAB_FW)"
	done
fi
if [[ $cmd == net ]] || ! ((PROV_VM)); then
	prov_say "$cmd done: LAN $lan_if ${lan[*]}, WAN $wan_if ${wan[*]}, forwarding on, counter $chain"
	exit 0
fi

# --- setup --vm: build, install and run dotproxy, its rules, DHCP --------------------------------
prov_packages build-essential pkg-config libssl-dev libnetfilter-queue-dev libmnl-dev ca-certificates \
	openssl iptables iproute2 kmod dnsmasq-base curl tcpdump dnsutils knot-dnsutils
prov_boot_unit gateway "$PROV_SELF" "${args[@]}"
openssl x509 -in "$ca" -noout || prov_die "--ca: $ca is not a certificate"
install -m 644 "$ca" "$PROV_ETC/ca.pem" || prov_die "could not install the CA"

build=/var/cache/dotproxy-lab/build
prov_say "building dotproxy from $REPO (log: $build.log)"
mkdir -p "$build" &&
	make -C "$REPO" BUILD="$build" -j"$(nproc)" all >"$build.log" 2>&1 ||
	{ tail -n 20 "$build.log" >&2; prov_die "the build failed"; }
install -m 755 "$build/dotproxy" /usr/local/sbin/dotproxy &&
	install -m 755 "$REPO/iptables/dotproxy-rules" /usr/local/sbin/dotproxy-rules ||
	prov_die "could not install dotproxy"

dp_args=(--mode "$mode" --port "$port" --ca-file "$PROV_ETC/ca.pem" --metrics "$metrics")
for u in "${upstreams[@]}"; do dp_args+=(--upstream "$u"); done
prov_unit dotproxy-lab.service <<-EOF
	# written by gateway.sh: the dotproxy lab's daemon on the gateway
	[Unit]
	Description=dotproxy lab: dotproxy (DNS over TLS for the LAN)
	After=network-online.target dotproxy-lab-net-gateway.service
	Wants=network-online.target dotproxy-lab-net-gateway.service
	[Service]
	ExecStart=/bin/bash $PROV_SELF serve /usr/local/sbin/dotproxy ${dp_args[*]}
	Restart=on-failure
	[Install]
	WantedBy=multi-user.target
EOF
# the rules live apart from the daemon: when it stops, queries are dropped, never let through
rules=(--mode "$mode" --scope gateway --in-interface "$lan_if" --port "$port")
prov_unit dotproxy-lab-rules.service <<-EOF
	# written by gateway.sh: the dotproxy lab's interception rules for the LAN
	[Unit]
	Description=dotproxy lab: interception rules (gateway scope, $lan_if)
	After=dotproxy-lab-net-gateway.service
	Wants=dotproxy-lab-net-gateway.service
	[Service]
	Type=oneshot
	RemainAfterExit=yes
	ExecStart=/usr/local/sbin/dotproxy-rules up ${rules[*]}
	ExecStop=/usr/local/sbin/dotproxy-rules down
	[Install]
	WantedBy=multi-user.target
EOF
units=(dotproxy-lab.service dotproxy-lab-rules.service)

if [[ -n $dhcp ]]; then
	lan6=''
	for a in "${lan[@]}"; do [[ $a == *:* ]] && lan6=$a; done
	{
		echo "# written by gateway.sh: DHCP and router advertisements for the dotproxy lab's LAN."
		echo "# No DNS here (port=0): clients ask whatever resolver they like; dotproxy answers."
		echo "port=0"
		echo "interface=$lan_if"
		echo "dhcp-authoritative"
		echo "dhcp-range=${dhcp%,*},${dhcp#*,},12h"
		echo "dhcp-option=option:router,$lan4"
		dns4=() dns6=()
		for a in "${dhcp_dns[@]}"; do if [[ $a == *:* ]]; then dns6+=("[$a]"); else dns4+=("$a"); fi; done
		((${#dns4[@]})) && echo "dhcp-option=option:dns-server,$(IFS=,; echo "${dns4[*]}")"
		if [[ -n $lan6 ]]; then
			echo "enable-ra"
			echo "dhcp-range=::,constructor:$lan_if,ra-only,${lan6##*/},12h"
			((${#dns6[@]})) && echo "dhcp-option=option6:dns-server,$(IFS=,; echo "${dns6[*]}")"
		fi
		echo "dhcp-leasefile=/var/lib/misc/dotproxy-lab.leases"
		echo "user=nobody"
		echo "group=nogroup"
		echo "log-dhcp"
	} >"$PROV_ETC/dnsmasq.conf" || prov_die "could not write $PROV_ETC/dnsmasq.conf"
	dnsmasq --test --conf-file="$PROV_ETC/dnsmasq.conf" >/dev/null 2>&1 ||
		prov_die "dnsmasq rejects $PROV_ETC/dnsmasq.conf: $(dnsmasq --test --conf-file="$PROV_ETC/dnsmasq.conf" 2>&1 | head -n 1)"
	prov_unit dotproxy-lab-dhcp.service <<-EOF
		# written by gateway.sh: DHCP and router advertisements for the dotproxy lab's LAN, no DNS
		[Unit]
		Description=dotproxy lab: DHCP for the LAN (dnsmasq, DNS off)
		After=network-online.target dotproxy-lab-net-gateway.service
		Wants=network-online.target dotproxy-lab-net-gateway.service
		[Service]
		ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=$PROV_ETC/dnsmasq.conf
		Restart=on-failure
		[Install]
		WantedBy=multi-user.target
	EOF
	units+=(dotproxy-lab-dhcp.service)
fi

systemctl daemon-reload && systemctl enable --quiet "${units[@]}" && systemctl restart "${units[@]}" ||
	prov_die "could not start ${units[*]} (journalctl -u 'dotproxy-lab*')"
for ((i = 0; i < 100; i++)); do
	[[ $(curl -sS --max-time 2 --noproxy '*' "http://$metrics/health" 2>/dev/null) == *ok* ]] && break
	sleep 0.1
done
((i < 100)) || prov_die "dotproxy does not answer on http://$metrics/health (journalctl -u dotproxy-lab)"

# what the gateway can check itself: the DoT server answers over TLS verified with the lab's CA
u=${upstreams[0]} ip=${upstreams[0]%%@*}
ip=${ip%%#*} ip=${ip#[} ip=${ip%]}
got=$(kdig +short +retry=1 +timeout=3 +tls-ca="$PROV_ETC/ca.pem" +tls-hostname="${u##*#}" "@$ip" "$LAB_WWW" A 2>&1)
prov_say "the DoT server $ip (verified TLS) says $LAB_WWW is ${got:-nothing}"
[[ $got == "$LAB_WWW_A" ]] || prov_die "the DoT server did not answer $LAB_WWW_A over verified TLS"
prov_say "dotproxy ($mode) is up, rules for $lan_if: $(/usr/local/sbin/dotproxy-rules status 2>&1 | head -n 1)"
prov_say "LAN $lan_if ${lan[*]}, WAN $wan_if ${wan[*]}; metrics: curl http://$metrics/metrics"
prov_say "setup done"
