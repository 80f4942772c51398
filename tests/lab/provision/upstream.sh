#!/usr/bin/env bash
# tests/lab/provision/upstream.sh: provisions the lab's UPSTREAM, the same script for both labs:
# tests/lab.sh runs it inside the upstream network namespace of every e2e test and `make demo`,
# vagrant/Vagrantfile runs it (with --vm) as the shell provisioner of the upstream VM.
#
# setup: puts the DoT and decoy addresses on the WAN interface and routes the LAN prefixes via
# the gateway (the `net` part); makes the lab's CA and a server certificate for the auth name
# (keeping a valid CA and certificate already in DIR, so provisioning again does not change what
# the gateway trusts); writes the DoT Unbound config (port 853) and the plaintext DECOY Unbound
# config (port 53, same names, different records) into DIR from tests/lab/unbound-*.conf.in and
# the records of plan.sh. Without --vm it starts nothing (`serve` does); with --vm it also installs
# its packages and runs both servers as systemd units (dotproxy-lab-unbound@dot, @decoy).
# Must never: answer anything but the lab's zone (no recursion, nothing asked outside the lab);
# change anything before every argument is checked.
#
#   upstream.sh setup [--vm] --dir DIR --auth NAME --dot ADDR/LEN --dot ADDR6/LEN
#                     --decoy ADDR/LEN --decoy ADDR6/LEN [--if IFACE] [--route PREFIX@VIA]...
#                     [--ca-name CN] [--days N]
#   upstream.sh net   (the same arguments): only addresses and routes (the VM's boot unit)
#   upstream.sh serve dot|decoy --dir DIR    exec that Unbound in the foreground (same PID)
# --check-args: check the arguments only (tests/e2e/test_vagrant.sh checks the Vagrantfile's).
#
# --if defaults to the interface that already holds the first IPv4 --dot address (Vagrant puts
# it there). The decoy and IPv6 addresses and the routes are this script's.
set -uo pipefail
PROV_NAME=upstream.sh
PROV_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROV_SELF=$PROV_HERE/upstream.sh
# shellcheck source=tests/lab/provision/common.sh
. "$PROV_HERE/common.sh"
# shellcheck source=tests/lab/provision/plan.sh
. "$PROV_HERE/plan.sh"
TEMPLATES=$(cd "$PROV_HERE/.." && pwd)

cmd=${1:-}
shift || true
dir='' auth='' iface='' ca_name='dotproxy lab CA' days=2 who=''
dot=() decoy=() routes=() args=("$@")
if [[ $cmd == serve ]]; then
	who=${1:-}
	shift || true
fi
while (($#)); do
	case $1 in
	--vm) PROV_VM=1; shift; continue ;;
	--check-args) PROV_CHECK=1; shift; continue ;;
	--dir | --auth | --if | --dot | --decoy | --route | --ca-name | --days) prov_need_arg "$1" "${2:-}" ;;
	*) prov_usage "unknown argument: $1" ;;
	esac
	case $1 in
	--dir) dir=$2 ;;
	--auth) auth=$2 ;;
	--if) iface=$2 ;;
	--dot) dot+=("$2") ;;
	--decoy) decoy+=("$2") ;;
	--route) routes+=("$2") ;;
	--ca-name) ca_name=$2 ;;
	--days) days=$2 ;;
	esac
	shift 2
done

[[ -n $dir ]] || prov_usage "--dir is required"
[[ $dir == /* ]] || prov_usage "--dir must be an absolute path: $dir"

if [[ $cmd == serve ]]; then
	[[ $who == dot || $who == decoy ]] || prov_usage "serve: dot or decoy, not '$who'"
	[[ -s $dir/unbound-$who.conf ]] || prov_die "no $dir/unbound-$who.conf: run setup first"
	exec unbound -d -c "$dir/unbound-$who.conf"
fi
[[ $cmd == setup || $cmd == net ]] || prov_usage "usage: upstream.sh setup|net|serve ... (see the header)"

# --- check every argument before changing anything -------------------------------------------
# one IPv4 and one IPv6 address each (the Unbound templates listen on one of each)
for role in dot decoy; do
	declare -n list=$role
	((${#list[@]} == 2)) || prov_usage "--$role: give one IPv4 and one IPv6 ADDR/LEN"
	for a in "${list[@]}"; do prov_is_cidr "$a" || prov_usage "--$role: not ADDR/LEN: $a"; done
	[[ ${list[0]} != *:* && ${list[1]} == *:* ]] || [[ ${list[1]} != *:* && ${list[0]} == *:* ]] ||
		prov_usage "--$role: give one IPv4 and one IPv6 ADDR/LEN"
	unset -n list
done
v4_of() { if [[ $1 != *:* ]]; then echo "${1%/*}"; else echo "${2%/*}"; fi; }
v6_of() { if [[ $1 == *:* ]]; then echo "${1%/*}"; else echo "${2%/*}"; fi; }
dot4=$(v4_of "${dot[@]}") dot6=$(v6_of "${dot[@]}")
decoy4=$(v4_of "${decoy[@]}") decoy6=$(v6_of "${decoy[@]}")
for r in "${routes[@]}"; do
	p=${r%@*} via=${r##*@}
	[[ $r == *@* ]] && { [[ $p == default ]] || prov_is_cidr "$p"; } && prov_is_ip "$via" &&
		[[ $(prov_fam "$p") == "$(prov_fam "$via")" || $p == default ]] ||
		prov_usage "--route: not PREFIX@VIA: $r"
done
if [[ $cmd == setup ]]; then
	[[ $auth =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] || prov_usage "--auth: not a host name: '$auth'"
	[[ $days =~ ^[1-9][0-9]{0,4}$ ]] || prov_usage "--days: not a number of days: $days"
	[[ $ca_name != */* && -n $ca_name ]] || prov_usage "--ca-name: no '/' in a CN: $ca_name"
	for t in unbound-dot.conf.in unbound-decoy.conf.in; do
		[[ -r $TEMPLATES/$t ]] || prov_die "missing template $TEMPLATES/$t"
	done
fi
[[ -z $iface ]] || prov_is_ifname "$iface" || prov_usage "--if: not an interface name: $iface"
prov_checked
if [[ -z $iface ]]; then
	iface=$(prov_iface_of "$dot4")
	[[ -n $iface ]] || prov_usage "no --if, and no interface holds $dot4 yet"
fi
prov_is_ifname "$iface" && prov_iface_exists "$iface" || prov_usage "--if: no interface $iface"
[[ $(id -u) == 0 ]] || prov_die "needs root"

# --- net: addresses and routes ------------------------------------------------------------------
prov_link_up "$iface"
for a in "${dot[@]}" "${decoy[@]}"; do prov_addr "$iface" "$a"; done
for r in "${routes[@]}"; do prov_route "${r%@*}" "${r##*@}"; done
if [[ $cmd == net ]]; then
	prov_say "net: $dot4 $dot6 (DoT) $decoy4 $decoy6 (decoy) on $iface; routes: ${routes[*]:-none}"
	exit 0
fi

# --- setup ----------------------------------------------------------------------------------------
if ((PROV_VM)); then
	prov_packages unbound openssl dnsutils ca-certificates
	# Debian starts its own Unbound (a recursive resolver on localhost): not part of the lab
	for u in unbound.service unbound-resolvconf.service; do systemctl disable --now --quiet "$u" 2>/dev/null; done
	prov_boot_unit upstream "$PROV_SELF" "${args[@]}"
fi
mkdir -p "$dir" || prov_die "cannot create $dir"

# certs: the CA and the server certificate, unless DIR holds valid ones for AUTH
certs() {
	local keep_ca=0
	cd "$dir" || return 1
	if [[ -s ca.pem && -s ca.key ]] && openssl x509 -in ca.pem -noout -checkend 86400; then
		keep_ca=1
	else
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
			-keyout ca.key -out ca.pem -subj "/CN=$ca_name" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || return 1
	fi
	if ((keep_ca)) && [[ -s server.key && -s server-chain.pem ]] &&
		openssl x509 -in server.pem -noout -checkend 86400 &&
		openssl x509 -in server.pem -noout -checkhost "$auth" | grep -q 'does match' &&
		openssl verify -CAfile ca.pem server.pem; then
		echo "kept the CA and the server certificate already in $dir"
	else
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout server.key -out server.csr -subj "/CN=$auth" || return 1
		printf '%s\n' "subjectAltName=DNS:$auth" "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
			-extfile server.ext -out server.pem || return 1
		cat server.pem ca.pem >server-chain.pem
	fi
	# RFC 7858 4.2 SPKI pin of the server key
	openssl pkey -in server.key -pubout -outform DER | openssl dgst -sha256 -binary | base64 >server.pin &&
		chmod 600 ca.key server.key && chmod 644 ca.pem server.pem server-chain.pem server.pin
}
(umask 077; certs) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; prov_die "could not make the lab's certificates"; }

# the two Unbound configs and their zones
for who in dot decoy; do
	if [[ $who == dot ]]; then a4=$dot4 a6=$dot6; else a4=$decoy4 a6=$decoy6; fi
	lab_zone "$who" >"$dir/zone-$who.conf" &&
		sed -e "s|@DIR@|$dir|g" -e "s|@ADDR4@|$a4|g" -e "s|@ADDR6@|$a6|g" \
			"$TEMPLATES/unbound-$who.conf.in" >"$dir/unbound-$who.conf" ||
		prov_die "could not write $dir/unbound-$who.conf"
	unbound-checkconf "$dir/unbound-$who.conf" >"$dir/checkconf-$who.log" 2>&1 ||
		{ cat "$dir/checkconf-$who.log" >&2; prov_die "bad Unbound config $dir/unbound-$who.conf"; }
done

if ((PROV_VM)); then
	# Debian's AppArmor profile for Unbound allows /etc/unbound only: let it read the lab's files
	# and write its pid files (a marked block in the profile's local include, added once)
	aa_local=/etc/apparmor.d/local/usr.sbin.unbound
	if [[ -e /etc/apparmor.d/usr.sbin.unbound ]] && ! grep -qs "^# dotproxy lab: $dir" "$aa_local"; then
		mkdir -p "${aa_local%/*}" &&
			printf '%s\n' "# dotproxy lab: $dir (upstream.sh)" "$dir/** r," "$dir/*.pid rw," >>"$aa_local" ||
			prov_die "could not write $aa_local"
	fi
	if [[ -e /etc/apparmor.d/usr.sbin.unbound ]] && command -v apparmor_parser >/dev/null &&
		[[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]]; then
		apparmor_parser -r /etc/apparmor.d/usr.sbin.unbound || prov_die "could not reload Unbound's AppArmor profile"
	fi
	prov_unit dotproxy-lab-unbound@.service <<-EOF
		# written by upstream.sh: the dotproxy lab's Unbound %i (dot: DNS-over-TLS, decoy: plaintext)
		[Unit]
		Description=dotproxy lab: Unbound %i
		After=network-online.target dotproxy-lab-net-upstream.service
		Wants=network-online.target dotproxy-lab-net-upstream.service
		[Service]
		ExecStart=/bin/bash $PROV_SELF serve %i --dir $dir
		Restart=on-failure
		[Install]
		WantedBy=multi-user.target
	EOF
	systemctl daemon-reload &&
		systemctl enable --quiet dotproxy-lab-unbound@dot.service dotproxy-lab-unbound@decoy.service &&
		systemctl restart dotproxy-lab-unbound@dot.service dotproxy-lab-unbound@decoy.service ||
		prov_die "could not start the Unbound units (journalctl -u 'dotproxy-lab-unbound@*')"
	for ((i = 0; i < 100; i++)); do
		[[ -n $(ss -Hltn "src $dot4:853") && -n $(ss -Hlun "src $decoy4:53") ]] && break
		sleep 0.1
	done
	((i < 100)) || prov_die "Unbound does not listen on $dot4:853 and $decoy4:53 (journalctl -u 'dotproxy-lab-unbound@*')"
	got=$(dig +short +tries=1 +time=3 "@$decoy4" "$LAB_WWW" A)
	[[ $got == "$LAB_DECOY_WWW_A" ]] || prov_die "the decoy answers '$got' for $LAB_WWW, not $LAB_DECOY_WWW_A"
	prov_say "DoT server on $dot4@853 and [$dot6]@853 (certificate for $auth, CA $dir/ca.pem)"
	prov_say "plaintext decoy on $decoy4 and $decoy6 port 53: $LAB_WWW is $got there"
fi
prov_say "setup done: $dir"
